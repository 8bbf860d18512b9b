"""Reading and changing run-time settings: their defaults, their rules, and the operations of
the center's settings page.

Every value is checked here by :func:`clean_setting` (the settings form shows the same
messages, from the same rules), so the page, the CLI and the demo seed meet one rule. A
change is audited per setting (``settings.change``, before and after) and written only when
the value differs. Deadlines are stored dates (an assignment's ``due_on``, a review's
``discussion_deadline``): a new number of working days or a new day off applies to the
deadlines computed after the change, never to the stored ones.

Two coordinators saving the page at once: each save writes only the settings its user
changed, under the ``settings`` lock, and refuses (:class:`SettingsConflict`) a setting that
someone else changed since the page was opened, so no change is lost silently.
"""

from __future__ import annotations

import contextlib
import functools
import re
from datetime import date
from typing import Any
from zoneinfo import available_timezones

import sqlalchemy as sa
from flask import g, has_app_context
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from review_portal.audit.describe import register_setting_labels
from review_portal.audit.services import record_event
from review_portal.enums import MunicipalityPolicy
from review_portal.errors import DomainError, InvalidInput, NotFound
from review_portal.extensions import db
from review_portal.locks import hold_lock
from review_portal.permissions import authorize
from review_portal.settings.models import Setting
from review_portal.settings.permissions import can_manage_settings

DEFAULTS: dict[str, Any] = {
    #: Region code used in conclusion and registry numbers (``67-2026-00001``, ``67-С-000001``).
    "region_code": "00",
    "region_name": "",
    "center_name": "",
    #: Printed under the center's name on conclusions.
    "center_address": "",
    #: The center's contacts for the public (the home page): a phone and an e-mail address.
    "center_phone": "",
    "center_email": "",
    "head_name": "",
    "head_position": "",
    #: ``different`` | ``prefer_different`` | ``any`` (see MunicipalityPolicy).
    "municipality_policy": "different",
    "deadline_working_days": 10,
    #: Working days the experts of a divergent review have to discuss and revise.
    "discussion_working_days": 5,
    #: Working days before an assignment's deadline when the expert is reminded.
    "reminder_days_before": 2,
    #: Working days after a conclusion is issued within which the provider may appeal.
    "appeal_working_days": 10,
    #: How long a registry entry of each kind is valid, in months from its publication
    #: (0: unlimited). Applies to entries dated from then on.
    "validity_months_certified": 36,
    "validity_months_significant": 0,
    "validity_months_general": 0,
    "validity_months_pre_professional": 0,
    #: The center's extra days off (ISO dates), on top of the official production calendar
    #: (review_portal.settings.calendar). The key predates the official calendar, when it
    #: listed the public holidays themselves; such entries are now simply redundant.
    "holidays": [],
    #: The center's extra working days (ISO dates): weekend days or official days off worked
    #: (a working Saturday the package does not know yet).
    "extra_working_days": [],
    "timezone": "Europe/Moscow",
    #: The name e-mails come from (``From: "Name" <MAIL_SENDER's address>``); empty: the
    #: center's name.
    "mail_sender_name": "",
    #: The lines under every e-mail; empty: the center's name.
    "mail_signature": "",
}

#: The settings of the page's main form, in the page's order.
FORM_KEYS = (
    "region_code",
    "region_name",
    "center_name",
    "center_address",
    "center_phone",
    "center_email",
    "head_name",
    "head_position",
    "municipality_policy",
    "deadline_working_days",
    "discussion_working_days",
    "reminder_days_before",
    "appeal_working_days",
    "validity_months_certified",
    "validity_months_significant",
    "validity_months_general",
    "validity_months_pre_professional",
    "timezone",
    "mail_sender_name",
    "mail_signature",
)
#: The production calendar's lists: the page's name of each, and its setting.
CALENDAR_LISTS = {"days_off": "holidays", "working_days": "extra_working_days"}
#: At most this many days in each list.
MAX_CALENDAR_DAYS = 100
#: The dates a list accepts.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2100, 12, 31)

_REGION_CODE = re.compile(r"0[1-9]|[1-9][0-9]")
#: An e-mail address as the public page links it: one ``@``, a dotted domain, no spaces.
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")
MAX_EMAIL_LENGTH = 254
#: Control characters, line breaks included: every text setting is one line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

