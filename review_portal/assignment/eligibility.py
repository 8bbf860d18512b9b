"""Who may review what: the eligibility rules (docs/design/rules.md), in one place.

An expert is eligible for a review when approved and active; not unavailable during the
review's period; one of their directions is the program's; their home organization is not
the program's organization; they have not declined, declared a conflict on, or been removed
from this review (nor are on it already); they have no stored conflict of interest with the
review's program or, declared for the whole organization, with its organization (whatever
the round: a conflict declared on round 1 holds for round 2 and after); for an appeal
panel, they sat on none of the program's earlier reviews; they are under their capacity; and, under the ``different`` municipality policy, they are not from the program's
municipality.

:func:`ineligibility_reasons` says *why* an expert is excluded (empty: eligible); the solver
applies exactly the same rules in bulk. The data classes are plain snapshots, so the rules
and the solver run without a database (the property tests and the benchmark use that).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from flask_babel import lazy_gettext as _l

from review_portal.enums import Direction, LabelledEnum, MunicipalityPolicy, ReviewKind

#: Experts a review needs when its rubric does not say (2 by default).
DEFAULT_EXPERTS_PER_REVIEW = 2


class Reason(LabelledEnum):
    NOT_ACTIVE = "not_active", _l("not approved, suspended or switched off")
    UNAVAILABLE = "unavailable", _l("unavailable during the review period")
    DIRECTION = "direction", _l("does not review this direction")
    SAME_ORGANIZATION = "same_organization", _l("works in the program's organization")
    DECLINED = "declined", _l("declined this review or declared a conflict of interest")
    CONFLICT = "conflict", _l("declared a conflict of interest with this program or organization")
    ALREADY_ASSIGNED = "already_assigned", _l("already assigned to this review")
    AT_CAPACITY = "at_capacity", _l("has no free capacity")
    SAME_MUNICIPALITY = "same_municipality", _l("is from the program's municipality")
    SCORED_BEFORE = "scored_before", _l("sat on an earlier review of the program (appeal panel)")


@dataclass(frozen=True)
class ExpertInfo:
    id: int
    directions: frozenset[Direction]
    municipality_id: int
    home_organization_id: int | None = None
    home_organization_inn: str | None = None
    capacity: int = 5
    #: Open (offered or accepted) assignments now.
    open_load: int = 0
    #: Approved, switched on and not suspended.
    active: bool = True
    #: Periods of unavailability, inclusive.
    unavailable: tuple[tuple[date, date], ...] = ()

    @property
    def free_capacity(self) -> int:
        return max(0, self.capacity - self.open_load)

    def available_during(self, start: date, end: date) -> bool:
        return all(until < start or since > end for since, until in self.unavailable)


@dataclass(frozen=True)
class ReviewInfo:
    id: int
    direction: Direction
    municipality_id: int
    organization_id: int
    organization_inn: str | None = None
    #: Experts still to be found for this review.
    needed: int = DEFAULT_EXPERTS_PER_REVIEW
    #: Experts on the review now (any live assignment).
    assigned_expert_ids: frozenset[int] = frozenset()
    #: Experts who declined, declared a conflict or were removed from this review.
    declined_expert_ids: frozenset[int] = frozenset()
    #: Experts with a stored conflict of interest with the program or its organization.
    conflict_expert_ids: frozenset[int] = frozenset()
    #: Experts of the program's earlier reviews, preferred for a re-review.
    previous_expert_ids: frozenset[int] = frozenset()
    #: Experts who may not sit on it: for an appeal panel, everyone who sat on the
    #: program's earlier reviews.
    barred_expert_ids: frozenset[int] = frozenset()
    #: The period the assignment would run (today to the deadline).
    period: tuple[date, date] = field(default=(date.min, date.min))
    #: The review is in reconciliation: the expert it needs is a third expert.
    third: bool = False


def works_in(expert: ExpertInfo, review: ReviewInfo) -> bool:
    """The expert's home organization is the program's organization."""
    if (
        expert.home_organization_id is not None
        and expert.home_organization_id == review.organization_id
    ):
        return True
    return bool(
        expert.home_organization_inn
        and review.organization_inn
        and expert.home_organization_inn == review.organization_inn
    )


def ineligibility_reasons(
    expert: ExpertInfo,
    review: ReviewInfo,
    policy: MunicipalityPolicy = MunicipalityPolicy.DIFFERENT,
    *,
    check_capacity: bool = True,
) -> list[Reason]:
    """Every reason ``expert`` may not review ``review`` (an empty list: eligible)."""
    reasons = []
    if not expert.active:
        reasons.append(Reason.NOT_ACTIVE)
    if not expert.available_during(*review.period):
        reasons.append(Reason.UNAVAILABLE)
    if review.direction not in expert.directions:
        reasons.append(Reason.DIRECTION)
    if works_in(expert, review):
        reasons.append(Reason.SAME_ORGANIZATION)
    if expert.id in review.assigned_expert_ids:
        reasons.append(Reason.ALREADY_ASSIGNED)
    elif expert.id in review.declined_expert_ids:
        reasons.append(Reason.DECLINED)
    if expert.id in review.conflict_expert_ids:
        reasons.append(Reason.CONFLICT)
    if expert.id in review.barred_expert_ids:
        reasons.append(Reason.SCORED_BEFORE)
    if check_capacity and expert.free_capacity <= 0:
        reasons.append(Reason.AT_CAPACITY)
    if (
        MunicipalityPolicy(policy) == MunicipalityPolicy.DIFFERENT
        and expert.municipality_id == review.municipality_id
    ):
        reasons.append(Reason.SAME_MUNICIPALITY)
    return reasons


# --- loading the snapshot from the database ---------------------------------------------


def load_context(
    today: date, review_ids: list[int] | None = None
) -> tuple[list[ReviewInfo], list[ExpertInfo]]:
    """Open reviews (in expertise, or in reconciliation waiting for a third expert) and all
    experts, as snapshots.

    ``review_ids`` limits the reviews (a replacement after a decline); a fixed number of
    queries whatever the size of the region.
    """
    from sqlalchemy import func, select
    from sqlalchemy.orm import aliased

    from review_portal.accounts.models import User, UserRole
    from review_portal.assignment.models import Assignment, ExpertConflict
    from review_portal.enums import AccountStatus, AssignmentStatus, Role
    from review_portal.experts.models import ExpertDirection, ExpertProfile, ExpertUnavailability
    from review_portal.extensions import db
    from review_portal.organizations.models import Organization
    from review_portal.programs.models import ProgramVersion
    from review_portal.reviews.models import Review
    from review_portal.rubrics.registry import rubric_files
    from review_portal.settings.calendar import center_calendar
    from review_portal.settings.services import get_setting
    from review_portal.workflow import ReviewState

    due = center_calendar().add_working_days(today, get_setting("deadline_working_days"))
    live = (AssignmentStatus.OFFERED, AssignmentStatus.ACCEPTED, AssignmentStatus.COMPLETED)
    open_statuses = (AssignmentStatus.OFFERED, AssignmentStatus.ACCEPTED)

    # Experts.
    loads = dict(
        db.session.execute(
            select(Assignment.expert_id, func.count(Assignment.id))
            .where(Assignment.status.in_(open_statuses))
            .group_by(Assignment.expert_id)
        )
        .tuples()
        .all()
    )
    directions: dict[int, set[Direction]] = defaultdict(set)
    for profile_id, direction in db.session.execute(
        select(ExpertDirection.expert_id, ExpertDirection.direction)
    ).tuples():
        directions[profile_id].add(direction)
    unavailable: dict[int, list[tuple[date, date]]] = defaultdict(list)
    for profile_id, since, until in db.session.execute(
        select(
            ExpertUnavailability.expert_id,
            ExpertUnavailability.starts_on,
            ExpertUnavailability.ends_on,
        ).where(ExpertUnavailability.ends_on >= today)
    ).tuples():
        unavailable[profile_id].append((since, until))
    # Plain columns, not ORM objects: at national scale these are thousands of rows.
    rows = db.session.execute(
        select(
            ExpertProfile.id,
            ExpertProfile.user_id,
            ExpertProfile.municipality_id,
            ExpertProfile.home_organization_id,
            ExpertProfile.home_organization_inn,
            ExpertProfile.capacity,
            ExpertProfile.suspended,
            User.status,
            User.active,
        )
        .join(User, ExpertProfile.user_id == User.id)
        .where(User.id.in_(select(UserRole.user_id).where(UserRole.role == Role.EXPERT)))
        .order_by(ExpertProfile.user_id)
    ).tuples()
    experts = [
        ExpertInfo(
            id=user_id,
            directions=frozenset(directions[profile_id]),
            municipality_id=municipality_id,
            home_organization_id=home_organization_id,
            home_organization_inn=home_organization_inn,
            capacity=capacity,
            open_load=loads.get(user_id, 0),
            active=status == AccountStatus.APPROVED and active and not suspended,
            unavailable=tuple(sorted(unavailable[profile_id])),
        )
        for (
            profile_id,
            user_id,
            municipality_id,
            home_organization_id,
            home_organization_inn,
            capacity,
            suspended,
            status,
            active,
        ) in rows
    ]

    # Reviews.
    stmt = (
        select(
            Review.id,
            Review.program_id,
            Review.state,
            Review.rubric_id,
            Review.rubric_version,
            Review.extra_experts,
            Review.kind,
            ProgramVersion.direction,
            ProgramVersion.municipality_id,
            ProgramVersion.organization_id,
            Organization.inn,
        )
        .join(ProgramVersion, Review.version_id == ProgramVersion.id)
        .join(Organization, ProgramVersion.organization_id == Organization.id)
        .where(Review.state.in_((ReviewState.IN_REVIEW, ReviewState.RECONCILIATION)))
        .order_by(Review.id)
    )
    if review_ids is not None:
        stmt = stmt.where(Review.id.in_(review_ids))
    review_rows = db.session.execute(stmt).all()
    # The open reviews as a subquery rather than thousands of bound ids.
    open_review = aliased(Review)
    is_open = [open_review.state.in_((ReviewState.IN_REVIEW, ReviewState.RECONCILIATION))]
    if review_ids is not None:
        is_open.append(open_review.id.in_(review_ids))
    on_review: dict[int, set[int]] = defaultdict(set)
    declined: dict[int, set[int]] = defaultdict(set)
    for review_id, expert_id, status in db.session.execute(
        select(Assignment.review_id, Assignment.expert_id, Assignment.status).where(
            Assignment.review_id.in_(select(open_review.id).where(*is_open))
        )
    ).tuples():
        (on_review if status in live else declined)[review_id].add(expert_id)
    previous: dict[int, set[int]] = defaultdict(set)
    for program_id, review_id, expert_id in db.session.execute(
        select(Review.program_id, Review.id, Assignment.expert_id)
        .join(Assignment, Assignment.review_id == Review.id)
        .where(
            Review.program_id.in_(select(open_review.program_id).where(*is_open)),
            Assignment.status.in_(live),
        )
    ).tuples():
        previous[program_id].add((review_id, expert_id))
    # Declared conflicts with the open reviews' programs or organizations, in one query.
    conflicted_program: dict[int, set[int]] = defaultdict(set)
    conflicted_organization: dict[int, set[int]] = defaultdict(set)
    open_version = aliased(ProgramVersion)
    for expert_id, organization_id, program_id in db.session.execute(
        select(
            ExpertConflict.expert_id, ExpertConflict.organization_id, ExpertConflict.program_id
        ).where(
            ExpertConflict.organization_id.in_(
                select(open_version.organization_id)
                .join(open_review, open_review.version_id == open_version.id)
                .where(*is_open)
            )
        )
    ).tuples():
        if program_id is None:
            conflicted_organization[organization_id].add(expert_id)
        else:
            conflicted_program[program_id].add(expert_id)
    # The rubric folder is looked at once, not once per review.
    rubrics = rubric_files()
    reviews = []
    for row in review_rows:
        wanted = _experts_per_rubric(rubrics, row.rubric_id, row.rubric_version) + (
            row.extra_experts or 0
        )
        assigned = frozenset(on_review[row.id])
        earlier = frozenset(e for r, e in previous[row.program_id] if r != row.id)
        appeal = row.kind == ReviewKind.APPEAL
        reviews.append(
            ReviewInfo(
                id=row.id,
                direction=row.direction,
                municipality_id=row.municipality_id,
                organization_id=row.organization_id,
                organization_inn=row.inn,
                needed=max(0, wanted - len(assigned)),
                assigned_expert_ids=assigned,
                declined_expert_ids=frozenset(declined[row.id] - assigned),
                conflict_expert_ids=frozenset(
                    (
                        conflicted_program[row.program_id]
                        | conflicted_organization[row.organization_id]
                    )
                    - assigned
                ),
                previous_expert_ids=frozenset() if appeal else earlier,
                barred_expert_ids=(earlier - assigned) if appeal else frozenset(),
                period=(today, due),
                third=row.state == ReviewState.RECONCILIATION,
            )
        )
    return reviews, experts


def experts_per_review(review) -> int:
    """How many experts the review's rubric asks for (third experts come on top, later)."""
    from review_portal.rubrics.registry import rubric_files

    return _experts_per_rubric(rubric_files(), review.rubric_id, review.rubric_version)


def _experts_per_rubric(rubrics: dict, rubric_id: str, version: int) -> int:
    rubric = rubrics.get((rubric_id, version))
    if rubric is None:
        return DEFAULT_EXPERTS_PER_REVIEW
    return experts_wanted_by(rubric)


def experts_wanted_by(rubric) -> int:
    """How many experts ``rubric`` asks for on a review (third experts come on top)."""
    return int(rubric.data.get("experts_per_review", DEFAULT_EXPERTS_PER_REVIEW))
