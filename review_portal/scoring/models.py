"""One expert's score sheet for one assignment, its scores per criterion and their revisions."""

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
