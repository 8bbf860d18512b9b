"""Programs, their immutable submitted versions, and the files attached to both.

The Navigator metadata is declared once (:class:`ProgramData`) and shared by the editable
``Program`` and the frozen ``ProgramVersion``, so a version is always a complete copy.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from review_portal.db import TimestampMixin, enum_column, utcnow
from review_portal.enums import (
    Direction,
    DocumentKind,
    Level,
    ProgramType,
    RegistryKind,
    StudyForm,
)
from review_portal.extensions import db

if TYPE_CHECKING:
    from review_portal.organizations.models import Municipality, Organization
    from review_portal.reviews.models import Review


# --- registry kinds asked for ----------------------------------------------------------
# A program names the kind it mainly asks for (``requested_registry_kind``) and, in
# ``additional_registry_kinds``, the other kinds it also asks to be included in (regional
# Navigators list several registries per program). An admission creates a pending entry in
# each asked kind whose rubric policy admits it (review_portal.registry.services).


def kind_values(values: Iterable | None) -> list[str] | None:
    """The values as kinds' values (enum members or strings), ``None`` when one is unknown."""
    known = {k.value for k in RegistryKind}
    result = []
    for value in values or ():
        value = getattr(value, "value", value)
        if not isinstance(value, str) or value not in known:
            return None
        result.append(value)
    return result


def additional_kinds(main, others: Iterable | None) -> list[str]:
    """``others`` without the main kind and repeats, in the enum's order (known values)."""
    main_value = getattr(main, "value", main)
    wanted = set(kind_values(others) or ())
    return [k.value for k in RegistryKind if k.value in wanted and k.value != main_value]


def registry_kinds(main, others: Iterable | None) -> tuple[RegistryKind, ...]:
    """Every kind asked for: the main one first, then the others in the enum's order."""
    first = RegistryKind(getattr(main, "value", main))
    return (first, *(RegistryKind(v) for v in additional_kinds(first, others)))


def _data_constraints(table: str) -> tuple:
    """The database's own guard of the metadata rules (forms check them first, in words)."""
    return (
        sa.CheckConstraint("age_min >= 3 AND age_max <= 18 AND age_min <= age_max", "ages"),
        sa.CheckConstraint("total_hours > 0", "hours"),
        sa.CheckConstraint("duration_months > 0", "duration"),
        sa.CheckConstraint("group_min >= 1 AND group_min <= group_max", "group_size"),
        sa.Index(f"ix_{table}_direction_level", "direction", "level"),
    )


class ProgramData:
    """The program's metadata as in the regional Navigator."""

    title: Mapped[str] = mapped_column(sa.String(500))
    direction: Mapped[Direction] = mapped_column(enum_column(Direction))
    level: Mapped[Level] = mapped_column(enum_column(Level))
    program_type: Mapped[ProgramType] = mapped_column(
        enum_column(ProgramType), default=ProgramType.GENERAL_DEVELOPMENTAL
    )
    age_min: Mapped[int] = mapped_column()
    age_max: Mapped[int] = mapped_column()
    total_hours: Mapped[int] = mapped_column()
    duration_months: Mapped[int] = mapped_column()
    study_form: Mapped[StudyForm] = mapped_column(enum_column(StudyForm))
    #: Uses distance learning technologies / e-learning (ДОТ/ЭО).
    uses_distance_learning: Mapped[bool] = mapped_column(default=False)
    #: Implemented in network form together with other organizations (сетевая форма).
    network_form: Mapped[bool] = mapped_column(default=False)
    group_min: Mapped[int] = mapped_column()
    group_max: Mapped[int] = mapped_column()
    #: Adapted for children with disabilities (ОВЗ).
    adapted_for_disabilities: Mapped[bool] = mapped_column(default=False)
    #: A multi-level program (разноуровневая): its content offers several levels of mastery.
    multi_level: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    annotation: Mapped[str] = mapped_column(sa.Text, default="")
    requested_registry_kind: Mapped[RegistryKind] = mapped_column(
        enum_column(RegistryKind), default=RegistryKind.CERTIFIED
    )
    #: The other registry kinds the program asks to be included in (values of
    #: :class:`RegistryKind`, in the enum's order, never the main kind): an admission
    #: creates an entry in each kind whose rubric policy admits it. Assigned whole.
    additional_registry_kinds: Mapped[list] = mapped_column(
        sa.JSON, default=list, server_default=sa.text("'[]'")
    )
    #: The program's modules (see :mod:`review_portal.programs.modules`): a list of dicts,
    #: empty for a program without modules. Assigned whole, never changed in place.
    modules: Mapped[list] = mapped_column(sa.JSON, default=list, server_default=sa.text("'[]'"))

    @declared_attr
    def municipality_id(cls) -> Mapped[int]:
        """Where the program runs."""
        return mapped_column(sa.ForeignKey("municipalities.id"), index=True)

    @declared_attr
    def municipality(cls) -> Mapped[Municipality]:
        return relationship()

    DATA_FIELDS = (
        "title",
        "direction",
        "level",
        "program_type",
        "age_min",
        "age_max",
        "total_hours",
        "duration_months",
        "study_form",
        "uses_distance_learning",
        "network_form",
        "group_min",
        "group_max",
        "adapted_for_disabilities",
        "multi_level",
        "annotation",
        "requested_registry_kind",
        "additional_registry_kinds",
        "municipality_id",
        "modules",
    )

    def data(self) -> dict:
        return {name: getattr(self, name) for name in self.DATA_FIELDS}

    @property
    def registry_kinds(self) -> tuple[RegistryKind, ...]:
        """Every registry kind asked for: the main one first, then the others."""
        return registry_kinds(self.requested_registry_kind, self.additional_registry_kinds)


