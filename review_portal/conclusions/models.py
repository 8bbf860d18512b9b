"""Issued conclusions and the per-year counter that numbers them without gaps."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from review_portal.db import enum_column, utcnow
from review_portal.enums import ConclusionStatus, Decision
from review_portal.extensions import db

if TYPE_CHECKING:
    from review_portal.reviews.models import Review


class Conclusion(db.Model):
    __tablename__ = "conclusions"

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(sa.ForeignKey("reviews.id"), index=True)
    #: ``<region code>-<year>-<5-digit sequence>``.
    number: Mapped[str] = mapped_column(sa.String(32), unique=True)
    year: Mapped[int] = mapped_column()
    sequence: Mapped[int] = mapped_column()
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    issued_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    decision: Mapped[Decision] = mapped_column(enum_column(Decision))
    total: Mapped[Decimal] = mapped_column(sa.Numeric(8, 2))
    max_total: Mapped[Decimal] = mapped_column(sa.Numeric(8, 2))
    percent: Mapped[Decimal] = mapped_column(sa.Numeric(5, 2))
    #: Key of the stored PDF in the file storage; the bytes never change after issue.
    storage_key: Mapped[str] = mapped_column(sa.String(255))
    #: SHA-256 of the stored PDF file (what an uploaded copy is checked against).
    sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    #: SHA-256 of the conclusion's content (canonical JSON), printed at the foot of the PDF:
    #: a document cannot contain the hash of its own bytes.
    content_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    status: Mapped[ConclusionStatus] = mapped_column(
        enum_column(ConclusionStatus), default=ConclusionStatus.VALID
    )
    revoked_at: Mapped[datetime | None] = mapped_column()
    revoked_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    revoke_reason: Mapped[str | None] = mapped_column(sa.Text)
    superseded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("conclusions.id"))

    review: Mapped[Review] = relationship(back_populates="conclusions")
    #: The conclusion that replaced this one (read only: set through ``superseded_by_id``).
    superseded_by: Mapped[Conclusion | None] = relationship(
        remote_side=[id], foreign_keys=[superseded_by_id], viewonly=True
    )

    __table_args__ = (sa.UniqueConstraint("year", "sequence"),)


class ConclusionCounter(db.Model):
    """The last number issued in a year; locked while a number is taken."""

    __tablename__ = "conclusion_counters"

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_value: Mapped[int] = mapped_column(default=0)


def format_number(region_code: str, year: int, sequence: int) -> str:
    """A conclusion's number: ``<region>-<year>-<sequence, 5 digits>``."""
    return f"{region_code}-{year}-{sequence:05d}"


def upcoming_numbers(region_code: str, year: int, count: int = 1) -> tuple[str, str]:
    """The first and the last of the next ``count`` numbers of ``year`` as the counter
    stands now (read, nothing taken: another issuing meanwhile moves them on). Here, with
    the counter's table, so the pages that confirm an issuing may read it (any package may
    read another's tables)."""
    last = db.session.execute(
        sa.select(ConclusionCounter.last_value).where(ConclusionCounter.year == year)
    ).scalar()
    first = (last or 0) + 1
    return format_number(region_code, year, first), format_number(
        region_code, year, first + count - 1
    )
