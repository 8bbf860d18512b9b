"""Deadline reminders and overdue notices for experts' assignments, and the overdue list.

Deadlines are dates counted in working days (weekends and the ``holidays`` setting do not
count). An open assignment (offered or accepted) of a review that is not over

- gets one reminder once its deadline is at most ``reminder_days_before`` working days away
  and has not passed (on a later day if the run of the first such day was missed);
- gets one overdue notice on the first working day after its deadline (on a later day if
  that run was missed); the coordinators get one digest per run listing the assignments
  that became overdue in it.

``reminder_sent_at`` and ``overdue_notified_at`` are stamped in the transaction that queues
the messages, and a run holds the ``reminders`` lock, so ``send-reminders`` may run every
hour, and two runs may overlap, without any reminder going out twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from flask_babel import gettext as _
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import joinedload

from review_portal.accounts.models import User, UserRole
from review_portal.assignment.calendar import (
    add_working_days,
    is_working_day,
    parse_holidays,
    working_days_between,
)
from review_portal.assignment.models import Assignment
from review_portal.assignment.services import OPEN_STATUSES, local_today
from review_portal.audit.services import record_event
from review_portal.db import utcnow
from review_portal.enums import AccountStatus, Role
from review_portal.extensions import db
from review_portal.locks import hold_lock
from review_portal.notifications.services import notify, queue_email
from review_portal.reviews.models import Review
from review_portal.settings.services import get_setting
from review_portal.urls import public_url, site_path
from review_portal.workflow import FINAL_STATES


def holidays() -> frozenset[date]:
    return parse_holidays(get_setting("holidays"))


def last_working_day(day: date, holidays: frozenset[date]) -> date:
    """``day`` itself when it is a working day, else the working day before it."""
    while not is_working_day(day, holidays):
        day -= timedelta(days=1)
    return day


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


def send_reminders(today: date) -> dict[str, int]:
    """Queue the reminders and overdue notices due on ``today`` and stamp them (not committed).

    Returns the counts: ``reminders``, ``overdue`` (notices to experts) and ``digests``
    (e-mails to coordinators).
    """
    hold_lock("reminders")
    days_off = holidays()
    days_before = int(get_setting("reminder_days_before"))
    # "At most N working days away" is "before the (N+1)-th working day from today".
    remind_until = add_working_days(today, days_before + 1, days_off)
    # Overdue once a working day has passed since the deadline.
    overdue_before = last_working_day(today, days_off)
    due = (
        db.session.execute(
            _open_assignments().where(
                or_(
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
            )
        )
        .scalars()
        .all()
    )
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
    db.session.flush()
    return {"reminders": reminded, "overdue": len(overdue), "digests": digests}


def _message_values(assignment: Assignment) -> dict:
    """What the reminder and the overdue notice say about the assignment."""
    return {
        "name": assignment.expert.full_name,
        "title": assignment.review.program.title,
        "due": assignment.due_on.strftime("%d.%m.%Y"),
        "url": public_url("main.expert_home"),
    }


def _remind(assignment: Assignment) -> None:
    expert = assignment.expert
    values = _message_values(assignment)
    queue_email(
        expert.email,
        _("Reminder: the review of “%(title)s” is due on %(due)s", **values),
        _(
            "Hello, %(name)s!\n\n"
            "The deadline for your review of the program “%(title)s” is %(due)s. "
            "Please submit your score sheet on time: %(url)s\n\n"
            "If you cannot finish the review, please tell the coordinator.",
            **values,
        ),
    )
    notify(
        expert,
        _("The review of “%(title)s” is due on %(due)s.", **values),
        site_path("main.expert_home"),
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
    queue_email(
        expert.email,
        _("The review of “%(title)s” is overdue", **values),
        _(
            "Hello, %(name)s!\n\n"
            "The deadline for your review of the program “%(title)s” was %(due)s. "
            "Please submit your score sheet as soon as possible: %(url)s\n\n"
            "If you cannot finish the review, please tell the coordinator, who can pass it "
            "to another expert.",
            **values,
        ),
    )
    notify(
        expert,
        _("The review of “%(title)s” is overdue (the deadline was %(due)s).", **values),
        site_path("main.expert_home"),
    )
    record_event(
        "assignment.overdue",
        object_type="assignment",
        object_id=assignment.id,
        after={"expert_id": assignment.expert_id, "due_on": assignment.due_on},
    )


def _send_digest(overdue: list[Assignment]) -> int:
    """One e-mail to each active coordinator listing ``overdue``; returns how many."""
    coordinators = (
        db.session.execute(
            select(User)
            .where(
                User.id.in_(select(UserRole.user_id).where(UserRole.role == Role.COORDINATOR)),
                User.status == AccountStatus.APPROVED,
                User.active.is_(True),
            )
            .order_by(User.id)
        )
        .scalars()
        .all()
    )
    if not coordinators:
        return 0
    lines = "\n".join(
        _(
            "- “%(title)s”: %(expert)s, deadline %(due)s",
            title=a.review.program.title,
            expert=a.expert.full_name,
            due=a.due_on.strftime("%d.%m.%Y"),
        )
        for a in overdue
    )
    subject = _("Overdue assignments: %(count)s", count=len(overdue))
    body = _(
        "The deadline has passed for these assignments:\n\n%(lines)s\n\n"
        "All overdue assignments, with links to reassign them: %(url)s",
        lines=lines,
        url=public_url("assignment.overdue"),
    )
    for coordinator in coordinators:
        queue_email(coordinator.email, subject, body)
        notify(coordinator, subject, site_path("assignment.overdue"))
    return len(coordinators)


@dataclass(frozen=True)
class OverdueAssignment:
    assignment: Assignment
    #: Working days since the deadline (0 while only a weekend or holiday has passed).
    working_days_overdue: int


def overdue_assignments(today: date | None = None) -> list[OverdueAssignment]:
    """Open assignments whose deadline has passed, the longest overdue first."""
    today = today or local_today()
    days_off = holidays()
    rows = db.session.execute(_open_assignments().where(Assignment.due_on < today)).scalars()
    return [OverdueAssignment(a, working_days_between(a.due_on, today, days_off)) for a in rows]


def send_reminders_job(job_id: int) -> None:
    """Job handler (``send_reminders``, scheduled hourly): today's reminders and overdue
    notices, queued in one transaction with the job's count (the same reminder is never
    sent twice, so runs may repeat)."""
    from review_portal.jobs.services import finish_counted

    counts = send_reminders(local_today())
    sent = counts["reminders"] + counts["overdue"] + counts["digests"]
    finish_counted(job_id, total=sent, done=sent)
