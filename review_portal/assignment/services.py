"""Assignment operations: automatic runs (dry run and apply), manual assignment, accept,
decline, removal, the automatic replacement that follows a vacancy, the withdrawal of a
suspended expert's offers and the closing of a withdrawn program's assignments; and the
declaration of a conflict of interest (on a decline, or from the expert's profile), which
eligibility then applies to every later review of the program or organization.

An assignment's status changes only here. A vacancy that no eligible expert can fill is
told to the coordinators at once (and reminded daily by :mod:`.reminders`), so a review
never waits for an expert unnoticed.

Every applying operation holds the ``assignment`` lock for its transaction, reads the state
after taking it and checks eligibility again, so two runs at the same moment can neither
put an expert twice on a review nor exceed a capacity. Services flush and audit; the caller
commits.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import date

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from review_portal.accounts.models import User
from review_portal.assignment.eligibility import (
    ExpertInfo,
    Reason,
    ReviewInfo,
    ineligibility_reasons,
    load_context,
)
from review_portal.assignment.models import Assignment, ConflictSource, ExpertConflict
from review_portal.assignment.permissions import can_respond_to_assignment
from review_portal.assignment.queries import (
    active_coordinators,
    conflicts_for_review,
    needs_experts,
)
from review_portal.audit.services import record_event
from review_portal.db import utcnow
from review_portal.enums import (
    AccountStatus,
    AssignmentRole,
    AssignmentStatus,
    MunicipalityPolicy,
    NotificationKind,
    Role,
)
from review_portal.errors import DomainError, Forbidden, InvalidInput
from review_portal.extensions import db
from review_portal.i18n import in_language_of, local_date, quote
from review_portal.locks import hold_lock
from review_portal.notifications.services import notify, tell
from review_portal.organizations.models import Organization
from review_portal.permissions import (
    authorize,
    authorize_staff_on,
    has_role,
    is_staff,
    seated_reviews,
)
from review_portal.reviews.models import Review
from review_portal.settings.calendar import center_calendar
from review_portal.settings.services import get_setting
from review_portal.urls import public_url, site_path

log = logging.getLogger(__name__)

OPEN_STATUSES = (AssignmentStatus.OFFERED, AssignmentStatus.ACCEPTED)
#: Longest text of a conflict declaration (the decline reason's limit).
MAX_CONFLICT_TEXT = 2000


class AssignmentError(DomainError):
    """An assignment operation refused for a reason the user should read."""


def local_today() -> date:
    """Today in the portal's time zone (deadlines are dates there)."""
    return local_date(utcnow())


def due_date(start: date) -> date:
    """The deadline of an assignment made on ``start``: the ``deadline_working_days``-th
    working day after it, on the center's calendar (stored on the assignment, so a later
    change of the setting or the calendar never moves it)."""
    return center_calendar().add_working_days(start, get_setting("deadline_working_days"))


def policy() -> MunicipalityPolicy:
    return MunicipalityPolicy(get_setting("municipality_policy"))


@dataclass
class RunResult:
    plan: object  # solver.Plan
    reviews: list[ReviewInfo]
    experts: list[ExpertInfo]
    created: list[Assignment]
    #: Reviews left out because the acting coordinator sits on them as an expert.
    refused: list[ReviewInfo] = field(default_factory=list)


