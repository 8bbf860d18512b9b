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

import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import date
from typing import IO, TYPE_CHECKING, Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select
from sqlalchemy.orm import contains_eager, selectinload

from review_portal.accounts.models import User, UserRole
from review_portal.accounts.services import (
    AccountError,
    create_approved_user,
    normalize_email,
    send_welcome_link,
)
from review_portal.assignment.models import Assignment
from review_portal.assignment.services import OPEN_STATUSES, local_today
from review_portal.audit.services import record_event
from review_portal.db import utcnow
from review_portal.enums import AccountStatus, Direction, LabelledEnum, Role
from review_portal.errors import DomainError
from review_portal.experts.models import ExpertDirection, ExpertProfile, ExpertUnavailability
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
    normalize,
    organizations_by_inn,
    read_rows,
    record_import,
    registration_number,
    text,
    whole_number,
)
from review_portal.notifications.services import notify, queue_email
from review_portal.organizations.models import Organization
from review_portal.organizations.validators import is_valid_inn

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


# --- status and load --------------------------------------------------------------------


class ExpertStatus(LabelledEnum):
    PENDING = "pending", _l("Awaiting approval")
    ACTIVE = "active", _l("Active")
    SUSPENDED = "suspended", _l("Suspended")
    REJECTED = "rejected", _l("Registration rejected")
    SWITCHED_OFF = "switched_off", _l("Account switched off")


def expert_status(profile: ExpertProfile) -> ExpertStatus:
    """The expert's status as the registry shows it (mirrors :func:`_status_condition`)."""
    user = profile.user
    if user.status == AccountStatus.PENDING:
        return ExpertStatus.PENDING
    if user.status == AccountStatus.REJECTED:
        return ExpertStatus.REJECTED
    if profile.suspended:
        return ExpertStatus.SUSPENDED
    if not user.active:
        return ExpertStatus.SWITCHED_OFF
    return ExpertStatus.ACTIVE


def _status_condition(status: ExpertStatus):
    approved = User.status == AccountStatus.APPROVED
    suspended = ExpertProfile.suspended.is_(True)
    return {
        ExpertStatus.PENDING: User.status == AccountStatus.PENDING,
        ExpertStatus.REJECTED: User.status == AccountStatus.REJECTED,
        ExpertStatus.SUSPENDED: sa.and_(approved, suspended),
        ExpertStatus.SWITCHED_OFF: sa.and_(approved, ~suspended, User.active.is_(False)),
        ExpertStatus.ACTIVE: sa.and_(approved, ~suspended, User.active.is_(True)),
    }[status]


class LoadFilter(LabelledEnum):
    FREE = "free", _l("Has free capacity")
    FULL = "full", _l("At capacity")
    IDLE = "idle", _l("No open assignments")


def _open_load_expression():
    """The expert's open assignments, as a correlated subquery on ``ExpertProfile``."""
    return (
        select(func.count(Assignment.id))
        .where(Assignment.expert_id == ExpertProfile.user_id, Assignment.status.in_(OPEN_STATUSES))
        .correlate(ExpertProfile)
        .scalar_subquery()
    )


def open_loads(user_ids: Iterable[int]) -> dict[int, int]:
    """Open (offered or accepted) assignments per expert user id; one query per 500 ids."""
    loads: dict[int, int] = {}
    for chunk in chunks(sorted(set(user_ids))):
        loads.update(
            db.session.execute(
                select(Assignment.expert_id, func.count(Assignment.id))
                .where(Assignment.expert_id.in_(chunk), Assignment.status.in_(OPEN_STATUSES))
                .group_by(Assignment.expert_id)
            )
            .tuples()
            .all()
        )
    return loads


def current_unavailability(
    profile_ids: Iterable[int], today: date | None = None
) -> dict[int, list[ExpertUnavailability]]:
    """The periods not yet over (ending today or later) per profile id, in date order."""
    today = today or local_today()
    periods: dict[int, list[ExpertUnavailability]] = defaultdict(list)
    for chunk in chunks(sorted(set(profile_ids))):
        for period in db.session.execute(
            select(ExpertUnavailability)
            .where(ExpertUnavailability.expert_id.in_(chunk), ExpertUnavailability.ends_on >= today)
            .order_by(ExpertUnavailability.starts_on)
        ).scalars():
            periods[period.expert_id].append(period)
    return periods