TEXT_LIMITS = {
    "region_name": 200,
    "center_name": 500,
    "center_address": 500,
    "center_phone": 40,
    "head_name": 200,
    "head_position": 200,
    "mail_sender_name": 200,
}
#: The texts of several lines: (most characters, most lines).
MULTILINE_LIMITS = {"mail_signature": (1000, 10)}
#: Control characters but the line break (a line break of the browser comes as CR LF).
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
#: (least, greatest) of each number.
NUMBER_LIMITS = {
    "deadline_working_days": (1, 60),
    "discussion_working_days": (1, 30),
    "reminder_days_before": (0, 30),
    "appeal_working_days": (1, 60),
    "validity_months_certified": (0, 120),
    "validity_months_significant": (0, 120),
    "validity_months_general": (0, 120),
    "validity_months_pre_professional": (0, 120),
}


class SettingError(InvalidInput):
    """A value refused for the setting ``key`` (nothing was written)."""

    def __init__(self, key: str, message):
        super().__init__(message)
        self.key = key


class SettingsConflict(DomainError):
    """Someone else changed these settings since the page was opened (nothing was written)."""

    status = 409

    def __init__(self, keys: list[str]):
        super().__init__(
            _l(
                "Another user changed these settings while you were editing them: "
                "%(names)s. Nothing was saved; the page shows their values now.",
                names=", ".join(str(SETTING_LABELS.get(k, k)) for k in keys),
            )
        )
        self.keys = keys


#: What the page and the messages call each setting.
SETTING_LABELS = {
    "region_code": _l("Region code"),
    "region_name": _l("Region"),
    "center_name": _l("Name of the center"),
    "center_address": _l("Address of the center"),
    "center_phone": _l("Phone of the center"),
    "center_email": _l("E-mail of the center"),
    "head_name": _l("Head of the center"),
    "head_position": _l("Position of the head"),
    "municipality_policy": _l("Municipality policy"),
    "deadline_working_days": _l("Expertise, working days"),
    "discussion_working_days": _l("Discussion, working days"),
    "reminder_days_before": _l("Reminder, working days before the deadline"),
    "appeal_working_days": _l("Appeal window, working days"),
    "validity_months_certified": _l("Validity of certified programs, months"),
    "validity_months_significant": _l("Validity of socially significant programs, months"),
    "validity_months_general": _l("Validity of general developmental programs, months"),
    "validity_months_pre_professional": _l("Validity of pre-professional programs, months"),
    "timezone": _l("Time zone"),
    "mail_sender_name": _l("Sender name of e-mails"),
    "mail_signature": _l("Signature of e-mails"),
    "holidays": _l("Extra days off"),
    "extra_working_days": _l("Extra working days"),
}
register_setting_labels(SETTING_LABELS)


# --- reading -----------------------------------------------------------------------------------


def _cache() -> dict:
    if not has_app_context():
        return {}
    if "settings_cache" not in g:
        g.settings_cache = {}
    return g.settings_cache


def get_setting(key: str) -> Any:
    """The stored value of ``key``, or its default."""
    if key not in DEFAULTS:
        raise KeyError(f"unknown setting {key!r}")
    cache = _cache()
    if key not in cache:
        row = db.session.execute(_value_of(), {"key": key}).first()
        cache[key] = row.value if row is not None else DEFAULTS[key]
    return cache[key]


@functools.cache
def _value_of():
    """The statement reading one setting's stored value (built once: building costs more
    CPU than running it)."""
    return select(Setting.value).where(Setting.key == sa.bindparam("key"))


def _read_afresh(keys) -> dict[str, Any]:
    """The committed values of ``keys`` (under the ``settings`` lock: what another request
    wrote since this one read them counts)."""
    rows = db.session.execute(
        select(Setting).where(Setting.key.in_(list(keys))).execution_options(populate_existing=True)
    ).scalars()
    stored = {row.key: row.value for row in rows}
    cache = _cache()
    values = {}
    for key in keys:
        values[key] = cache[key] = stored.get(key, DEFAULTS[key])
    return values


def set_setting(key: str, value: Any, actor=None) -> None:
    """Store ``value`` for ``key`` and audit the change (not committed). The value is
    checked by the key's rule (:func:`clean_setting`; :class:`SettingError` when it breaks
    it) whoever calls: the page, the demo seed, ``simulate``."""
    if key not in DEFAULTS:
        raise KeyError(f"unknown setting {key!r}")
    value = clean_setting(key, value)
    before = get_setting(key)
    row = db.session.get(Setting, key)
    if row is None:
        row = Setting(key=key, value=value)
        db.session.add(row)
    else:
        row.value = value
    row.updated_by_id = actor.id if actor is not None else None
    _cache()[key] = value
    record_event(
        "settings.change",
        actor=actor,
        object_type="setting",
        object_id=key,
        before={"value": before},
        after={"value": value},
    )


# --- the rules ---------------------------------------------------------------------------------