def run_assignment(
    actor: User | None,
    *,
    apply: bool,
    seed: int = 0,
    review_ids: list[int] | None = None,
    run_id: int | None = None,
) -> RunResult:
    """Solve the open reviews (or ``review_ids``) at once; with ``apply``, create the plan's
    assignments in this transaction (under the assignment lock, on fresh data). Logs one
    line (``run_id``: the job's id when a job runs it)."""
    from review_portal.assignment.solver import solve

    started = time.perf_counter()
    if actor is not None:
        authorize(is_staff(actor))
    if apply:
        hold_lock("assignment")
    today = local_today()
    reviews, experts = load_context(today, review_ids)
    # Re-checked per review: a coordinator never assigns experts to a review they sit on,
    # nor themself to any review (the expert seat would follow a staff act of their own).
    if actor is not None:
        experts = [e for e in experts if e.id != actor.id]
    seated = seated_reviews(actor, [r.id for r in reviews])
    refused = [r for r in reviews if r.id in seated]
    reviews = [r for r in reviews if r.id not in seated]
    plan = solve(reviews, experts, policy(), seed=seed)
    created: list[Assignment] = []
    if apply:
        by_id = {r.id: r for r in reviews}
        for review_id, expert_ids in sorted(plan.assignments.items()):
            for expert_id in expert_ids:
                created.append(
                    _create(
                        by_id[review_id],
                        expert_id,
                        actor,
                        role=AssignmentRole.THIRD
                        if by_id[review_id].third
                        else AssignmentRole.INITIAL,
                        today=today,
                    )
                )
        db.session.flush()
    if apply and plan.demand:
        # A run with nothing to fill changes nothing and leaves no record.
        record_event(
            "assignment.run",
            actor=actor,
            object_type="assignment_run",
            object_id=None,
            after={
                "seed": seed,
                "reviews": len(reviews),
                "filled": plan.filled,
                "demand": plan.demand,
                "created": len(created),
            },
        )
    duration = round((time.perf_counter() - started) * 1000, 1)
    log.info(
        "assignment run %s (%s): %s reviews, %s of %s seats filled, %s assigned in %s ms",
        run_id if run_id is not None else "-",
        "applied" if apply else "dry run",
        len(reviews),
        plan.filled,
        plan.demand,
        len(created),
        duration,
        extra={
            "run_id": run_id,
            "apply": apply,
            "seed": seed,
            "reviews": len(reviews),
            "experts": len(experts),
            "demand": plan.demand,
            "filled": plan.filled,
            "assigned": len(created),
            "duration_ms": duration,
        },
    )
    return RunResult(plan=plan, reviews=reviews, experts=experts, created=created, refused=refused)


def plan_fingerprint(plan) -> str:
    """What a dry run showed, as a hash: the plan applied must be the plan read."""
    canonical = json.dumps(sorted((k, list(v)) for k, v in plan.assignments.items()))
    return hashlib.sha256(canonical.encode()).hexdigest()


def start_assignment_run(actor: User, *, seed: int, fingerprint: str | None) -> object:
    """A queued job applying the automatic assignment with ``seed`` — only if the plan is
    still the one of the dry run the coordinator read (``fingerprint``). Flushes; the
    caller commits and starts it."""
    from review_portal.jobs.services import RUN_ASSIGNMENT, create_job

    authorize(is_staff(actor))
    return create_job(
        RUN_ASSIGNMENT,
        {"seed": seed, "fingerprint": fingerprint or None, "actor_id": actor.id},
        actor,
        total=0,
    )


def run_assignment_job(job_id: int) -> None:
    """Job handler (``run_assignment``): solve and apply in one transaction, together with
    the job's result; a plan that differs from the dry run is applied not at all (the job
    stops with the reason, and the coordinator looks at the new plan)."""
    from review_portal.jobs.models import Job
    from review_portal.jobs.services import JobStop, finish_counted

    job = db.session.get(Job, job_id)
    payload = dict(job.payload)
    actor = db.session.get(User, payload["actor_id"])
    result = run_assignment(actor, apply=True, seed=int(payload.get("seed") or 0), run_id=job_id)
    expected = payload.get("fingerprint")
    if expected and plan_fingerprint(result.plan) != expected:
        # The job's unit of work (run_job) rolls back everything this run assigned.
        raise JobStop(
            _l(
                "The situation changed since the dry run (new programs, answers or experts). "
                "Nothing was assigned: look at the new plan and apply it again."
            )
        )
    finish_counted(
        job_id,
        total=result.plan.demand,
        done=result.plan.filled,
        result={
            "created": len(result.created),
            "filled": result.plan.filled,
            "demand": result.plan.demand,
        },
    )