# --- the registry -----------------------------------------------------------------------


def expert_registry_query(
    *,
    direction: Direction | str | None = None,
    municipality_id: int | None = None,
    status: ExpertStatus | str | None = None,
    load: LoadFilter | str | None = None,
    q: str | None = None,
) -> Select:
    """Experts (users with the expert role and a profile) matching the filters, by name.

    Selects :class:`ExpertProfile` with its user (same row), municipality, home
    organization and directions (one ``IN`` query each), so a page of any size costs a
    fixed number of statements; the open loads of a page come from :func:`open_loads`.
    ``load``: ``free`` (under capacity), ``full`` (at or over it), ``idle`` (no open
    assignment).
    """
    stmt = (
        select(ExpertProfile)
        .join(User, ExpertProfile.user_id == User.id)
        .where(User.id.in_(select(UserRole.user_id).where(UserRole.role == Role.EXPERT)))
        .options(
            contains_eager(ExpertProfile.user),
            selectinload(ExpertProfile.municipality),
            selectinload(ExpertProfile.home_organization),
            selectinload(ExpertProfile.direction_rows),
        )
        .order_by(User.full_name, User.id)
    )
    if direction:
        stmt = stmt.where(
            ExpertProfile.id.in_(
                select(ExpertDirection.expert_id).where(
                    ExpertDirection.direction == Direction(direction)
                )
            )
        )
    if municipality_id:
        stmt = stmt.where(ExpertProfile.municipality_id == municipality_id)
    if status:
        stmt = stmt.where(_status_condition(ExpertStatus(status)))
    if load:
        open_load = _open_load_expression()
        stmt = stmt.where(
            {
                LoadFilter.FREE: open_load < ExpertProfile.capacity,
                LoadFilter.FULL: open_load >= ExpertProfile.capacity,
                LoadFilter.IDLE: open_load == 0,
            }[LoadFilter(load)]
        )
    if q:
        # Matched literally (``%`` and ``_`` are not wildcards), case folded by the database.
        stmt = stmt.where(
            or_(
                *(
                    column.icontains(q, autoescape=True)
                    for column in (
                        User.full_name,
                        User.email,
                        ExpertProfile.home_organization_name,
                        ExpertProfile.position,
                    )
                ),
                ExpertProfile.home_organization_inn == q.strip(),
            )
        )
    return stmt


def find_expert_profile(user_id: int) -> ExpertProfile | None:
    """The profile of the expert user ``user_id`` (with the expert role), if any."""
    return db.session.execute(
        select(ExpertProfile)
        .join(User, ExpertProfile.user_id == User.id)
        .where(
            ExpertProfile.user_id == user_id,
            User.id.in_(select(UserRole.user_id).where(UserRole.role == Role.EXPERT)),
        )
        .options(contains_eager(ExpertProfile.user))
    ).scalar_one_or_none()


def assignment_history(user_id: int) -> list[tuple[Assignment, Any]]:
    """Every assignment of the expert, newest first, with its program (one query)."""
    from review_portal.programs.models import Program
    from review_portal.reviews.models import Review

    return list(
        db.session.execute(
            select(Assignment, Program)
            .join(Review, Assignment.review_id == Review.id)
            .join(Program, Review.program_id == Program.id)
            .where(Assignment.expert_id == user_id)
            .options(contains_eager(Assignment.review))
            .order_by(Assignment.assigned_at.desc(), Assignment.id.desc())
        ).tuples()
    )


# --- the CSV export ---------------------------------------------------------------------