@functools.cache
def time_zones() -> frozenset[str]:
    """The IANA time zones this system knows (read from the zone database once)."""
    return frozenset(available_timezones())


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise SettingError(key, _l("Enter text."))
    value = value.strip()
    if _CONTROL.search(value):
        raise SettingError(key, _l("Enter one line of text without control characters."))
    if len(value) > TEXT_LIMITS[key]:
        raise SettingError(key, _l("At most %(n)s characters, please.", n=TEXT_LIMITS[key]))
    return value


def _lines(key: str, value: Any) -> str:
    """Text of a few lines: each stripped, line breaks as ``\\n``, no other control
    characters, bounded in characters and lines."""
    if not isinstance(value, str):
        raise SettingError(key, _l("Enter text."))
    lines = [line.strip() for line in value.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    value = "\n".join(lines).strip("\n")
    if _CONTROL_BUT_NEWLINE.search(value):
        raise SettingError(key, _l("Enter text without control characters."))
    most_chars, most_lines = MULTILINE_LIMITS[key]
    if len(value) > most_chars:
        raise SettingError(key, _l("At most %(n)s characters, please.", n=most_chars))
    if value.count("\n") >= most_lines:
        raise SettingError(key, _l("At most %(n)s lines, please.", n=most_lines))
    return value


def _number(key: str, value: Any) -> int:
    least, greatest = NUMBER_LIMITS[key]
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,4}", value.strip()):
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or not least <= value <= greatest:
        raise SettingError(
            key,
            _l(
                "Enter a whole number from %(least)s to %(greatest)s.",
                least=least,
                greatest=greatest,
            ),
        )
    return value


def _region_code(key: str, value: Any) -> str:
    value = value.strip() if isinstance(value, str) else value
    if not isinstance(value, str) or not _REGION_CODE.fullmatch(value):
        raise SettingError(
            key,
            _l(
                "The region code is two digits from 01 to 99, as in the numbers of "
                "conclusions (67-2026-00001)."
            ),
        )
    return value


def _email(key: str, value: Any) -> str:
    """An e-mail address, or empty (none given)."""
    value = value.strip() if isinstance(value, str) else value
    if not isinstance(value, str):
        raise SettingError(key, _l("Enter text."))
    if value and (
        len(value) > MAX_EMAIL_LENGTH or _CONTROL.search(value) or not _EMAIL.fullmatch(value)
    ):
        raise SettingError(key, _l("Enter an e-mail address such as rmc@example.org."))
    return value


def _policy(key: str, value: Any) -> str:
    if value not in {policy.value for policy in MunicipalityPolicy}:
        raise SettingError(key, _l("Choose one of the municipality policies."))
    return value


def _timezone(key: str, value: Any) -> str:
    value = value.strip() if isinstance(value, str) else value
    if not isinstance(value, str) or value not in time_zones():
        raise SettingError(key, _l("Choose a time zone from the list (e.g. Europe/Moscow)."))
    return value


def check_calendar_day(key: str, value: Any) -> date:
    """A day of a calendar list: a date from 2000 to 2100 (a ``date`` or ``YYYY-MM-DD``)."""
    if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        with contextlib.suppress(ValueError):
            value = date.fromisoformat(value)
    if not isinstance(value, date) or not FIRST_DAY <= value <= LAST_DAY:
        raise SettingError(
            key,
            _l(
                "Enter a date from %(first)s to %(last)s.",
                first=FIRST_DAY.strftime("%d.%m.%Y"),
                last=LAST_DAY.strftime("%d.%m.%Y"),
            ),
        )
    return value


def _days(key: str, value: Any) -> list[str]:
    if not isinstance(value, list | tuple):
        raise SettingError(key, _l("Enter a list of dates."))
    if len(value) > MAX_CALENDAR_DAYS:
        raise SettingError(key, _l("At most %(n)s days in the list.", n=MAX_CALENDAR_DAYS))
    return sorted({check_calendar_day(key, day).isoformat() for day in value})


RULES = {
    "region_code": _region_code,
    **dict.fromkeys(TEXT_LIMITS, _text),
    "center_email": _email,
    **dict.fromkeys(MULTILINE_LIMITS, _lines),
    "municipality_policy": _policy,
    **dict.fromkeys(NUMBER_LIMITS, _number),
    "timezone": _timezone,
    "holidays": _days,
    "extra_working_days": _days,
}


def clean_setting(key: str, value: Any) -> Any:
    """``value`` as stored for ``key`` (text stripped, numbers as integers, dates sorted), or
    :class:`SettingError` with the reason."""
    if key not in RULES:
        raise SettingError(key, _l("There is no such setting."))
    return RULES[key](key, value)


