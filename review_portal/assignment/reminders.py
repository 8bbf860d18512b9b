"""Deadline reminders and overdue notices for experts' assignments, and the overdue list.

Deadlines are dates counted in working days of the center's production calendar
(:mod:`review_portal.settings.calendar`: Russia's official calendar and the center's own
exceptions). An open assignment (offered or accepted) of a review that is not over

- gets one reminder once its deadline is at most ``reminder_days_before`` working days away
  and has not passed (on a later day if the run of the first such day was missed);
- gets one overdue notice on the first working day after its deadline (on a later day if
  that run was missed); the coordinators get one digest per run listing the assignments
  that became overdue in it (each coordinator's without the reviews they hold an open seat
  on: roles never widen relations).

A review still waiting for an expert (a third expert asked for, or a place left empty by a
decline, a removal or a suspension, that no eligible expert could take) is reminded to the
coordinators at most once a day: the message is audited as ``review.experts_wanted`` (the
first one when the place fell empty), and a run reminds only reviews with no such record on
its day. The coordinator's page lists these reviews beside the overdue assignments.

``reminder_sent_at`` and ``overdue_notified_at`` are stamped in the transaction that queues
the messages, and a run holds the ``reminders`` lock, so ``send-reminders`` may run every
hour, and two runs may overlap, without any reminder going out twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flask_babel import gettext as _
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import joinedload

from review_portal.assignment.models import Assignment
from review_portal.assignment.queries import active_coordinators
from review_portal.assignment.services import (
    EXPERTS_WANTED,
    OPEN_STATUSES,
    local_today,
    tell_coordinators_experts_wanted,
)
from review_portal.audit.models import AuditEvent
from review_portal.audit.services import record_event
from review_portal.db import utcnow
from review_portal.enums import AssignmentStatus, NotificationKind
from review_portal.extensions import db
from review_portal.i18n import in_language_of, local_date, quote
from review_portal.locks import hold_lock
from review_portal.notifications.services import tell
from review_portal.permissions import open_seat_review_ids
from review_portal.reviews.models import Review
from review_portal.settings.calendar import center_calendar
from review_portal.settings.services import get_setting
from review_portal.urls import public_url, site_path
from review_portal.workflow import FINAL_STATES, ReviewState


def _open_assignments():
    """Open assignments of reviews still running, with what the messages show."""
    return (
        select(Assignment)
        .join(Review, Assignment.review_id == Review.id)
        .where(Assignment.status.in_(OPEN_STATUSES), Review.state.notin_(FINAL_STATES))
        .options(
            joinedload(Assignment.expert),
            joinedload(Assignment.review).joinedload(Review.program),
        )
        .order_by(Assignment.due_on, Assignment.id)
    )


def _reminder_due(today: date):
    """The condition "the open assignment's reminder or overdue notice is due on ``today``
    and was not sent"."""
    calendar = center_calendar()
    days_before = int(get_setting("reminder_days_before"))
    # "At most N working days away" is "before the (N+1)-th working day from today".
    remind_until = calendar.add_working_days(today, days_before + 1)
    # Overdue once a working day has passed since the deadline.
    overdue_before = calendar.last_working_day(today)
    return or_(
        and_(
            Assignment.reminder_sent_at.is_(None),
            Assignment.due_on >= today,
            Assignment.due_on < remind_until,
        ),
        and_(
            Assignment.overdue_notified_at.is_(None),
            Assignment.due_on < overdue_before,
        ),
    )


def reminders_due(today: date | None = None) -> bool:
    """Whether :func:`send_reminders` has anything to send on ``today`` (default: the
    center's today): a reminder or overdue notice not sent yet, or a review waiting for an
    expert whose coordinators were not told today. Reads only; the hourly job makes no job
    row (and no audit record) without it."""
    today = today or local_today()
    open_assignment_due = db.session.execute(
        select(Assignment.id)
        .join(Review, Assignment.review_id == Review.id)
        .where(
            Assignment.status.in_(OPEN_STATUSES),
            Review.state.notin_(FINAL_STATES),
            _reminder_due(today),
        )
        .limit(1)
    ).first()
    return open_assignment_due is not None or bool(_experts_wanted_due(today))


