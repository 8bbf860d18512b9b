"""Municipalities of the region, provider organizations and invitations to join one.

An ИНН is held by at most one approved organization (a partial unique index, on PostgreSQL
and SQLite alike); pending and rejected registrations may name any ИНН: a registration
naming an ИНН that another organization holds or claims is a claim the coordinator decides.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from review_portal.db import TimestampMixin, enum_column
from review_portal.enums import AccountStatus, OrganizationType
from review_portal.extensions import db


class Municipality(db.Model):
    __tablename__ = "municipalities"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255), unique=True)
    #: OKTMO code of the municipality, when known.
    oktmo: Mapped[str | None] = mapped_column(sa.String(11))

    def __str__(self) -> str:
        return self.name


#: Which organization holds its ИНН: the approved one (at most one per ИНН).
HOLDS_INN = sa.text("status = 'approved'")


class Organization(TimestampMixin, db.Model):
    __tablename__ = "organizations"
    __table_args__ = (
        sa.Index(
            "uq_organizations_inn_holder",
            "inn",
            unique=True,
            postgresql_where=HOLDS_INN,
            sqlite_where=HOLDS_INN,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    full_name: Mapped[str] = mapped_column(sa.String(500))
    short_name: Mapped[str] = mapped_column(sa.String(255))
    #: 10 digits for an organization, 12 for an individual entrepreneur. Unique among the
    #: approved organizations only (``uq_organizations_inn_holder``).
    inn: Mapped[str] = mapped_column(sa.String(12), index=True)
    #: ОГРН (13 digits) or ОГРНИП (15 digits).
    ogrn: Mapped[str | None] = mapped_column(sa.String(15))
    kind: Mapped[OrganizationType] = mapped_column(enum_column(OrganizationType))
    municipality_id: Mapped[int] = mapped_column(sa.ForeignKey("municipalities.id"), index=True)
    address: Mapped[str | None] = mapped_column(sa.String(500))
    phone: Mapped[str | None] = mapped_column(sa.String(40))
    email: Mapped[str | None] = mapped_column(sa.String(255))
    website: Mapped[str | None] = mapped_column(sa.String(255))
    status: Mapped[AccountStatus] = mapped_column(
        enum_column(AccountStatus), default=AccountStatus.PENDING
    )
    approved_at: Mapped[datetime | None] = mapped_column()
    #: When the center transferred this organization's ИНН to another registration (the
    #: status became ``rejected``): its users no longer act for it; its records are kept.
    inn_lost_at: Mapped[datetime | None] = mapped_column()
    #: The coordinator's reason for the transfer, shown to the organization's users.
    inn_lost_reason: Mapped[str | None] = mapped_column(sa.Text)
    #: The organization the ИНН was transferred to.
    inn_lost_to_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organizations.id"))

    municipality: Mapped[Municipality] = relationship()

    def __str__(self) -> str:
        return self.short_name


class Invitation(db.Model):
    """An applicant's invitation of a colleague to the same organization, by e-mail."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(sa.String(255))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    invited_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    accepted_at: Mapped[datetime | None] = mapped_column()

    organization: Mapped[Organization] = relationship()
