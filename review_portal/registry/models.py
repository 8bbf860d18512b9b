"""Registry entries (pending and published) and the frozen snapshots the public reads."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from review_portal.db import enum_column, utcnow
from review_portal.enums import (
    Direction,
    Level,
    RegistryEntryStatus,
    RegistryKind,
    StudyForm,
)
from review_portal.extensions import db


class RegistryEntry(db.Model):
    """A program's place in one registry kind, from pending inclusion to removal."""

    __tablename__ = "registry_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[RegistryKind] = mapped_column(enum_column(RegistryKind))
    program_id: Mapped[int] = mapped_column(sa.ForeignKey("programs.id"), index=True)
    conclusion_id: Mapped[int] = mapped_column(sa.ForeignKey("conclusions.id"))
    #: Assigned at the first publication that includes the entry.
    registry_number: Mapped[str | None] = mapped_column(sa.String(32), unique=True)
    status: Mapped[RegistryEntryStatus] = mapped_column(
        enum_column(RegistryEntryStatus), default=RegistryEntryStatus.PENDING_INCLUSION
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    included_on: Mapped[date | None] = mapped_column()
    removed_on: Mapped[date | None] = mapped_column()
    removal_reason: Mapped[str | None] = mapped_column(sa.Text)
    #: The last day the entry is valid (``None``: no end, the kind's validity is unlimited).
    valid_until: Mapped[date | None] = mapped_column()
    #: The next publication dates the entry: a new inclusion, or a renewal admitted (its end
    #: date then starts again from that publication, its number kept).
    end_date_pending: Mapped[bool] = mapped_column(default=True, server_default=sa.false())
    #: When the provider was reminded of the end date, 90 and 30 days before (once each).
    reminded_90_on: Mapped[date | None] = mapped_column()
    reminded_30_on: Mapped[date | None] = mapped_column()

    __table_args__ = (sa.Index("ix_registry_entries_kind_status", "kind", "status"),)


class RegistrySnapshot(db.Model):
    """A dated, numbered publication of one registry kind; frozen once written."""

    __tablename__ = "registry_snapshots"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[RegistryKind] = mapped_column(enum_column(RegistryKind))
    #: 1, 2, 3 ... within the kind.
    number: Mapped[int] = mapped_column()
    published_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    entry_count: Mapped[int] = mapped_column(default=0)
    #: The audit chain's head when it was published, signed (a copy of the anchor written
    #: with it, see ``review_portal.audit``): once published, the public holds a witness
    #: of the log that no later change in the database can alter. ``None`` before 0012.
    audit_position: Mapped[int | None] = mapped_column()
    audit_link: Mapped[str | None] = mapped_column(sa.String(64))
    audit_signature: Mapped[str | None] = mapped_column(sa.String(64))
    audit_anchored_at: Mapped[datetime | None] = mapped_column()

    items: Mapped[list[RegistrySnapshotItem]] = relationship(
        back_populates="snapshot", cascade="all, delete-orphan", lazy="raise"
    )

    __table_args__ = (sa.UniqueConstraint("kind", "number"),)


class RegistrySnapshotItem(db.Model):
    """One row of a published snapshot, copied so the snapshot never changes afterwards."""

    __tablename__ = "registry_snapshot_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    snapshot_id: Mapped[int] = mapped_column(
        sa.ForeignKey("registry_snapshots.id", ondelete="CASCADE")
    )
    entry_id: Mapped[int] = mapped_column(sa.ForeignKey("registry_entries.id"))
    registry_number: Mapped[str] = mapped_column(sa.String(32))
    program_id: Mapped[int] = mapped_column()
    title: Mapped[str] = mapped_column(sa.String(500))
    organization_name: Mapped[str] = mapped_column(sa.String(500))
    organization_inn: Mapped[str] = mapped_column(sa.String(12))
    municipality_id: Mapped[int] = mapped_column()
    municipality_name: Mapped[str] = mapped_column(sa.String(255))
    direction: Mapped[Direction] = mapped_column(enum_column(Direction))
    level: Mapped[Level] = mapped_column(enum_column(Level))
    age_min: Mapped[int] = mapped_column()
    age_max: Mapped[int] = mapped_column()
    total_hours: Mapped[int] = mapped_column()
    #: The version's modules as published (see :mod:`review_portal.programs.modules`).
    modules: Mapped[list] = mapped_column(sa.JSON, default=list, server_default=sa.text("'[]'"))
    study_form: Mapped[StudyForm] = mapped_column(enum_column(StudyForm))
    adapted_for_disabilities: Mapped[bool] = mapped_column()
    conclusion_number: Mapped[str] = mapped_column(sa.String(32))
    conclusion_date: Mapped[date] = mapped_column()
    final_percent: Mapped[Decimal] = mapped_column(sa.Numeric(5, 2))
    included_on: Mapped[date] = mapped_column()
    #: The entry's end date as published (``None``: unlimited).
    valid_until: Mapped[date | None] = mapped_column()
    status: Mapped[RegistryEntryStatus] = mapped_column(enum_column(RegistryEntryStatus))
    #: Title and organization names case-folded (ё as е), what the public search matches:
    #: databases lower-case Cyrillic differently (SQLite not at all), so it is done here.
    search_text: Mapped[str] = mapped_column(sa.Text, default="", server_default="")

    snapshot: Mapped[RegistrySnapshot] = relationship(back_populates="items")

    __table_args__ = (
        sa.UniqueConstraint("snapshot_id", "entry_id"),
        sa.Index(
            "ix_registry_snapshot_items_filters", "snapshot_id", "municipality_id", "direction"
        ),
        # Ending with the id (the tie-breaker of every order), so a deep page is found in the
        # index alone. PostgreSQL also has a trigram index on search_text (migration 0006).
        sa.Index("ix_registry_snapshot_items_number", "snapshot_id", "registry_number", "id"),
        sa.Index("ix_registry_snapshot_items_title", "snapshot_id", "title", "id"),
        sa.Index(
            "ix_registry_snapshot_items_ages",
            "snapshot_id",
            "age_min",
            "age_max",
            "adapted_for_disabilities",
        ).ddl_if(dialect="postgresql"),
        sa.Index(
            "ix_registry_snapshot_items_search",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
    )
