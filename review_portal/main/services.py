"""What the home pages show: counts and lists for each role, each in a fixed number of queries."""

from __future__ import annotations

from sqlalchemy import func, select

from review_portal.accounts.models import User
from review_portal.assignment.models import Assignment
from review_portal.enums import AccountStatus, AssignmentStatus, Role
from review_portal.extensions import db
from review_portal.programs.models import Program
from review_portal.reviews.models import Review
from review_portal.workflow import ReviewState

#: Which home page a user lands on, by the first of their roles in this order.
HOME_BY_ROLE = (
    (Role.ADMIN, "main.coordinator_home"),
    (Role.COORDINATOR, "main.coordinator_home"),
    (Role.EXPERT, "main.expert_home"),
    (Role.APPLICANT, "main.provider_home"),
    (Role.MUNICIPAL, "main.municipal_home"),
)


def home_endpoint(user: User) -> str:
    """The endpoint of ``user``'s own home page."""
    if not user.is_approved:
        return "main.pending"
    for role, endpoint in HOME_BY_ROLE:
        if user.has_role(role):
            return endpoint
    return "main.pending"


def count_by_state(*conditions) -> dict[ReviewState, int]:
    """Programs per state of their current review, optionally filtered."""
    stmt = (
        select(Review.state, func.count(Program.id))
        .join(Program, Program.current_review_id == Review.id)
        .where(*conditions)
        .group_by(Review.state)
    )
    counts = dict.fromkeys(ReviewState, 0)
    counts.update({ReviewState(state): n for state, n in db.session.execute(stmt)})
    return counts


def pending_registrations_count() -> int:
    return db.session.execute(
        select(func.count(User.id)).where(User.status == AccountStatus.PENDING)
    ).scalar_one()


def organization_programs(organization_id: int) -> list[tuple[Program, Review | None]]:
    stmt = (
        select(Program, Review)
        .outerjoin(Review, Program.current_review_id == Review.id)
        .where(Program.organization_id == organization_id)
        .order_by(Program.updated_at.desc())
    )
    return list(db.session.execute(stmt).tuples())


def expert_open_assignments(user_id: int) -> list[tuple[Assignment, Review, Program]]:
    stmt = (
        select(Assignment, Review, Program)
        .join(Review, Assignment.review_id == Review.id)
        .join(Program, Review.program_id == Program.id)
        .where(
            Assignment.expert_id == user_id,
            Assignment.status.in_([AssignmentStatus.OFFERED, AssignmentStatus.ACCEPTED]),
        )
        .order_by(Assignment.due_on)
    )
    return list(db.session.execute(stmt).tuples())
