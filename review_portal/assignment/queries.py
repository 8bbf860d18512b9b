"""Reads of the assignment domain: the conflicts of interest experts have declared, as the
coordinator's pages list them (each in a fixed number of queries); who sits on which
review, whether a review needs experts, the coordinators to tell, an expert's open work."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import joinedload

from review_portal.accounts.models import User, UserRole
from review_portal.assignment.models import Assignment, ExpertConflict
from review_portal.enums import AccountStatus, AssignmentStatus, Role
from review_portal.extensions import db
from review_portal.reviews.models import Review
from review_portal.workflow import FINAL_STATES, ReviewState


def conflicts_of_expert(expert_id: int) -> list[ExpertConflict]:
    """Every conflict ``expert_id`` declared, newest first, with its organization and
    program (one query)."""
    return list(
        db.session.execute(
            select(ExpertConflict)
            .options(joinedload(ExpertConflict.organization), joinedload(ExpertConflict.program))
            .where(ExpertConflict.expert_id == expert_id)
            .order_by(ExpertConflict.declared_at.desc(), ExpertConflict.id.desc())
        ).scalars()
    )


def conflicts_for_review(review) -> dict[int, ExpertConflict]:
    """Per expert, the latest declared conflict that excludes them from ``review``: one with
    its program, or with its whole organization (one query for all the candidates)."""
    program = review.program
    rows = db.session.execute(
        select(ExpertConflict)
        .where(
            or_(
                ExpertConflict.program_id == program.id,
                (ExpertConflict.organization_id == program.organization_id)
                & ExpertConflict.program_id.is_(None),
            )
        )
        .order_by(ExpertConflict.declared_at, ExpertConflict.id)
    ).scalars()
    return {conflict.expert_id: conflict for conflict in rows}


def needs_experts(review: Review) -> bool:
    """Experts may be added: the review is in expertise, or in reconciliation with a third
    expert asked for."""
    return review.state == ReviewState.IN_REVIEW or (
        review.state == ReviewState.RECONCILIATION and bool(review.extra_experts)
    )


def active_coordinators() -> list[User]:
    """The coordinators who receive the portal's messages (approved and switched on)."""
    return list(
        db.session.execute(
            select(User)
            .where(
                User.id.in_(select(UserRole.user_id).where(UserRole.role == Role.COORDINATOR)),
                User.status == AccountStatus.APPROVED,
                User.active.is_(True),
            )
            .order_by(User.id)
        ).scalars()
    )


def accepted_open_assignments(expert: User) -> list[Assignment]:
    """``expert``'s accepted assignments whose sheet is not submitted yet, on reviews still
    running: the ones a coordinator reassigns when the expert is suspended."""
    return list(
        db.session.execute(
            select(Assignment)
            .join(Review, Assignment.review_id == Review.id)
            .where(
                Assignment.expert_id == expert.id,
                Assignment.status == AssignmentStatus.ACCEPTED,
                Review.state.notin_(FINAL_STATES),
            )
            .order_by(Assignment.due_on, Assignment.id)
        ).scalars()
    )
