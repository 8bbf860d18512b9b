"""The coordinators' daily digest: for each member of the staff who chose it (on
``/notifications/settings``), one e-mail a day, from 8:00 in the center's time zone, with
what waits for the center — registrations to approve, programs to screen, reconciliations,
decisions, appeals, overdue assignments and programs without experts — and a link to each
list.

Those who chose it get the center's work (:attr:`NotificationKind.WORK_QUEUE`) in the
portal only, event by event, and by e-mail in the digest. A digest is sent at most once a
day (``digest_sent_on``, written in the same transaction as the message); a day with
nothing waiting sends nothing. The hourly job makes no job row while no digest is due
(:func:`digest_due`).

It lives in ``main`` (above the domains, as the home pages do): it reads the lists of
accounts, programs, assignment and reconciliation, and assignment itself notifies."""

from __future__ import annotations

from datetime import date, datetime

from flask_babel import gettext as _
from sqlalchemy import or_, select

from review_portal.accounts.models import User, UserRole
from review_portal.audit.services import record_event
from review_portal.db import utcnow
from review_portal.enums import AccountStatus, Role
from review_portal.extensions import db
from review_portal.i18n import in_language_of
from review_portal.notifications.models import NotificationSettings
from review_portal.notifications.services import queue_email
from review_portal.urls import public_url

#: The hour (the center's time zone) from which the day's digest goes out.
DIGEST_HOUR = 8


def _waiting(today: date):
    """The subscribers' settings rows whose digest of ``today`` is not sent yet, of users
    who are of the staff now (a choice kept after the role went makes nothing due)."""
    staff = select(UserRole.user_id).where(UserRole.role.in_((Role.COORDINATOR, Role.ADMIN)))
    return (
        select(NotificationSettings)
        .join(User, User.id == NotificationSettings.user_id)
        .where(
            NotificationSettings.daily_digest.is_(True),
            or_(
                NotificationSettings.digest_sent_on.is_(None),
                NotificationSettings.digest_sent_on < today,
            ),
            User.id.in_(staff),
            User.status == AccountStatus.APPROVED,
            User.active.is_(True),
        )
    )


def _center_time(now: datetime | None) -> datetime:
    """``now`` (default: this moment) in the center's time zone."""
    from zoneinfo import ZoneInfo

    from review_portal.settings.services import get_setting

    return (now or utcnow()).astimezone(ZoneInfo(get_setting("timezone")))


def digest_due(now: datetime | None = None) -> bool:
    """Whether a digest is due: it is 8:00 or later in the center, and someone who chose
    the digest has not had today's."""
    now = _center_time(now)
    if now.hour < DIGEST_HOUR:
        return False
    return db.session.execute(_waiting(now.date()).limit(1)).first() is not None


def center_waiting(hidden_review_ids=()) -> list[tuple[str, int, str]]:
    """What waits for the center: ``(label, count, link)`` per list, in the order of the
    work. The reviews of ``hidden_review_ids`` (those the reader sits on as an expert: a
    role never widens a relation) are not counted, as the linked lists do not show them."""
    from review_portal.appeals.queries import waiting_for_center as appeals_waiting
    from review_portal.assignment.reminders import (
        overdue_assignments,
        reviews_waiting_for_experts,
    )
    from review_portal.main.services import count_by_state, pending_registrations_count
    from review_portal.reviews.models import Review
    from review_portal.workflow import ReviewState

    hidden = set(hidden_review_ids)
    # Programs per state of their current review, as the coordinator's home counts them.
    states = count_by_state(Review.id.not_in(hidden)) if hidden else count_by_state()
    return [
        (
            _("Registrations awaiting approval"),
            pending_registrations_count(),
            public_url("accounts.registrations"),
        ),
        (
            _("Programs to screen"),
            states[ReviewState.SUBMITTED],
            public_url("screening.queue"),
        ),
        (
            _("Reviews in reconciliation"),
            states[ReviewState.RECONCILIATION],
            public_url("reconciliation.index"),
        ),
        (
            _("Reviews awaiting a decision"),
            states[ReviewState.AWAITING_DECISION],
            public_url("reconciliation.decisions"),
        ),
        (
            _("Appeals to accept, refuse or decide"),
            appeals_waiting(hidden_review_ids),
            public_url("appeals.index"),
        ),
        (
            _("Overdue assignments"),
            len(overdue_assignments(hidden_review_ids=list(hidden_review_ids))),
            public_url("assignment.overdue"),
        ),
        (
            _("Programs waiting for an expert"),
            sum(1 for item in reviews_waiting_for_experts() if item.review.id not in hidden),
            public_url("assignment.overdue"),
        ),
    ]


def send_digests(now: datetime | None = None) -> int:
    """Today's digest to each subscriber who has not had it; how many were mailed. A
    subscriber who is no longer of the staff (or switched off) gets none (:func:`_waiting`),
    and is passed by until they are again. One run at a time (a lock): a run from cron and beat's at the
    same moment send one digest, not two."""
    from review_portal.locks import hold_lock
    from review_portal.permissions import open_seat_review_ids

    now = _center_time(now)
    if now.hour < DIGEST_HOUR:
        return 0
    hold_lock("digest")
    today = now.date()
    rows = db.session.execute(_waiting(today).order_by(NotificationSettings.user_id)).scalars()
    sent = 0
    for choices in list(rows):
        # Staff, approved and active: _waiting selects no one else.
        user = db.session.get(User, choices.user_id)
        choices.digest_sent_on = today
        with in_language_of(user):
            lines = [
                (label, count, link)
                for label, count, link in center_waiting(open_seat_review_ids(user))
                if count
            ]
            if not lines:
                continue
            subject = _("What waits for the center on %(day)s", day=today.strftime("%d.%m.%Y"))
            body = "\n".join(
                [
                    _("Hello, %(name)s!", name=user.full_name),
                    "",
                    *(f"- {label}: {count} — {link}" for label, count, link in lines),
                    "",
                    _(
                        "You receive this digest instead of one e-mail per event; change it "
                        "at %(url)s",
                        url=public_url("notifications.choices"),
                    ),
                ]
            )
            queue_email(user, subject, body)
        record_event(
            "notification.digest",
            object_type="user",
            object_id=user.id,
            after={"day": today, "counts": [count for _label, count, _link in lines]},
        )
        sent += 1
    db.session.flush()
    return sent


def send_digest_job(job_id: int) -> None:
    """Job handler (``send_digest``, scheduled hourly): the digests due, in one transaction
    with the job's count (a digest is marked sent with its message, so runs may repeat)."""
    from review_portal.jobs.services import finish_counted

    sent = send_digests()
    finish_counted(job_id, total=sent, done=sent)