class Program(ProgramData, TimestampMixin, db.Model):
    """The provider's editable program; its state is the state of its current review."""

    __tablename__ = "programs"
    __table_args__ = _data_constraints("programs")

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    created_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    #: The review that gives the program its state (every program has one from creation).
    current_review_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("reviews.id", use_alter=True, name="fk_programs_current_review_id_reviews")
    )

    organization: Mapped[Organization] = relationship()
    current_review: Mapped[Review | None] = relationship(
        foreign_keys=[current_review_id], post_update=True
    )
    reviews: Mapped[list[Review]] = relationship(
        back_populates="program",
        foreign_keys="Review.program_id",
        order_by="Review.round",
    )
    versions: Mapped[list[ProgramVersion]] = relationship(
        back_populates="program", order_by="ProgramVersion.number"
    )
    documents: Mapped[list[ProgramDocument]] = relationship(
        back_populates="program", cascade="all, delete-orphan"
    )

    @property
    def state(self):
        from review_portal.workflow import ReviewState

        return self.current_review.state if self.current_review else ReviewState.DRAFT


class ProgramVersion(ProgramData, db.Model):
    """An immutable snapshot of a program's data and files at one submission."""

    __tablename__ = "program_versions"
    __table_args__ = (
        *_data_constraints("program_versions"),
        sa.UniqueConstraint("program_id", "number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(sa.ForeignKey("programs.id"), index=True)
    number: Mapped[int] = mapped_column()
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))

    program: Mapped[Program] = relationship(back_populates="versions")
    documents: Mapped[list[VersionDocument]] = relationship(
        back_populates="version", cascade="all, delete-orphan"
    )


class StoredFile(db.Model):
    """A file kept once under its content hash, outside the web root."""

    __tablename__ = "stored_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    #: Media type recognised from the content (magic bytes), never from the name.
    media_type: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DocumentData:
    kind: Mapped[DocumentKind] = mapped_column(enum_column(DocumentKind))
    original_name: Mapped[str] = mapped_column(sa.String(255))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)

    @declared_attr
    def file_id(cls) -> Mapped[int]:
        return mapped_column(sa.ForeignKey("stored_files.id"))

    @declared_attr
    def file(cls) -> Mapped[StoredFile]:
        # Always shown with the document (size, type): loaded in the same query.
        return relationship(lazy="joined")

    @declared_attr
    def uploaded_by_id(cls) -> Mapped[int]:
        return mapped_column(sa.ForeignKey("users.id"))


class ProgramDocument(DocumentData, db.Model):
    """A file of the program as the provider is editing it."""

    __tablename__ = "program_documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(
        sa.ForeignKey("programs.id", ondelete="CASCADE"), index=True
    )
    program: Mapped[Program] = relationship(back_populates="documents")


class VersionDocument(DocumentData, db.Model):
    """A file as it was frozen into a submitted version."""

    __tablename__ = "version_documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(
        sa.ForeignKey("program_versions.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[ProgramVersion] = relationship(back_populates="documents")
