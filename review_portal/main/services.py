"""What the home pages show: counts and lists for each role, each in a fixed number of queries."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date

import sqlalchemy as sa
from sqlalchemy import func, select
from sqlalchemy.orm import contains_eager, load_only

from review_portal.accounts.models import User
from review_portal.assignment.models import Assignment
from review_portal.enums import AccountStatus, AssignmentStatus
from review_portal.extensions import db
from review_portal.organizations.models import Municipality, Organization
from review_portal.programs.models import Program, ProgramVersion
from review_portal.reviews.models import Review
from review_portal.workflow import ReviewState


def count_by_state(*conditions) -> dict[ReviewState, int]:
    """Programs per state of their current review, optionally filtered."""
    stmt = _by_state() if not conditions else _by_state().where(*conditions)
    counts = dict.fromkeys(ReviewState, 0)
    counts.update({ReviewState(state): n for state, n in db.session.execute(stmt)})
    return counts


# Statements every home page runs, built once per process: building one costs more CPU
# than running it (values are bound per call).


@functools.cache
def _by_state():
    return (
        select(Review.state, func.count(Program.id))
        .join(Program, Program.current_review_id == Review.id)
        .group_by(Review.state)
    )


@functools.cache
def _pending_registrations():
    return select(func.count(User.id)).where(User.status == AccountStatus.PENDING)


def pending_registrations_count() -> int:
    return db.session.execute(_pending_registrations()).scalar_one()


def organization_programs(organization_id: int) -> list[tuple[Program, Review | None]]:
    stmt = (
        select(Program, Review)
        .outerjoin(Review, Program.current_review_id == Review.id)
        .where(Program.organization_id == organization_id)
        .order_by(Program.updated_at.desc())
    )
    return list(db.session.execute(stmt).tuples())


@dataclass(frozen=True)
class ExpertAssignmentRow:
    """One assignment as its expert sees it: the program as submitted (the version under
    review), where it runs and who provides it; never anyone's name or contact."""

    assignment: Assignment
    program_id: int
    #: The reviewed version's data (the program's own while no version is frozen).
    data: ProgramVersion | Program
    municipality: str
    organization: str

    def days_left(self, today: date) -> int:
        return (self.assignment.due_on - today).days


@dataclass
class ExpertAssignments:
    """The expert's assignments grouped for the home page."""

    today: date
    #: Offered, waiting for the expert's answer (deadline not yet passed).
    to_accept: list[ExpertAssignmentRow] = field(default_factory=list)
    #: Accepted, deadline not yet passed.
    in_progress: list[ExpertAssignmentRow] = field(default_factory=list)
    #: Offered or accepted and past the deadline.
    overdue: list[ExpertAssignmentRow] = field(default_factory=list)
    #: Completed (score sheet submitted), the latest :data:`SUBMITTED_SHOWN`.
    submitted: list[ExpertAssignmentRow] = field(default_factory=list)

    @property
    def open_count(self) -> int:
        return len(self.to_accept) + len(self.in_progress) + len(self.overdue)


#: How many completed assignments the home page lists (the newest).
SUBMITTED_SHOWN = 50


#: What the expert's list reads of a program (or its version under review) and of a review.
_PROGRAM_SHOWN = ("title", "direction", "level", "age_min", "age_max", "municipality_id")
_REVIEW_SHOWN = (
    Review.program_id,
    Review.version_id,
    Review.state,
    Review.discussion_deadline,
    Review.extra_experts,
)


@functools.cache
def _expert_assignment_statement(submitted: bool):
    """The expert's open assignments (soonest deadline first) or, ``submitted``, the latest
    completed ones, each with its review, program, version, municipality and organization;
    the expert is the bound ``user_id``."""
    stmt = (
        select(Assignment, Program, ProgramVersion, Municipality.name, Organization.short_name)
        .join(Review, Assignment.review_id == Review.id)
        .join(Program, Review.program_id == Program.id)
        .outerjoin(ProgramVersion, Review.version_id == ProgramVersion.id)
        .join(
            Municipality,
            Municipality.id
            == func.coalesce(ProgramVersion.municipality_id, Program.municipality_id),
        )
        .join(Organization, Program.organization_id == Organization.id)
        .where(Assignment.expert_id == sa.bindparam("user_id"))
        .options(
            # The review comes with its assignment (the discussion links read it); of the
            # review, program and version only what the list shows (the rest loads if read).
            contains_eager(Assignment.review).load_only(*_REVIEW_SHOWN),
            load_only(*(getattr(Program, name) for name in _PROGRAM_SHOWN)),
            load_only(*(getattr(ProgramVersion, name) for name in _PROGRAM_SHOWN)),
        )
    )
    if submitted:
        return (
            stmt.where(Assignment.status == AssignmentStatus.COMPLETED)
            .order_by(Assignment.due_on.desc(), Assignment.id.desc())
            .limit(SUBMITTED_SHOWN)
        )
    return stmt.where(
        Assignment.status.in_([AssignmentStatus.OFFERED, AssignmentStatus.ACCEPTED])
    ).order_by(Assignment.due_on, Assignment.id)


def _expert_assignment_rows(user_id: int, *, submitted: bool) -> list[ExpertAssignmentRow]:
    return [
        ExpertAssignmentRow(assignment, program.id, version or program, municipality, organization)
        for assignment, program, version, municipality, organization in db.session.execute(
            _expert_assignment_statement(submitted), {"user_id": user_id}
        )
    ]


def expert_assignments(user_id: int, today: date | None = None) -> ExpertAssignments:
    """The expert's assignments by group, soonest deadline first (two queries).

    An offered assignment past its deadline is overdue (and can still be answered); a
    declined or withdrawn one is not shown.
    """
    from review_portal.assignment.services import local_today

    groups = ExpertAssignments(today=today or local_today())
    for row in _expert_assignment_rows(user_id, submitted=False):
        if row.assignment.due_on < groups.today:
            groups.overdue.append(row)
        elif row.assignment.status == AssignmentStatus.OFFERED:
            groups.to_accept.append(row)
        else:
            groups.in_progress.append(row)
    groups.submitted = _expert_assignment_rows(user_id, submitted=True)
    return groups