def send_reminders(today: date) -> dict[str, int]:
    """Queue the reminders and overdue notices due on ``today`` and stamp them (not committed).

    Returns the counts: ``reminders``, ``overdue`` (notices to experts), ``digests``
    (e-mails to coordinators) and ``waiting`` (reviews waiting for an expert reminded).
    """
    hold_lock("reminders")
    due = db.session.execute(_open_assignments().where(_reminder_due(today))).scalars().all()
    now = utcnow()
    reminded, overdue = 0, []
    for assignment in due:
        if assignment.due_on >= today:
            assignment.reminder_sent_at = now
            _remind(assignment)
            reminded += 1
        else:
            assignment.overdue_notified_at = now
            _notify_overdue(assignment)
            overdue.append(assignment)
    digests = _send_digest(overdue) if overdue else 0
    waiting = _remind_experts_wanted(today)
    db.session.flush()
    return {
        "reminders": reminded,
        "overdue": len(overdue),
        "digests": digests,
        "waiting": waiting,
    }


def _message_values(assignment: Assignment) -> dict:
    """What the reminder and the overdue notice say about the assignment (``path``: the
    page's link in the portal, ``url``: the same page's absolute link)."""
    endpoint, page = _page(assignment)
    return {
        "name": assignment.expert.full_name,
        "title": quote(assignment.review.program.title),
        "due": assignment.due_on.strftime("%d.%m.%Y"),
        "url": public_url(endpoint, **page),
        "path": site_path(endpoint, **page),
    }


def _page(assignment: Assignment) -> tuple[str, dict]:
    """The page the expert acts on: the score sheet once accepted, else the offer on their
    home page."""
    if assignment.status == AssignmentStatus.ACCEPTED:
        return "scoring.sheet", {"assignment_id": assignment.id}
    return "main.expert_home", {}


def _remind(assignment: Assignment) -> None:
    expert = assignment.expert
    values = _message_values(assignment)
    with in_language_of(expert):
        tell(
            expert,
            NotificationKind.REMINDERS,
            _("The review of %(title)s is due on %(due)s.", **values),
            link=values["path"],
            subject=_("Reminder: the review of %(title)s is due on %(due)s", **values),
            body=_(
                "Hello, %(name)s!\n\n"
                "The deadline for your review of the program %(title)s is %(due)s. "
                "Please submit your score sheet on time: %(url)s\n\n"
                "If you cannot finish the review, please tell the coordinator.",
                **values,
            ),
        )
    record_event(
        "assignment.reminder",
        object_type="assignment",
        object_id=assignment.id,
        after={"expert_id": assignment.expert_id, "due_on": assignment.due_on},
    )


def _notify_overdue(assignment: Assignment) -> None:
    expert = assignment.expert
    values = _message_values(assignment)
    with in_language_of(expert):
        tell(
            expert,
            NotificationKind.REMINDERS,
            _("The review of %(title)s is overdue (the deadline was %(due)s).", **values),
            link=values["path"],
            subject=_("The review of %(title)s is overdue", **values),
            body=_(
                "Hello, %(name)s!\n\n"
                "The deadline for your review of the program %(title)s was %(due)s. "
                "Please submit your score sheet as soon as possible: %(url)s\n\n"
                "If you cannot finish the review, please tell the coordinator, who can pass "
                "it to another expert.",
                **values,
            ),
        )
    record_event(
        "assignment.overdue",
        object_type="assignment",
        object_id=assignment.id,
        after={"expert_id": assignment.expert_id, "due_on": assignment.due_on},
    )


def _send_digest(overdue: list[Assignment]) -> int:
    """An e-mail to each active coordinator listing ``overdue``, except the assignments of
    the reviews on which that coordinator holds an open seat (roles never widen relations:
    the digest would name their co-experts); nothing to a coordinator whose list is then
    empty. Returns how many were sent."""
    sent = 0
    for coordinator in active_coordinators():
        hidden = set(open_seat_review_ids(coordinator))
        theirs = [a for a in overdue if a.review_id not in hidden]
        if not theirs:
            continue
        with in_language_of(coordinator):
            lines = "\n".join(
                _(
                    "- %(title)s: %(expert)s, deadline %(due)s",
                    title=quote(a.review.program.title),
                    expert=a.expert.full_name,
                    due=a.due_on.strftime("%d.%m.%Y"),
                )
                for a in theirs
            )
            subject = _("Overdue assignments: %(count)s", count=len(theirs))
            body = _(
                "The deadline has passed for these assignments:\n\n%(lines)s\n\n"
                "All overdue assignments, with links to reassign them: %(url)s",
                lines=lines,
                url=public_url("assignment.overdue"),
            )
            tell(
                coordinator,
                NotificationKind.WORK_QUEUE,
                subject,
                link=site_path("assignment.overdue"),
                body=body,
            )
        sent += 1
    return sent


@dataclass(frozen=True)
class WaitingReview:
    review: Review
    #: Experts the review still needs.
    missing: int