def _next_seat(review_id: int) -> int:
    seats = db.session.execute(
        select(Assignment.seat).where(Assignment.review_id == review_id)
    ).scalars()
    return max(seats, default=0) + 1


def _create(
    review: ReviewInfo, expert_id: int, actor: User | None, *, role: AssignmentRole, today: date
) -> Assignment:
    assignment = Assignment(
        review_id=review.id,
        expert_id=expert_id,
        role=role,
        status=AssignmentStatus.OFFERED,
        seat=_next_seat(review.id),
        assigned_by_id=actor.id if actor is not None else None,
        due_on=due_date(today),
    )
    db.session.add(assignment)
    db.session.flush()
    record_event(
        "assignment.create",
        actor=actor,
        object_type="assignment",
        object_id=assignment.id,
        after={
            "review_id": review.id,
            "expert_id": expert_id,
            "seat": assignment.seat,
            "due_on": assignment.due_on,
            "automatic": actor is None,
        },
    )
    expert = db.session.get(User, expert_id)
    tell(
        expert,
        NotificationKind.ASSIGNMENTS,
        _l("New assignment: please accept or decline it."),
        link=site_path("main.expert_home"),
        subject=_l("New assignment on the program review portal"),
        body=_l(
            "You have been assigned a program to review. Please accept or decline it: "
            "%(url)s\nDeadline: %(due)s.",
            url=public_url("main.expert_home"),
            due=assignment.due_on.strftime("%d.%m.%Y"),
        ),
    )
    return assignment


def candidates(review: Review) -> list[tuple[ExpertInfo, list[Reason]]]:
    """Every expert with the reasons they may not take ``review`` (empty: eligible)."""
    reviews, experts = load_context(local_today(), [review.id])
    if not reviews:
        return []
    info = reviews[0]
    rules = policy()
    return [(expert, ineligibility_reasons(expert, info, rules)) for expert in experts]


def assign_manually(review: Review, expert: User, actor: User) -> Assignment:
    """A coordinator's assignment of ``expert``, checked by the same rules as the solver."""
    authorize_staff_on(actor, review)
    hold_lock("assignment")
    if not needs_experts(review):
        raise AssignmentError(
            _l(
                "Experts are assigned only to programs under expert review or waiting for a third expert."
            )
        )
    if expert.id == actor.id:
        raise AssignmentError(_l("A coordinator cannot assign themself as an expert."))
    reviews, experts = load_context(local_today(), [review.id])
    info = reviews[0]
    found = next((e for e in experts if e.id == expert.id), None)
    if found is None:
        raise AssignmentError(_l("This user is not a registered expert."))
    reasons = ineligibility_reasons(found, info, policy())
    if reasons:
        conflict = (
            conflicts_for_review(review).get(expert.id) if Reason.CONFLICT in reasons else None
        )
        raise AssignmentError(
            _l(
                "The expert cannot be assigned: %(reasons)s.",
                reasons="; ".join(
                    conflict_reason(conflict)
                    if r == Reason.CONFLICT and conflict is not None
                    else str(r.label)
                    for r in reasons
                ),
            )
        )
    role = AssignmentRole.THIRD if info.third else AssignmentRole.INITIAL
    return _create(info, expert.id, actor, role=role, today=local_today())


def may_take_work(expert: User) -> bool:
    """The expert may take work now: approved, switched on and not suspended (the same
    "active" as the eligibility rules')."""
    profile = expert.expert_profile
    return (
        expert.status == AccountStatus.APPROVED
        and expert.active
        and profile is not None
        and not profile.suspended
    )


