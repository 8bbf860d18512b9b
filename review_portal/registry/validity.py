"""Validity of registry entries: end dates, reminders before them, expiry.

* Each registry kind is valid for ``validity_months_<kind>`` months (settings; 0:
  unlimited). The publication that includes an entry, or that publishes a renewal admitted
  for it (a new admitted conclusion of a program whose entry is live: the number is kept),
  dates it: the last valid day is the publication date plus that many months, less a day
  (:func:`end_date`). An entry dated without a limit has no end date.
* :func:`send_validity_notices` (daily job ``registry_validity``, ``flask
  registry-validity``): the provider is told 90 and 30 days before the end date, in the
  portal and by e-mail, each once (the day is stamped on the entry); an included entry whose
  end date has passed and that no renewal admitted since becomes a **pending removal** with
  the reason «срок действия истёк» (the public sees it until the next publication).

Services flush and audit; the caller commits.
"""

from __future__ import annotations

from datetime import date, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.orm import joinedload

from review_portal.assignment.services import local_today
from review_portal.audit.services import record_event
from review_portal.enums import RegistryEntryStatus, RegistryKind
from review_portal.extensions import db
from review_portal.i18n import quote
from review_portal.locks import hold_lock
from review_portal.notifications.services import tell_provider
from review_portal.programs.models import Program
from review_portal.registry.models import RegistryEntry
from review_portal.settings.services import get_setting
from review_portal.urls import site_path

E = RegistryEntryStatus
#: Days before the end date when the provider is reminded (each once).
REMINDER_DAYS = (90, 30)
#: The removal reason of an entry whose end date passed (stored and published as is).
EXPIRED_REASON = "срок действия истёк"


def validity_months(kind: RegistryKind) -> int:
    return int(get_setting(f"validity_months_{RegistryKind(kind).value}"))


def end_date(kind: RegistryKind, start: date) -> date | None:
    """The last valid day of an entry of ``kind`` dated on ``start`` (``None``: unlimited)."""
    from dateutil.relativedelta import relativedelta

    months = validity_months(kind)
    if months <= 0:
        return None
    return start + relativedelta(months=months) - timedelta(days=1)


def dating(kind: RegistryKind, today: date) -> dict[str, object]:
    """What dating an entry of ``kind`` on ``today`` writes, by column: its end date, its
    reminders cleared, no longer waiting for a date."""
    return {
        "valid_until": end_date(kind, today),
        "end_date_pending": False,
        "reminded_90_on": None,
        "reminded_30_on": None,
    }


def date_entries(kind: RegistryKind, today: date) -> int:
    """Date the included entries of ``kind`` that wait for it (the publication calls this
    under its locks, before copying the snapshot; one statement); returns how many."""
    return db.session.execute(
        update(RegistryEntry)
        .where(
            RegistryEntry.kind == kind,
            RegistryEntry.status == E.INCLUDED,
            RegistryEntry.end_date_pending.is_(True),
        )
        .values(dating(kind, today))
        .execution_options(synchronize_session=False)
    ).rowcount


def _dated_entries():
    """Included entries with an end date that no renewal has re-opened since."""
    return select(RegistryEntry).where(
        RegistryEntry.status == E.INCLUDED,
        RegistryEntry.valid_until.is_not(None),
        RegistryEntry.end_date_pending.is_(False),
    )


def validity_due(today: date | None = None) -> bool:
    """Whether :func:`send_validity_notices` has anything to do ``today`` (reads only)."""
    today = today or local_today()
    soon = today + timedelta(days=max(REMINDER_DAYS))
    stmt = _dated_entries().where(
        RegistryEntry.valid_until <= soon,
        (RegistryEntry.valid_until < today)
        | RegistryEntry.reminded_90_on.is_(None)
        | RegistryEntry.reminded_30_on.is_(None),
    )
    return db.session.execute(stmt.limit(1)).first() is not None


