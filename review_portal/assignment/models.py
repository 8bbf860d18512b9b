"""An expert's assignment to a review, with its response and deadline, and the conflicts of
interest experts have declared (which exclude them from later reviews)."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Mapped, mapped_column, relationship

from review_portal.db import enum_column, utcnow
from review_portal.enums import AssignmentRole, AssignmentStatus, LabelledEnum
from review_portal.extensions import db

if TYPE_CHECKING:
    from review_portal.accounts.models import User
    from review_portal.organizations.models import Organization
    from review_portal.programs.models import Program
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


class ConflictSource(LabelledEnum):
    DECLINE = "decline", _l("declared when declining an assignment")
    PROFILE = "profile", _l("declared in the expert's profile")


class ExpertConflict(db.Model):
    """A conflict of interest an expert declared: with one program of an organization, or
    (``program_id`` empty) with the whole organization. Eligibility excludes the expert from
    every review of that program, or of every program of that organization, from then on.

    Kept by the assignment domain: it is an input of eligibility like a declined offer, and
    it is declared through an assignment's decline or from the expert's profile (whose pages
    already call the assignment services).
    """

    __tablename__ = "expert_conflicts"

    id: Mapped[int] = mapped_column(primary_key=True)
    expert_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    #: ``None``: the conflict concerns every program of the organization.
    program_id: Mapped[int | None] = mapped_column(sa.ForeignKey("programs.id"), index=True)
    #: The expert's own words (the decline reason, or the profile declaration).
    text: Mapped[str] = mapped_column(sa.Text)
    declared_at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[ConflictSource] = mapped_column(enum_column(ConflictSource))
    #: The declined assignment, when declared on a decline.
    assignment_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("assignments.id", ondelete="SET NULL")
    )
    #: Who recorded it (the expert themself, so far); ``None`` for rows carried over by the
    #: migration from older declines.
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    expert: Mapped[User] = relationship(foreign_keys=[expert_id])
    organization: Mapped[Organization] = relationship()
    program: Mapped[Program | None] = relationship()

    @property
    def whole_organization(self) -> bool:
        return self.program_id is None