def reviews_waiting_for_experts() -> list[WaitingReview]:
    """Reviews that need an expert nobody has taken: a third expert asked for, or a review
    in expertise whose place fell empty (it had assignments, and fewer live ones than its
    rubric wants). A review just accepted, before any assignment run, is not listed: it
    waits for the run, not for a decision. Oldest state first; a fixed number of queries."""
    from review_portal.assignment.eligibility import _experts_per_rubric
    from review_portal.programs.models import Program
    from review_portal.rubrics.registry import rubric_files

    live = (AssignmentStatus.OFFERED, AssignmentStatus.ACCEPTED, AssignmentStatus.COMPLETED)
    counts = {
        review_id: (live_count, any_count)
        for review_id, live_count, any_count in db.session.execute(
            select(
                Assignment.review_id,
                func.sum(case((Assignment.status.in_(live), 1), else_=0)),
                func.count(Assignment.id),
            )
            .join(Review, Assignment.review_id == Review.id)
            .where(Review.state.in_((ReviewState.IN_REVIEW, ReviewState.RECONCILIATION)))
            .group_by(Assignment.review_id)
        ).tuples()
    }
    reviews = db.session.execute(
        select(Review)
        .where(
            or_(
                and_(Review.state == ReviewState.IN_REVIEW, Review.id.in_(list(counts))),
                and_(Review.state == ReviewState.RECONCILIATION, Review.extra_experts > 0),
            )
        )
        .options(joinedload(Review.program).joinedload(Program.organization))
        .order_by(Review.state_changed_at, Review.id)
    ).scalars()
    rubrics = rubric_files()
    waiting = []
    for review in reviews:
        wanted = _experts_per_rubric(rubrics, review.rubric_id, review.rubric_version) + (
            review.extra_experts or 0
        )
        missing = wanted - int(counts.get(review.id, (0, 0))[0] or 0)
        if missing > 0:
            waiting.append(WaitingReview(review, missing))
    return waiting


def _remind_experts_wanted(today: date) -> int:
    """Remind the coordinators of the reviews waiting for an expert whose last such message
    counts for a day before ``today``; returns how many reviews were reminded."""
    due = _experts_wanted_due(today)
    if due:
        tell_coordinators_experts_wanted(due, today)
    return len(due)


def _experts_wanted_due(today: date) -> list[tuple[Review, int]]:
    """The reviews waiting for an expert whose coordinators were last told about them
    before ``today`` (or never), each with the experts it still needs."""
    waiting = reviews_waiting_for_experts()
    if not waiting:
        return []
    latest = (
        select(func.max(AuditEvent.id))
        .where(
            AuditEvent.action == EXPERTS_WANTED,
            AuditEvent.object_type == "review",
            AuditEvent.object_id.in_([str(w.review.id) for w in waiting]),
        )
        .group_by(AuditEvent.object_id)
    )
    told_on = {
        event.object_id: _day_of(event)
        for event in db.session.execute(
            select(AuditEvent).where(AuditEvent.id.in_(latest))
        ).scalars()
    }
    return [
        (w.review, w.missing)
        for w in waiting
        if str(w.review.id) not in told_on or told_on[str(w.review.id)] < today
    ]


def _day_of(event: AuditEvent) -> date:
    """The day a message about a waiting review counts for."""
    day = (event.after or {}).get("day")
    return date.fromisoformat(day) if day else local_date(event.occurred_at)


@dataclass(frozen=True)
class OverdueAssignment:
    assignment: Assignment
    #: Working days since the deadline (0 while only a weekend or holiday has passed).
    working_days_overdue: int


def overdue_assignments(
    today: date | None = None, hidden_review_ids: list[int] | tuple[int, ...] = ()
) -> list[OverdueAssignment]:
    """Open assignments whose deadline has passed, the longest overdue first, except on
    ``hidden_review_ids`` (the reviews on which the viewer holds an open seat:
    :func:`~review_portal.permissions.open_seat_review_ids`)."""
    today = today or local_today()
    calendar = center_calendar()
    rows = db.session.execute(
        _open_assignments().where(
            Assignment.due_on < today, Assignment.review_id.not_in(list(hidden_review_ids))
        )
    ).scalars()
    return [OverdueAssignment(a, calendar.working_days_between(a.due_on, today)) for a in rows]


def send_reminders_job(job_id: int) -> None:
    """Job handler (``send_reminders``, scheduled hourly): today's reminders and overdue
    notices, queued in one transaction with the job's count (the same reminder is never
    sent twice, so runs may repeat)."""
    from review_portal.jobs.services import finish_counted

    counts = send_reminders(local_today())
    sent = counts["reminders"] + counts["overdue"] + counts["digests"] + counts["waiting"]
    finish_counted(job_id, total=sent, done=sent)