def _check_together(values: dict[str, Any]) -> None:
    """The rules between settings, on the values they will have."""
    if values["reminder_days_before"] >= values["deadline_working_days"]:
        raise SettingError(
            "reminder_days_before",
            _l("The reminder must come before the deadline: fewer days than the expertise."),
        )
    if set(values["holidays"]) & set(values["extra_working_days"]):
        raise SettingError(
            "extra_working_days", _l("A day cannot be both an extra day off and a working day.")
        )


# --- the settings page's operations -------------------------------------------------------------


def center_settings() -> dict[str, Any]:
    """Every setting of the page, as stored or by default."""
    return {key: get_setting(key) for key in DEFAULTS}


def update_settings(actor, values: dict[str, Any], seen: dict[str, Any] | None = None) -> list[str]:
    """Store the settings ``actor`` changed (not committed); return their keys.

    ``values`` are the page's values; ``seen`` what the page showed when it was opened. A
    setting is changed when its value differs from what was shown (without ``seen``: from
    what is stored); only those are written, one audit record each. A changed setting that
    someone else changed meanwhile raises :class:`SettingsConflict` and nothing is written.
    Raises :class:`SettingError` for a value its rule refuses (nothing is written)."""
    authorize(can_manage_settings(actor))
    unknown = sorted(set(values) - set(FORM_KEYS))
    if unknown:
        raise SettingError(unknown[0], _l("There is no such setting."))
    cleaned = {key: clean_setting(key, value) for key, value in values.items()}
    hold_lock("settings")
    current = _read_afresh(DEFAULTS)
    if seen is None:
        wanted = {k: v for k, v in cleaned.items() if v != current[k]}
    else:
        wanted = {k: v for k, v in cleaned.items() if v != seen.get(k)}
        conflicts = [k for k, v in wanted.items() if current[k] not in (seen.get(k), v)]
        if conflicts:
            raise SettingsConflict(conflicts)
        wanted = {k: v for k, v in wanted.items() if v != current[k]}
    _check_together({**current, **wanted})
    for key in FORM_KEYS:
        if key in wanted:
            set_setting(key, wanted[key], actor=actor)
    return [key for key in FORM_KEYS if key in wanted]


def _calendar_key(kind: str) -> str:
    if kind not in CALENDAR_LISTS:
        raise InvalidInput(_l("There is no such list of days."))
    return CALENDAR_LISTS[kind]


def add_calendar_day(actor, kind: str, day: Any) -> date:
    """Add ``day`` to the center's extra days off (``kind`` ``days_off``) or extra working
    days (``working_days``), audited (not committed). Refused when the official calendar
    already has it so, when the other list has it, or when the list is full."""
    from review_portal.settings.calendar import official_year
    from review_portal.working_days import WorkingCalendar

    authorize(can_manage_settings(actor))
    key = _calendar_key(kind)
    day = check_calendar_day(key, day)
    hold_lock("settings")
    current = _read_afresh(CALENDAR_LISTS.values())
    shown = day.strftime("%d.%m.%Y")
    if day.isoformat() in current[key]:
        raise SettingError(key, _l("%(day)s is already in the list.", day=shown))
    other = next(k for k in CALENDAR_LISTS.values() if k != key)
    if day.isoformat() in current[other]:
        raise SettingError(
            key,
            _l("%(day)s is in the other list; remove it from there first.", day=shown),
        )
    working = WorkingCalendar(official_year).is_officially_working(day)
    if key == "holidays" and not working:
        raise SettingError(
            key, _l("%(day)s is already a day off in the production calendar.", day=shown)
        )
    if key == "extra_working_days" and working:
        raise SettingError(
            key, _l("%(day)s is already a working day in the production calendar.", day=shown)
        )
    if len(current[key]) >= MAX_CALENDAR_DAYS:
        raise SettingError(key, _l("At most %(n)s days in the list.", n=MAX_CALENDAR_DAYS))
    set_setting(key, clean_setting(key, [*current[key], day.isoformat()]), actor=actor)
    return day


def remove_calendar_day(actor, kind: str, day: Any) -> date:
    """Remove ``day`` from one of the center's lists, audited (not committed)."""
    authorize(can_manage_settings(actor))
    key = _calendar_key(kind)
    day = check_calendar_day(key, day)
    hold_lock("settings")
    current = _read_afresh([key])[key]
    if day.isoformat() not in current:
        raise NotFound(_l("%(day)s is not in the list.", day=day.strftime("%d.%m.%Y")))
    set_setting(key, [d for d in current if d != day.isoformat()], actor=actor)
    return day