def accept_assignment(assignment: Assignment, actor: User) -> None:
    """The expert takes the offer. Refused when it is no longer waiting for an answer, and
    when the expert may take no work now: an offer made before a suspension (or before the
    account was switched off) cannot be accepted after it.

    Holds the ``assignment`` lock and reads the offer and the expert after taking it, so an
    acceptance and a suspension at the same moment happen one after the other: either the
    offer is withdrawn first, or it is accepted first and the suspension lists it.
    """
    authorize(can_respond_to_assignment(actor, assignment))
    hold_lock("assignment")
    db.session.refresh(assignment)
    expert = assignment.expert
    db.session.refresh(expert)
    if expert.expert_profile is not None:
        db.session.refresh(expert.expert_profile)
    if assignment.status != AssignmentStatus.OFFERED:
        raise AssignmentError(_l("This assignment is no longer waiting for an answer."))
    if not may_take_work(expert):
        raise AssignmentError(
            _l(
                "Your work as an expert is suspended or your account is not active: "
                "the assignment cannot be accepted."
            )
        )
    assignment.status = AssignmentStatus.ACCEPTED
    assignment.responded_at = utcnow()
    record_event(
        "assignment.accept",
        actor=actor,
        object_type="assignment",
        object_id=assignment.id,
        before={"status": "offered"},
        after={"status": "accepted"},
    )


def decline_assignment(
    assignment: Assignment,
    actor: User,
    reason: str,
    conflict: bool = False,
    *,
    whole_organization: bool = False,
) -> list[Assignment]:
    """Decline with a reason (a declared conflict of interest is one); a replacement is
    assigned at once when an eligible expert exists. Returns the replacements.

    A conflict is stored (:class:`ExpertConflict`, the reason as its text) against the
    program, or against the program's whole organization with ``whole_organization``, so
    the expert is never offered that program's (organization's) later reviews either."""
    authorize(can_respond_to_assignment(actor, assignment))
    reason = (reason or "").strip()
    if not reason:
        raise AssignmentError(_l("A reason is required for this action."))
    if len(reason) > MAX_CONFLICT_TEXT:
        raise InvalidInput(_l("The text is too long."))
    if assignment.status not in OPEN_STATUSES:
        raise AssignmentError(_l("This assignment is no longer open."))
    before = assignment.status
    assignment.status = AssignmentStatus.DECLINED
    assignment.responded_at = utcnow()
    assignment.decline_reason = reason
    assignment.conflict_declared = conflict
    db.session.flush()
    record_event(
        "assignment.decline",
        actor=actor,
        object_type="assignment",
        object_id=assignment.id,
        before={"status": before},
        after={"status": "declined", "reason": reason, "conflict": conflict},
    )
    if conflict:
        program = assignment.review.program
        _store_conflict(
            assignment.expert,
            actor,
            organization_id=program.organization_id,
            program_id=None if whole_organization else program.id,
            text=reason,
            source=ConflictSource.DECLINE,
            assignment_id=assignment.id,
        )
    return fill_vacancy(assignment.review, actor=None)


def declare_organization_conflict(
    expert: User, actor: User, organization_id: int, text: str
) -> ExpertConflict:
    """The expert's own declaration from their profile ("I work with / advise this
    organization"): a conflict with every program of an approved organization. Only the
    expert declares for themself (:class:`Forbidden` otherwise); an unknown or unapproved
    organization, an empty or too long text raise :class:`InvalidInput`."""
    if actor.id != expert.id or not has_role(expert, Role.EXPERT):
        raise Forbidden(_l("Only the expert may declare their own conflicts of interest."))
    text = (text or "").strip()
    if not text:
        raise InvalidInput(_l("A reason is required for this action."))
    if len(text) > MAX_CONFLICT_TEXT:
        raise InvalidInput(_l("The text is too long."))
    organization = db.session.get(Organization, organization_id)
    if organization is None or organization.status != AccountStatus.APPROVED:
        raise InvalidInput(_l("Choose an organization registered on the portal."))
    return _store_conflict(
        expert,
        actor,
        organization_id=organization.id,
        program_id=None,
        text=text,
        source=ConflictSource.PROFILE,
    )


