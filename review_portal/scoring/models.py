"""One expert's score sheet for one assignment, its scores per criterion and their revisions,
and the per-review sums of the submitted sheets that the agreement figures read."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from review_portal.db import enum_column, utcnow
from review_portal.enums import RevisionKind, SheetStatus
from review_portal.extensions import db

if TYPE_CHECKING:
    from review_portal.assignment.models import Assignment


class ScoreSheet(db.Model):
    __tablename__ = "score_sheets"

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("assignments.id", ondelete="CASCADE"), unique=True
    )
    status: Mapped[SheetStatus] = mapped_column(enum_column(SheetStatus), default=SheetStatus.DRAFT)
    recommendations: Mapped[str] = mapped_column(sa.Text, default="")
    no_conflict_confirmed: Mapped[bool] = mapped_column(default=False)
    #: Incremented on every save, so a stale autosave cannot overwrite a newer one.
    revision: Mapped[int] = mapped_column(default=0)
    saved_at: Mapped[datetime | None] = mapped_column()
    submitted_at: Mapped[datetime | None] = mapped_column()
    reopened_at: Mapped[datetime | None] = mapped_column()
    reopen_reason: Mapped[str | None] = mapped_column(sa.Text)
    #: While submitted: the weighted total as a percentage of the rubric's maximum
    #: (:func:`review_portal.scoring.compute.sheet_total`, unrounded); kept by
    #: :mod:`review_portal.scoring.summary`.
    total_percent: Mapped[float | None] = mapped_column(sa.Float)

    assignment: Mapped[Assignment] = relationship(back_populates="sheet")
    scores: Mapped[list[Score]] = relationship(
        back_populates="sheet", cascade="all, delete-orphan", order_by="Score.id"
    )
    revisions: Mapped[list[ScoreRevision]] = relationship(
        cascade="all, delete-orphan", order_by="ScoreRevision.id"
    )


class Score(db.Model):
    __tablename__ = "scores"

    id: Mapped[int] = mapped_column(primary_key=True)
    sheet_id: Mapped[int] = mapped_column(sa.ForeignKey("score_sheets.id", ondelete="CASCADE"))
    criterion_id: Mapped[str] = mapped_column(sa.String(20))
    value: Mapped[int | None] = mapped_column()
    comment: Mapped[str] = mapped_column(sa.Text, default="")

    sheet: Mapped[ScoreSheet] = relationship(back_populates="scores")

    __table_args__ = (sa.UniqueConstraint("sheet_id", "criterion_id"),)


class ScoreRevision(db.Model):
    """A score changed during a discussion (or after a reopen), with the expert's reason."""

    __tablename__ = "score_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    sheet_id: Mapped[int] = mapped_column(
        sa.ForeignKey("score_sheets.id", ondelete="CASCADE"), index=True
    )
    criterion_id: Mapped[str] = mapped_column(sa.String(20))
    kind: Mapped[RevisionKind] = mapped_column(
        enum_column(RevisionKind), default=RevisionKind.REOPEN, server_default="reopen"
    )
    old_value: Mapped[int | None] = mapped_column()
    new_value: Mapped[int | None] = mapped_column()
    #: The comment before and after (``None`` when it did not change).
    old_comment: Mapped[str | None] = mapped_column(sa.Text)
    new_comment: Mapped[str | None] = mapped_column(sa.Text)
    reason: Mapped[str] = mapped_column(sa.Text)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class AgreementUnit(db.Model):
    """One review's values on one measure — the sheets' total as a percentage of the
    maximum (``measure`` empty) or one criterion's score — summed over its submitted sheets,
    when two or more are in: a unit of Krippendorff's alpha. Kept by
    :mod:`review_portal.scoring.summary` whenever a sheet of the review is submitted,
    reopened or revised, so the analytics sum ~10 rows per review instead of every score.
    The review's period and municipality (its submitted version's) are copied here so the
    analytics filter without joins."""

    __tablename__ = "agreement_units"

    review_id: Mapped[int] = mapped_column(
        sa.ForeignKey("reviews.id", ondelete="CASCADE"), primary_key=True
    )
    #: ``""``: the total; otherwise a criterion id of the review's rubric.
    measure: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    rubric_id: Mapped[str] = mapped_column(sa.String(80))
    #: When the version under review was submitted (its ``created_at``).
    submitted_at: Mapped[datetime] = mapped_column(index=True)
    municipality_id: Mapped[int] = mapped_column(sa.ForeignKey("municipalities.id"))
    #: Values (sheets), their sum and the sum of their squares.
    m: Mapped[int] = mapped_column()
    s: Mapped[float] = mapped_column(sa.Float)
    q: Mapped[float] = mapped_column(sa.Float)

    __table_args__ = (
        sa.Index("ix_agreement_units_municipality_submitted", "municipality_id", "submitted_at"),
    )
