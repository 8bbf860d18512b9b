"""Operations on regional experts: their profile and unavailable periods, suspension by a
coordinator, the registry (filters, open load, CSV export) and the bulk import from CSV.

An expert is a user with the ``expert`` role and an :class:`ExpertProfile`. What a
coordinator sees as the expert's *status* is derived, never stored twice
(:func:`expert_status`): the account's approval, the profile's ``suspended`` flag and the
account's ``active`` switch. The *open load* is the number of offered or accepted
assignments — the same count the eligibility rules compare with the capacity.

Services flush and audit (``record_event``); the caller commits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import IO, TYPE_CHECKING, Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from review_portal.accounts.models import User
from review_portal.accounts.services import (
    AccountError,
    create_approved_user,
    normalize_email,
    send_welcome_link,
)
from review_portal.assignment.models import Assignment
from review_portal.assignment.queries import accepted_open_assignments
from review_portal.assignment.services import local_today, withdraw_offers_of
from review_portal.audit.services import record_event
from review_portal.db import utcnow
from review_portal.enums import AccountStatus, Direction, NotificationKind, Role
from review_portal.errors import DomainError
from review_portal.experts.models import ExpertProfile, ExpertUnavailability
from review_portal.experts.permissions import can_edit_own_profile, can_manage_expert
from review_portal.experts.queries import (
    DIRECTION_WORDS,
    STATUS_WORDS,
    current_unavailability,
    expert_status,
    open_loads,
)
from review_portal.extensions import db
from review_portal.imports.services import (
    DIRECTIONS,
    Column,
    ImportReport,
    InvalidValue,
    chunks,
    column_order,
    email,
    municipality,
    organizations_by_inn,
    read_rows,
    record_import,
    registration_number,
    text,
    whole_number,
)
from review_portal.notifications.services import tell
from review_portal.organizations.models import Organization
from review_portal.organizations.queries import inn_holder
from review_portal.organizations.validators import is_valid_inn
from review_portal.permissions import authorize
from review_portal.spreadsheets import Code, CsvWriter
from review_portal.urls import site_path

if TYPE_CHECKING:
    from sqlalchemy.sql import Select

#: The capacity an expert may declare (open assignments at once).
CAPACITY_MIN, CAPACITY_MAX = 1, 50
EXPERIENCE_MAX = 70


class ExpertError(DomainError):
    """An operation refused for a reason the user should read; ``field`` names the form
    field it is about, when there is one."""

    def __init__(self, message, field: str | None = None) -> None:
        super().__init__(str(message))
        self.message = message
        self.field = field


def _period_text(period: ExpertUnavailability) -> str:
    return f"{period.starts_on:%d.%m.%Y}–{period.ends_on:%d.%m.%Y}"


def export_experts_csv(stmt: Select, *, batch: int = 500) -> Iterator[str]:
    """The experts of ``stmt`` (an :func:`expert_registry_query`) as CSV text chunks.

    The portal's CSV convention (:mod:`review_portal.spreadsheets`: BOM, ``;``, CRLF,
    formulas guarded, the ИНН as a text code). The first nine columns are those of the
    import, so the file can be edited and imported elsewhere; then the open load, the status
    and the periods of unavailability not yet over. Rows are read in batches of ``batch`` (a
    server-side cursor on PostgreSQL), with one query per batch for the loads and one for the
    periods, and each batch is yielded as it is written.
    """
    writer = CsvWriter(EXPORT_HEADER)
    yield writer.header()
    today = local_today()
    result = db.session.execute(stmt.execution_options(yield_per=batch))
    try:
        for profiles in result.scalars().partitions():
            loads = open_loads(p.user_id for p in profiles)
            periods = current_unavailability((p.id for p in profiles), today)
            yield from writer.rows(
                (
                    (
                        profile.user.full_name,
                        profile.user.email,
                        profile.municipality.name,
                        profile.home_organization_name,
                        Code(profile.home_organization_inn or ""),
                        profile.position or "",
                        ", ".join(DIRECTION_WORDS[d] for d in Direction if d in profile.directions),
                        profile.qualification,
                        profile.capacity,
                        loads.get(profile.user_id, 0),
                        STATUS_WORDS[expert_status(profile)],
                        ", ".join(_period_text(p) for p in periods.get(profile.id, ())),
                    )
                    for profile in profiles
                ),
                chunk_rows=batch,
            )
    finally:
        result.close()


# --- profile ----------------------------------------------------------------------------

#: What :func:`update_expert_profile` may change.
PROFILE_FIELDS = (
    "directions",
    "capacity",
    "qualification",
    "experience_years",
    "position",
    "home_organization_name",
    "home_organization_inn",
)


def _snapshot(profile: ExpertProfile) -> dict:
    return {
        "directions": sorted(d.value for d in profile.directions),
        "capacity": profile.capacity,
        "qualification": profile.qualification,
        "experience_years": profile.experience_years,
        "position": profile.position,
        "home_organization_name": profile.home_organization_name,
        "home_organization_inn": profile.home_organization_inn,
        "home_organization_id": profile.home_organization_id,
    }


def find_organization_by_inn(inn: str | None) -> Organization | None:
    """The organization that holds ``inn`` (the approved one; others may claim it)."""
    return inn_holder(inn)


def update_expert_profile(profile: ExpertProfile, actor: User, **fields: Any) -> dict:
    """Change the fields of :data:`PROFILE_FIELDS` given; returns ``{field: (before, after)}``.

    Keeps: at least one direction; a capacity within ``CAPACITY_MIN..CAPACITY_MAX``; a
    qualification and a home organization's name; a valid ИНН or none. The home
    organization is linked to the portal's organization with that ИНН when there is one
    (so the expert is never routed its programs) and unlinked otherwise. Audited as
    ``expert.update_profile`` when anything changed.
    """
    authorize(can_edit_own_profile(actor, profile))
    unknown = set(fields) - set(PROFILE_FIELDS)
    if unknown:
        raise TypeError(f"unknown profile fields: {', '.join(sorted(unknown))}")
    before = _snapshot(profile)
    if "directions" in fields:
        directions = {Direction(d) for d in fields["directions"] or ()}
        if not directions:
            raise ExpertError(_l("Choose at least one direction."), "directions")
        profile.set_directions(directions)
    if "capacity" in fields:
        capacity = fields["capacity"]
        if capacity is None or not CAPACITY_MIN <= int(capacity) <= CAPACITY_MAX:
            raise ExpertError(
                _l("Enter a number from %(low)s to %(high)s.", low=CAPACITY_MIN, high=CAPACITY_MAX),
                "capacity",
            )
        profile.capacity = int(capacity)
    if "qualification" in fields:
        qualification = (fields["qualification"] or "").strip()
        if not qualification:
            raise ExpertError(_l("This field is required."), "qualification")
        profile.qualification = qualification
    if "experience_years" in fields:
        years = fields["experience_years"]
        if years is not None and not 0 <= int(years) <= EXPERIENCE_MAX:
            raise ExpertError(
                _l("Enter a number from 0 to %(n)s.", n=EXPERIENCE_MAX), "experience_years"
            )
        profile.experience_years = years
    if "position" in fields:
        profile.position = (fields["position"] or "").strip() or None
    if "home_organization_name" in fields:
        name = (fields["home_organization_name"] or "").strip()
        if not name:
            raise ExpertError(_l("This field is required."), "home_organization_name")
        profile.home_organization_name = name
    if "home_organization_inn" in fields:
        inn = re.sub(r"\s", "", fields["home_organization_inn"] or "") or None
        if inn is not None and not is_valid_inn(inn):
            raise ExpertError(
                _l("The INN control digits do not match: check the number."),
                "home_organization_inn",
            )
        profile.home_organization_inn = inn
        home = find_organization_by_inn(inn)
        profile.home_organization_id = home.id if home else None
    db.session.flush()
    after = _snapshot(profile)
    changes = {k: (before[k], after[k]) for k in after if before[k] != after[k]}
    if changes:
        profile.updated_at = utcnow()
        record_event(
            "expert.update_profile",
            actor=actor,
            object_type="user",
            object_id=profile.user_id,
            before={k: v[0] for k, v in changes.items()},
            after={k: v[1] for k, v in changes.items()},
        )
    return changes


# --- unavailability ---------------------------------------------------------------------


def add_unavailability(
    profile: ExpertProfile,
    actor: User,
    starts_on: date | None,
    ends_on: date | None,
    reason: str | None = None,
) -> ExpertUnavailability:
    """Add a period (inclusive) in which the expert gets no assignments.

    Refused when it ends before it starts, is already over (ends before today in the
    portal's time zone) or overlaps another period of the expert. Audited as
    ``expert.add_unavailability``.
    """
    authorize(can_edit_own_profile(actor, profile))
    if starts_on is None:
        raise ExpertError(_l("This field is required."), "starts_on")
    if ends_on is None:
        raise ExpertError(_l("This field is required."), "ends_on")
    if ends_on < starts_on:
        raise ExpertError(_l("The period cannot end before it starts."), "ends_on")
    if ends_on < local_today():
        raise ExpertError(
            _l("The period is already over: its end must be today or later."), "ends_on"
        )
    for other in profile.unavailability:
        if other.starts_on <= ends_on and other.ends_on >= starts_on:
            raise ExpertError(
                _l(
                    "The period overlaps another one: %(start)s – %(end)s.",
                    start=other.starts_on.strftime("%d.%m.%Y"),
                    end=other.ends_on.strftime("%d.%m.%Y"),
                ),
                "starts_on",
            )
    reason = (reason or "").strip() or None
    period = ExpertUnavailability(
        starts_on=starts_on, ends_on=ends_on, reason=reason, created_at=utcnow()
    )
    profile.unavailability.append(period)
    db.session.flush()
    record_event(
        "expert.add_unavailability",
        actor=actor,
        object_type="user",
        object_id=profile.user_id,
        after={"id": period.id, "starts_on": starts_on, "ends_on": ends_on, "reason": reason},
    )
    return period


def remove_unavailability(
    profile: ExpertProfile, actor: User, period: ExpertUnavailability
) -> None:
    """Delete one of the expert's periods; audited as ``expert.remove_unavailability``."""
    authorize(can_edit_own_profile(actor, profile))
    if period.expert_id != profile.id:
        raise ExpertError(_l("This period belongs to another expert."))
    before = {
        "id": period.id,
        "starts_on": period.starts_on,
        "ends_on": period.ends_on,
        "reason": period.reason,
    }
    profile.unavailability.remove(period)
    db.session.flush()
    record_event(
        "expert.remove_unavailability",
        actor=actor,
        object_type="user",
        object_id=profile.user_id,
        before=before,
    )


# --- suspension -------------------------------------------------------------------------


@dataclass
class Suspension:
    """What a suspension did to the expert's assignments."""

    #: Open offers withdrawn (each followed by the automatic replacement).
    withdrawn: list[Assignment]
    #: The replacements the portal assigned for them.
    replacements: list[Assignment]
    #: Accepted assignments not yet submitted: the coordinator decides whether to reassign.
    accepted: list[Assignment]
    #: Offers on reviews the acting coordinator sits on as an expert: left to another one.
    left: list[Assignment] = field(default_factory=list)


def suspend_expert(profile: ExpertProfile, actor: User, reason: str) -> Suspension:
    """Suspend an approved expert with a reason: they keep their history but are not
    eligible for new work. Their open offers are withdrawn with an automatic replacement
    (:func:`~review_portal.assignment.services.withdraw_offers_of`); the accepted ones stay
    and are returned for the coordinator to reassign.

    Audited as ``expert.suspend`` (and each withdrawal as ``assignment.withdraw``); the
    expert is told in the portal and by e-mail.
    """
    authorize(can_manage_expert(actor, profile))
    reason = (reason or "").strip()
    if not reason:
        raise ExpertError(_l("A reason is required for this action."), "reason")
    if profile.user.status != AccountStatus.APPROVED:
        raise ExpertError(_l("Only an approved expert can be suspended."))
    if profile.suspended:
        raise ExpertError(_l("The expert is already suspended."))
    profile.suspended = True
    profile.suspended_reason = reason
    db.session.flush()
    record_event(
        "expert.suspend",
        actor=actor,
        object_type="user",
        object_id=profile.user_id,
        before={"suspended": False},
        after={"suspended": True, "reason": reason},
    )
    message = _l(
        "Your work as an expert has been suspended by the coordinator. Reason: %(reason)s\n\n"
        "You receive no new assignments meanwhile; your home page shows the reviews you "
        "still have. If you have questions, contact the coordinator.",
        reason=reason,
    )
    tell(
        profile.user,
        NotificationKind.ACCOUNT,
        message,
        link=site_path("main.expert_home"),
        subject=_l("Your work as an expert is suspended"),
    )
    withdrawn, replacements, left = withdraw_offers_of(profile.user, actor)
    return Suspension(withdrawn, replacements, accepted_open_assignments(profile.user), left)


def reactivate_expert(profile: ExpertProfile, actor: User) -> None:
    """Lift a suspension: the expert is eligible again. Audited as ``expert.reactivate``."""
    authorize(can_manage_expert(actor, profile))
    if not profile.suspended:
        raise ExpertError(_l("The expert is not suspended."))
    reason = profile.suspended_reason
    profile.suspended = False
    profile.suspended_reason = None
    db.session.flush()
    record_event(
        "expert.reactivate",
        actor=actor,
        object_type="user",
        object_id=profile.user_id,
        before={"suspended": True, "reason": reason},
        after={"suspended": False},
    )
    message = _l("Your work as an expert has been resumed: you can receive assignments again.")
    tell(
        profile.user,
        NotificationKind.ACCOUNT,
        message,
        link=site_path("main.expert_home"),
        subject=_l("Your work as an expert is resumed"),
    )


# --- the CSV import ---------------------------------------------------------------------

EXPERTS = "experts"
#: Directions in one cell are separated by commas; semicolons and line breaks work too
#: (a cell holding a semicolon must then be quoted, as Excel does by itself).
_DIRECTION_SEPARATORS = re.compile(r"[,;\n]+")


def directions_cell(value: str, context) -> list[Direction]:
    words = [word.strip() for word in _DIRECTION_SEPARATORS.split(value) if word.strip()]
    if not words:
        raise InvalidValue(_l("This field is required."))
    found = {DIRECTIONS(word, context) for word in words}
    return [d for d in Direction if d in found]


def inn_cell(value: str, context) -> str:
    value = registration_number(value, context)
    if not is_valid_inn(value):
        raise InvalidValue(
            _l("An INN has 10 or 12 digits with correct control digits: check the number.")
        )
    return value


def capacity_cell(value: str, context) -> int:
    number = whole_number(value, context)
    if not CAPACITY_MIN <= number <= CAPACITY_MAX:
        raise InvalidValue(
            _l("Enter a number from %(low)s to %(high)s.", low=CAPACITY_MIN, high=CAPACITY_MAX)
        )
    return number


EMAIL_COLUMN = "Электронная почта"

EXPERT_COLUMNS = (
    Column("ФИО", "full_name", True, text(255), _l("Full name; at most 255 characters.")),
    Column(
        EMAIL_COLUMN,
        "email",
        True,
        email,
        _l("The expert's login: a link to set the password is sent to it."),
    ),
    Column(
        "Муниципальное образование",
        "municipality_id",
        True,
        municipality,
        _l("The name as in the portal's list of municipalities."),
    ),
    Column(
        "Место работы",
        "home_organization_name",
        True,
        text(500),
        _l("The expert's home organization; at most 500 characters."),
    ),
    Column(
        "ИНН места работы",
        "home_organization_inn",
        False,
        inn_cell,
        _l(
            "When an organization with this INN is registered on the portal, the expert is "
            "linked to it and never gets its programs."
        ),
    ),
    Column("Должность", "position", False, text(255), _l("At most 255 characters.")),
    Column(
        "Направленности",
        "directions",
        True,
        directions_cell,
        _l(
            "One or more of: %(words)s — separated by commas.",
            words=", ".join(DIRECTIONS.words),
        ),
    ),
    Column("Квалификация и опыт", "qualification", True, text()),
    Column(
        "Максимальная нагрузка",
        "capacity",
        True,
        capacity_cell,
        _l(
            "How many programs the expert may assess at the same time, from %(low)s to %(high)s.",
            low=CAPACITY_MIN,
            high=CAPACITY_MAX,
        ),
    ),
)

EXPORT_HEADER = [column.name for column in EXPERT_COLUMNS] + [
    "Открытые назначения",
    "Статус",
    "Периоды недоступности",
]


def template_csv() -> str:
    """The header row of an experts file (the portal's CSV convention: BOM, ``;``, CRLF)."""
    return CsvWriter([column.name for column in EXPERT_COLUMNS]).header()


def _existing_emails(emails: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for chunk in chunks(sorted(set(emails))):
        found.update(db.session.execute(select(User.email).where(User.email.in_(chunk))).scalars())
    return found


def _check_experts(rows, report: ImportReport) -> None:
    first_row_of: dict[str, int] = {}
    for row in rows:
        address = row.data.get("email")
        if address is None:
            continue
        key = normalize_email(address)
        if key in first_row_of:
            report.add(
                row.number,
                EMAIL_COLUMN,
                _l("This e-mail is already in row %(row)s of the file.", row=first_row_of[key]),
            )
        else:
            first_row_of[key] = row.number
    for address in sorted(_existing_emails(first_row_of)):
        report.add(
            first_row_of[address], EMAIL_COLUMN, _l("An account with this e-mail already exists.")
        )


def import_experts_csv(stream: IO[bytes], actor: User, filename: str | None = None) -> ImportReport:
    """Create the experts of a CSV file (:data:`EXPERT_COLUMNS`), approved at once.

    Read like the organizations and programs import (encodings, delimiters, per-row report
    with the row number and column). Nothing is written unless every row is valid; then
    each expert gets an approved account (``create_approved_user``: the coordinator
    vouches for the consent), a profile linked to the portal's organization with the
    home organization's ИНН when there is one, and an e-mail with a link to set a
    password. The import is audited as ``import.experts``.
    """
    authorize(can_manage_expert(actor))
    report = ImportReport(EXPERTS)
    rows = read_rows(stream, EXPERT_COLUMNS, report)
    if rows is None:
        return report
    _check_experts(rows, report)
    if not report.ok:
        report.errors.sort(key=column_order(EXPERT_COLUMNS))
        return report
    homes = organizations_by_inn(
        row.data["home_organization_inn"] for row in rows if row.data["home_organization_inn"]
    )
    current = None
    try:
        with db.session.begin_nested():
            for current in rows:
                data = current.data
                # Nobody knows this password: the owner sets one through the e-mailed link.
                user = create_approved_user(
                    data["email"],
                    None,
                    data["full_name"],
                    [Role.EXPERT],
                    actor=actor,
                )
                home = homes.get(data["home_organization_inn"] or "")
                profile = ExpertProfile(
                    user=user,
                    municipality_id=data["municipality_id"],
                    home_organization_id=home.id if home else None,
                    home_organization_name=data["home_organization_name"],
                    home_organization_inn=data["home_organization_inn"],
                    position=data["position"],
                    qualification=data["qualification"],
                    capacity=data["capacity"],
                )
                profile.set_directions(data["directions"])
                db.session.add(profile)
                send_welcome_link(user)
            db.session.flush()
            record_import(report, actor, filename, len(rows))
    except (AccountError, sa.exc.IntegrityError):
        # Registered by someone else between the check and the insert: nothing is kept.
        report.add(
            current.number if current else 0,
            EMAIL_COLUMN,
            _l("An account with this e-mail already exists."),
        )
        return report
    report.created = len(rows)
    return report
