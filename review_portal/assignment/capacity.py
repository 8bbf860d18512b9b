"""The capacity check before a run: per direction, the open demand against the free
capacity of the experts who could take it, with any shortfall named.

:func:`capacity_check` works on the snapshots of :func:`eligibility.load_context` (as the
run has them); :func:`load_capacity_check` gives the same figures straight from the
database, reading only what the check needs (pages that show the check without a run).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass

from review_portal.assignment.eligibility import ExpertInfo, ReviewInfo
from review_portal.enums import Direction


@dataclass(frozen=True)
class DirectionCapacity:
    direction: Direction
    #: Programs still needing experts, and the expert places they need.
    programs: int
    demand: int
    #: Free places of active experts of the direction (an expert of two directions counts
    #: in both, so the total over directions can exceed what they can really take).
    capacity: int
    experts: int

    @property
    def shortfall(self) -> int:
        return max(0, self.demand - self.capacity)


def capacity_check(reviews: list[ReviewInfo], experts: list[ExpertInfo]) -> list[DirectionCapacity]:
    programs: dict[Direction, int] = defaultdict(int)
    demand: dict[Direction, int] = defaultdict(int)
    for review in reviews:
        if review.needed > 0:
            programs[review.direction] += 1
            demand[review.direction] += review.needed
    capacity: dict[Direction, int] = defaultdict(int)
    counts: dict[Direction, int] = defaultdict(int)
    for expert in experts:
        if not expert.active:
            continue
        for direction in expert.directions:
            capacity[direction] += expert.free_capacity
            counts[direction] += 1
    return [DirectionCapacity(d, programs[d], demand[d], capacity[d], counts[d]) for d in Direction]


def load_capacity_check() -> list[DirectionCapacity]:
    """:func:`capacity_check` of :func:`eligibility.load_context`'s snapshots, with the
    database doing the counting: the open reviews grouped by direction, rubric, extra
    experts and experts on the review (a few dozen rows), the active experts' free places
    summed per direction. The rules are those of ``load_context`` and ``ExpertInfo``; a
    test holds the two equal."""
    from review_portal.assignment.eligibility import _experts_per_rubric
    from review_portal.extensions import db
    from review_portal.rubrics.registry import rubric_files

    demand_statement, places_statement = _statements()
    groups = db.session.execute(demand_statement).tuples()
    rubrics = rubric_files()
    programs: dict[Direction, int] = defaultdict(int)
    demand: dict[Direction, int] = defaultdict(int)
    for direction, rubric_id, version, extra, on, count in groups:
        wanted = _experts_per_rubric(rubrics, rubric_id, version) + (extra or 0)
        needed = max(0, wanted - (on or 0))
        if needed > 0:
            programs[direction] += count
            demand[direction] += needed * count

    places = db.session.execute(places_statement).tuples()
    capacity: dict[Direction, int] = defaultdict(int)
    counts: dict[Direction, int] = defaultdict(int)
    for direction, free_places, experts in places:
        capacity[direction] = int(free_places or 0)
        counts[direction] = experts
    return [DirectionCapacity(d, programs[d], demand[d], capacity[d], counts[d]) for d in Direction]


@functools.cache
def _statements():
    """:func:`load_capacity_check`'s two statements (no parameters: built once per process,
    as building them costs more CPU than running them on the coordinator's home page)."""
    from sqlalchemy import case, func, select

    from review_portal.accounts.models import User, UserRole
    from review_portal.assignment.models import Assignment
    from review_portal.enums import AccountStatus, AssignmentStatus, Role
    from review_portal.experts.models import ExpertDirection, ExpertProfile
    from review_portal.programs.models import ProgramVersion
    from review_portal.reviews.models import Review
    from review_portal.workflow import ReviewState

    live = (AssignmentStatus.OFFERED, AssignmentStatus.ACCEPTED, AssignmentStatus.COMPLETED)
    open_statuses = (AssignmentStatus.OFFERED, AssignmentStatus.ACCEPTED)

    on_review = (
        select(Assignment.review_id, func.count().label("assigned"))
        .where(Assignment.status.in_(live))
        .group_by(Assignment.review_id)
        .subquery()
    )
    demand = (
        select(
            ProgramVersion.direction,
            Review.rubric_id,
            Review.rubric_version,
            Review.extra_experts,
            on_review.c.assigned,
            func.count(),
        )
        .join(ProgramVersion, Review.version_id == ProgramVersion.id)
        .outerjoin(on_review, on_review.c.review_id == Review.id)
        .where(Review.state.in_((ReviewState.IN_REVIEW, ReviewState.RECONCILIATION)))
        .group_by(
            ProgramVersion.direction,
            Review.rubric_id,
            Review.rubric_version,
            Review.extra_experts,
            on_review.c.assigned,
        )
    )
    loads = (
        select(Assignment.expert_id, func.count(Assignment.id).label("load"))
        .where(Assignment.status.in_(open_statuses))
        .group_by(Assignment.expert_id)
        .subquery()
    )
    free = ExpertProfile.capacity - func.coalesce(loads.c.load, 0)
    places = (
        select(
            ExpertDirection.direction,
            func.sum(case((free > 0, free), else_=0)),
            func.count(),
        )
        .join(ExpertProfile, ExpertDirection.expert_id == ExpertProfile.id)
        .join(User, ExpertProfile.user_id == User.id)
        .outerjoin(loads, loads.c.expert_id == ExpertProfile.user_id)
        .where(
            User.id.in_(select(UserRole.user_id).where(UserRole.role == Role.EXPERT)),
            User.status == AccountStatus.APPROVED,
            User.active.is_(True),
            ExpertProfile.suspended.is_(False),
        )
        .group_by(ExpertDirection.direction)
    )
    return demand, places