def _store_conflict(
    expert: User,
    actor: User,
    *,
    organization_id: int,
    program_id: int | None,
    text: str,
    source: ConflictSource,
    assignment_id: int | None = None,
) -> ExpertConflict:
    conflict = ExpertConflict(
        expert_id=expert.id,
        organization_id=organization_id,
        program_id=program_id,
        text=text,
        source=source,
        assignment_id=assignment_id,
        recorded_by_id=actor.id if actor is not None else None,
    )
    db.session.add(conflict)
    db.session.flush()
    record_event(
        "expert.conflict_declare",
        actor=actor,
        object_type="expert_conflict",
        object_id=conflict.id,
        after={
            "expert_id": expert.id,
            "organization_id": organization_id,
            "program_id": program_id,
            "source": source.value,
            "assignment_id": assignment_id,
            "text": text,
        },
    )
    return conflict


def conflict_reason(conflict: ExpertConflict) -> str:
    """How a candidate list and a refusal name a stored conflict: its date and text."""
    return str(
        _l(
            "Declared a conflict of interest on %(date)s: %(text)s",
            date=local_date(conflict.declared_at).strftime("%d.%m.%Y"),
            text=conflict.text,
        )
    )


def remove_assignment(assignment: Assignment, actor: User, reason: str) -> list[Assignment]:
    """A coordinator takes an expert off a review (with a reason); a replacement follows."""
    authorize_staff_on(actor, assignment.review)
    reason = (reason or "").strip()
    if not reason:
        raise AssignmentError(_l("A reason is required for this action."))
    if assignment.status not in OPEN_STATUSES:
        raise AssignmentError(_l("This assignment is no longer open."))
    before = assignment.status
    assignment.status = AssignmentStatus.WITHDRAWN
    assignment.decline_reason = reason
    db.session.flush()
    record_event(
        "assignment.remove",
        actor=actor,
        object_type="assignment",
        object_id=assignment.id,
        before={"status": before},
        after={"status": "withdrawn", "reason": reason},
    )
    expert = assignment.expert
    notify(
        expert,
        _l("You have been taken off an assignment by the coordinator."),
        kind=NotificationKind.ASSIGNMENTS,
    )
    return fill_vacancy(assignment.review, actor=None)


def fill_vacancy(review: Review, actor: User | None) -> list[Assignment]:
    """Assign the experts ``review`` still needs, by the same solver (the portal acts).
    When some place stays empty (nobody is eligible), the coordinators are told at once."""
    if not needs_experts(review):
        return []
    result = run_assignment(actor, apply=True, review_ids=[review.id])
    missing = result.plan.demand - result.plan.filled
    if missing > 0:
        tell_coordinators_experts_wanted([(review, missing)])
    return result.created


# --- coordinators told about reviews waiting for an expert -------------------------------

#: The audit action of a message to the coordinators about a review nobody can take; the
#: daily reminder looks for it, so the coordinators hear of each review once a day at most.
EXPERTS_WANTED = "review.experts_wanted"


def tell_coordinators_experts_wanted(
    waiting: list[tuple[Review, int]], day: date | None = None
) -> int:
    """One e-mail and one notification to every active coordinator naming the reviews of
    ``waiting`` (review, experts missing) that no eligible expert can take, with the link to
    assign one by hand; each review's message is audited as :data:`EXPERTS_WANTED` with
    the ``day`` it counts for (today by default: the daily reminder's key).
    Returns the number of coordinators told."""
    day = day or local_today()
    for review, missing in waiting:
        record_event(
            EXPERTS_WANTED,
            object_type="review",
            object_id=review.id,
            after={"missing": missing, "state": review.state.value, "day": day.isoformat()},
        )
    coordinators = active_coordinators()
    if not waiting or not coordinators:
        return 0
    if len(waiting) == 1:
        review = waiting[0][0]
        subject = _l("No eligible expert for %(title)s", title=quote(review.program.title))
        link = site_path("assigning.review_experts", review_id=review.id)
    else:
        subject = _l("Programs waiting for an expert: %(count)s", count=len(waiting))
        link = site_path("assignment.overdue")
    for coordinator in coordinators:
        with in_language_of(coordinator):
            lines = "\n".join(
                str(
                    _l(
                        "- %(title)s: %(missing)s expert(s) missing, assign by hand: %(url)s",
                        title=quote(review.program.title),
                        missing=missing,
                        url=public_url("assigning.review_experts", review_id=review.id),
                    )
                )
                for review, missing in waiting
            )
            body = _l(
                "No eligible expert can be assigned automatically to these programs; they "
                "are waiting for the coordinator:\n\n%(lines)s\n\n"
                "All programs waiting for an expert: %(url)s",
                lines=lines,
                url=public_url("assignment.overdue"),
            )
            tell(coordinator, NotificationKind.WORK_QUEUE, subject, link=link, body=body)
    return len(coordinators)