#: Russian words of each direction, as the import reads them (the first spelling).
DIRECTION_WORDS: dict[Direction, str] = {
    DIRECTIONS.lookup[normalize(word)]: word for word in reversed(DIRECTIONS.words)
}
#: The status column of the export, in the data's language (like the column names).
STATUS_WORDS: dict[ExpertStatus, str] = {
    ExpertStatus.PENDING: "ожидает одобрения",
    ExpertStatus.ACTIVE: "активен",
    ExpertStatus.SUSPENDED: "приостановлен",
    ExpertStatus.REJECTED: "регистрация отклонена",
    ExpertStatus.SWITCHED_OFF: "учётная запись отключена",
}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """A free-text cell that Excel would run as a formula is written as text."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _period_text(period: ExpertUnavailability) -> str:
    return f"{period.starts_on:%d.%m.%Y}–{period.ends_on:%d.%m.%Y}"


def export_experts_csv(stmt: Select, *, batch: int = 500) -> Iterator[str]:
    """The experts of ``stmt`` (an :func:`expert_registry_query`) as CSV text chunks.

    UTF-8 with BOM and ``;`` (Excel opens it with Cyrillic intact). The first nine columns
    are those of the import, so the file can be edited and imported elsewhere; then the
    open load, the status and the periods of unavailability not yet over. Rows are read in
    batches of ``batch`` (a server-side cursor on PostgreSQL), with one query per batch for
    the loads and one for the periods, and each batch is yielded as it is written.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";")
    buffer.write("\ufeff")
    writer.writerow(EXPORT_HEADER)
    today = local_today()
    result = db.session.execute(stmt.execution_options(yield_per=batch))
    try:
        for profiles in result.scalars().partitions():
            loads = open_loads(p.user_id for p in profiles)
            periods = current_unavailability((p.id for p in profiles), today)
            for profile in profiles:
                user = profile.user
                writer.writerow(
                    [
                        _cell(user.full_name),
                        user.email,
                        _cell(profile.municipality.name),
                        _cell(profile.home_organization_name),
                        profile.home_organization_inn or "",
                        _cell(profile.position or ""),
                        ", ".join(DIRECTION_WORDS[d] for d in Direction if d in profile.directions),
                        _cell(profile.qualification),
                        profile.capacity,
                        loads.get(profile.user_id, 0),
                        STATUS_WORDS[expert_status(profile)],
                        ", ".join(_period_text(p) for p in periods.get(profile.id, ())),
                    ]
                )
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    finally:
        result.close()
    yield buffer.getvalue()


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
    if not inn:
        return None
    return db.session.execute(
        select(Organization).where(Organization.inn == inn)
    ).scalar_one_or_none()


def update_expert_profile(profile: ExpertProfile, actor: User, **fields: Any) -> dict:
    """Change the fields of :data:`PROFILE_FIELDS` given; returns ``{field: (before, after)}``.

    Keeps: at least one direction; a capacity within ``CAPACITY_MIN..CAPACITY_MAX``; a
    qualification and a home organization's name; a valid ИНН or none. The home
    organization is linked to the portal's organization with that ИНН when there is one
    (so the expert is never routed its programs) and unlinked otherwise. Audited as
    ``expert.update_profile`` when anything changed.
    """
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


def suspend_expert(profile: ExpertProfile, actor: User, reason: str) -> None:
    """Suspend an approved expert with a reason: they keep their history and open
    assignments (the coordinator reassigns those) but are not eligible for new ones.

    Audited as ``expert.suspend``; the expert is told in the portal and by e-mail.
    """
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
        "Your work as an expert has been suspended by the coordinator. Reason: %(reason)s",
        reason=reason,
    )
    notify(profile.user, str(message))
    queue_email(profile.user.email, str(_l("Your work as an expert is suspended")), str(message))


def reactivate_expert(profile: ExpertProfile, actor: User) -> None:
    """Lift a suspension: the expert is eligible again. Audited as ``expert.reactivate``."""
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
    notify(profile.user, str(message))
    queue_email(profile.user.email, str(_l("Your work as an expert is resumed")), str(message))


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
    """The header row of an experts file for Excel: BOM, ``;``, CRLF."""
    return "\ufeff" + ";".join(column.name for column in EXPERT_COLUMNS) + "\r\n"


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
