"""The review (экспертиза) and the timeline of its state changes.

A review is created together with its program (in ``draft``) and, after a
``revision_required`` decision, again for the revised version. Its ``state`` is written
only by :func:`review_portal.workflow.advance`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from review_portal.db import enum_column, utcnow
from review_portal.enums import Decision, Resolution, ReviewKind
from review_portal.extensions import db
from review_portal.workflow import ReviewState, WorkflowError, is_advancing

if TYPE_CHECKING:
    from review_portal.assignment.models import Assignment
    from review_portal.conclusions.models import Conclusion
    from review_portal.programs.models import Program, ProgramVersion


class Review(db.Model):
    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = mapped_column(sa.ForeignKey("programs.id"), index=True)
    #: 1 for the program's first review, then one more for each new review case (a revision
    #: or an appeal panel).
    round: Mapped[int] = mapped_column(default=1)
    #: A program's expertise, or the panel of an appeal against an earlier review's decision
    #: (the appeal, :class:`review_portal.appeals.models.Appeal`, names both reviews).
    kind: Mapped[ReviewKind] = mapped_column(
        enum_column(ReviewKind), default=ReviewKind.REGULAR, server_default="regular"
    )
    #: For an appeal panel scoring only the contested criteria: their ids. The other
    #: criteria keep the appealed review's final scores, kept here exactly as fractions
    #: (``{criterion id: "numerator/denominator"}``).
    scope_criteria: Mapped[list | None] = mapped_column(sa.JSON)
    fixed_scores: Mapped[dict | None] = mapped_column(sa.JSON)
    #: The submitted version under review; empty while the review is a draft.
    version_id: Mapped[int | None] = mapped_column(sa.ForeignKey("program_versions.id"))
    state: Mapped[ReviewState] = mapped_column(
        enum_column(ReviewState), default=ReviewState.DRAFT, index=True
    )
    state_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: The rubric frozen when the review was accepted into expertise.
    rubric_id: Mapped[str | None] = mapped_column(sa.String(80))
    rubric_version: Mapped[int | None] = mapped_column()
    #: Outcome of the divergence check and the rules that fired (set when all sheets are in).
    divergent: Mapped[bool | None] = mapped_column()
    divergence_rules: Mapped[list | None] = mapped_column(sa.JSON)
    #: Third experts asked for beyond the rubric's ``experts_per_review`` (0 or 1).
    extra_experts: Mapped[int] = mapped_column(default=0, server_default="0")
    #: When a discussion between the experts ends (set when a discussion starts).
    discussion_deadline: Mapped[datetime | None] = mapped_column()
    #: How a divergent review was settled, by whom and when.
    resolution: Mapped[Resolution | None] = mapped_column(enum_column(Resolution))
    #: The coordinator's written justification when resolving a reconciliation directly.
    resolution_note: Mapped[str | None] = mapped_column(sa.Text)
    resolved_at: Mapped[datetime | None] = mapped_column()
    resolved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    #: The final result as computed when the review reached ``awaiting_decision``: counted
    #: sheets, final score per criterion, total, percentage, method (see reconciliation.rules).
    final_result: Mapped[dict | None] = mapped_column(sa.JSON)
    #: The decision computed by the rubric's rules, and the one the coordinator confirmed.
    computed_decision: Mapped[Decision | None] = mapped_column(
        enum_column(Decision, name="computed_decision")
    )
    decision: Mapped[Decision | None] = mapped_column(enum_column(Decision))
    #: Written justification when the confirmed decision differs from the computed one.
    override_reason: Mapped[str | None] = mapped_column(sa.Text)
    decided_at: Mapped[datetime | None] = mapped_column()
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    program: Mapped[Program] = relationship(back_populates="reviews", foreign_keys=[program_id])
    version: Mapped[ProgramVersion | None] = relationship()
    transitions: Mapped[list[ReviewTransition]] = relationship(
        back_populates="review",
        order_by="ReviewTransition.id",
        cascade="all, delete-orphan",
    )
    assignments: Mapped[list[Assignment]] = relationship(
        back_populates="review", order_by="Assignment.id"
    )
    conclusions: Mapped[list[Conclusion]] = relationship(
        back_populates="review", order_by="Conclusion.id"
    )

    __table_args__ = (sa.UniqueConstraint("program_id", "round"),)

    @validates("state")
    def _only_through_workflow(self, key, value):
        if self.state is not None and not is_advancing():
            raise WorkflowError("Review.state is changed only through workflow.advance()")
        return value

    def add_transition(self, **fields) -> ReviewTransition:
        """Append a timeline entry (written by :func:`review_portal.workflow.advance` only,
        which keeps the workflow module free of the review's models)."""
        entry = ReviewTransition(**fields)
        self.transitions.append(entry)
        return entry


class ReviewTransition(db.Model):
    """One state change of a review: the program's timeline."""

    __tablename__ = "review_transitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(
        sa.ForeignKey("reviews.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(40))
    from_state: Mapped[ReviewState] = mapped_column(enum_column(ReviewState, name="from_state"))
    to_state: Mapped[ReviewState] = mapped_column(enum_column(ReviewState, name="to_state"))
    #: ``None`` when the portal made the transition by itself.
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)

    review: Mapped[Review] = relationship(back_populates="transitions")