def send_validity_notices(today: date) -> dict[str, int]:
    """The reminders due ``today`` and the expiries; returns the counts (``reminders``,
    ``expired``). Runs may repeat: nothing is sent or changed twice."""
    hold_lock("registry-validity")
    soon = today + timedelta(days=max(REMINDER_DAYS))
    entries = db.session.execute(
        _dated_entries()
        .where(RegistryEntry.valid_until <= soon)
        .order_by(RegistryEntry.valid_until, RegistryEntry.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalars()
    counts = {"reminders": 0, "expired": 0}
    for entry in list(entries):
        program = db.session.get(
            Program, entry.program_id, options=[joinedload(Program.organization)]
        )
        link = site_path("programs.view", program_id=program.id)
        if entry.valid_until < today:
            _expire(entry, program, link)
            counts["expired"] += 1
            continue
        left = (entry.valid_until - today).days
        if left <= 30 and entry.reminded_30_on is None:
            entry.reminded_30_on = today
            entry.reminded_90_on = entry.reminded_90_on or today
        elif left <= 90 and entry.reminded_90_on is None:
            entry.reminded_90_on = today
        else:
            continue
        tell_provider(
            program,
            _l("The registry entry of your program ends on %(date)s", date=_ru(entry.valid_until)),
            _l(
                "The entry № %(number)s of %(title)s in the registry is valid until %(date)s. "
                "To keep the program in the registry, submit it for renewal on its page: a new "
                "version goes through a new assessment, and the entry keeps its number.",
                number=entry.registry_number,
                title=quote(program.title),
                date=_ru(entry.valid_until),
            ),
            link=link,
        )
        record_event(
            "registry.entry_reminder",
            object_type="registry_entry",
            object_id=entry.id,
            after={"valid_until": entry.valid_until.isoformat(), "days_left": left},
        )
        counts["reminders"] += 1
    db.session.flush()
    return counts


def _expire(entry: RegistryEntry, program: Program, link: str) -> None:
    before = {"status": entry.status.value, "valid_until": entry.valid_until.isoformat()}
    entry.status = E.PENDING_REMOVAL
    entry.removal_reason = EXPIRED_REASON
    record_event(
        "registry.entry_expired",
        object_type="registry_entry",
        object_id=entry.id,
        before=before,
        after={"status": entry.status.value, "reason": EXPIRED_REASON},
    )
    tell_provider(
        program,
        _l("The registry entry of your program has expired: %(title)s", title=program.title),
        _l(
            "The entry № %(number)s of %(title)s was valid until %(date)s and no renewal was "
            "admitted: it leaves the registry at the next publication. A renewal admitted "
            "before then keeps it, with its number.",
            number=entry.registry_number,
            title=quote(program.title),
            date=_ru(entry.valid_until),
        ),
        link=link,
    )


def _ru(day: date) -> str:
    return day.strftime("%d.%m.%Y")


def registry_validity_job(job_id: int) -> None:
    """Job handler (``registry_validity``, scheduled hourly, due at most once a day per
    entry): today's reminders and expiries with the job's count."""
    from review_portal.jobs.services import finish_counted

    counts = send_validity_notices(local_today())
    done = counts["reminders"] + counts["expired"]
    finish_counted(job_id, total=done, done=done)


def expiring_entries(municipality_id: int, today: date, days: int = 90) -> list:
    """``(entry, program)`` for the included entries of the municipality's programs whose end
    date is within ``days`` (the municipal viewer's list), soonest first (one query)."""
    return list(
        db.session.execute(
            select(RegistryEntry, Program)
            .join(Program, Program.id == RegistryEntry.program_id)
            .where(
                RegistryEntry.status == E.INCLUDED,
                RegistryEntry.valid_until.is_not(None),
                RegistryEntry.end_date_pending.is_(False),
                Program.municipality_id == municipality_id,
                RegistryEntry.valid_until <= today + timedelta(days=days),
            )
            .options(joinedload(Program.organization), joinedload(Program.current_review))
            .order_by(RegistryEntry.valid_until, RegistryEntry.id)
        ).tuples()
    )
