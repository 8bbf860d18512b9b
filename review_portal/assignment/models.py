"""An expert's assignment to a review, with its response and deadline."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from review_portal.db import enum_column, utcnow
from review_portal.enums import AssignmentRole, AssignmentStatus
from review_portal.extensions import db

if TYPE_CHECKING:
    from review_portal.accounts.models import User
    from review_portal.reviews.models import Review
    from review_portal.scoring.models import ScoreSheet


class Assignment(db.Model):
    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(
        sa.ForeignKey("reviews.id", ondelete="CASCADE"), index=True
    )
    expert_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    role: Mapped[AssignmentRole] = mapped_column(
        enum_column(AssignmentRole), default=AssignmentRole.INITIAL
    )
    status: Mapped[AssignmentStatus] = mapped_column(
        enum_column(AssignmentStatus), default=AssignmentStatus.OFFERED, index=True
    )
    #: Position of the expert on the review ("Эксперт 1", "Эксперт 2"...), never their name.
    seat: Mapped[int] = mapped_column()
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: ``None`` when the automatic assignment made it.
    assigned_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    due_on: Mapped[date] = mapped_column()
    responded_at: Mapped[datetime | None] = mapped_column()
    decline_reason: Mapped[str | None] = mapped_column(sa.Text)
    #: The expert declared a conflict of interest when declining.
    conflict_declared: Mapped[bool] = mapped_column(default=False)
    reminder_sent_at: Mapped[datetime | None] = mapped_column()
    overdue_notified_at: Mapped[datetime | None] = mapped_column()

    review: Mapped[Review] = relationship(back_populates="assignments")
    expert: Mapped[User] = relationship(foreign_keys=[expert_id])
    sheet: Mapped[ScoreSheet | None] = relationship(back_populates="assignment", uselist=False)

    __table_args__ = (
        sa.UniqueConstraint("review_id", "expert_id"),
        sa.UniqueConstraint("review_id", "seat"),
    )