# --- suspension and withdrawal ------------------------------------------------------------


def withdraw_offers_of(
    expert: User, actor: User
) -> tuple[list[Assignment], list[Assignment], list[Assignment]]:
    """A suspended (or switched off) expert's open offers are withdrawn, each audited as
    ``assignment.withdraw`` and followed by the automatic replacement. Accepted
    assignments stay (the expert may be working on a draft): the coordinator reassigns them
    (:func:`accepted_open_assignments`). Each offer is checked for ``actor``: an offer on a
    review the actor sits on as an expert is not theirs to withdraw (a role never widens a
    relation) and is left for another coordinator. Returns ``(withdrawn, replacements,
    left)``.

    Holds the ``assignment`` lock and reads the offers after taking it, so an acceptance at
    the same moment is either refused or already done (and then listed as accepted)."""
    hold_lock("assignment")
    offers = list(
        db.session.execute(
            select(Assignment)
            .where(
                Assignment.expert_id == expert.id,
                Assignment.status == AssignmentStatus.OFFERED,
            )
            .order_by(Assignment.id)
            .execution_options(populate_existing=True)
        ).scalars()
    )
    seated = seated_reviews(actor, [a.review_id for a in offers])
    left = [a for a in offers if a.review_id in seated]
    offers = [a for a in offers if a.review_id not in seated]
    reason = str(_l("The expert's work is suspended"))
    for assignment in offers:
        assignment.status = AssignmentStatus.WITHDRAWN
        assignment.decline_reason = reason
        record_event(
            "assignment.withdraw",
            actor=actor,
            object_type="assignment",
            object_id=assignment.id,
            before={"status": "offered"},
            after={"status": "withdrawn", "reason": "expert suspended"},
        )
    db.session.flush()
    replacements: list[Assignment] = []
    for review in {a.review_id: a.review for a in offers}.values():
        replacements.extend(fill_vacancy(review, actor=None))
    return offers, replacements, left


def close_assignments_of(review: Review, actor: User | None, reason: str) -> list[Assignment]:
    """The review is over before its experts finished (the program was withdrawn): every
    open assignment (offered, or accepted and not submitted) is withdrawn with ``reason``,
    audited as ``assignment.withdraw``, and its expert told in the portal and by e-mail. No
    replacement follows: nobody is left with an offer or a draft on the review."""
    hold_lock("assignment")
    open_ = list(
        db.session.execute(
            select(Assignment)
            .where(Assignment.review_id == review.id, Assignment.status.in_(OPEN_STATUSES))
            .order_by(Assignment.id)
            .execution_options(populate_existing=True)
        ).scalars()
    )
    title = review.program.title
    for assignment in open_:
        before = assignment.status
        assignment.status = AssignmentStatus.WITHDRAWN
        assignment.decline_reason = reason
        record_event(
            "assignment.withdraw",
            actor=actor,
            object_type="assignment",
            object_id=assignment.id,
            before={"status": before},
            after={"status": "withdrawn", "reason": reason},
        )
        message = _l(
            "The program %(title)s has been withdrawn from assessment: your assignment "
            "on it is closed and no sheet is expected.",
            title=quote(title),
        )
        tell(
            assignment.expert,
            NotificationKind.ASSIGNMENTS,
            message,
            link=site_path("main.expert_home"),
            subject=_l("Assignment closed: %(title)s withdrawn", title=quote(title)),
        )
    db.session.flush()
    return open_
