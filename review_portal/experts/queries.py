"""Reading the experts: their status, open load and unavailability, the staff's registry
of experts with its filters, a profile and an expert's assignment history, and the words
the registry's CSV export uses. Nothing here writes; the changes, the bulk import and the
CSV export (it shares the import's columns) are in :mod:`review_portal.experts.services`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select
from sqlalchemy.orm import contains_eager, selectinload

from review_portal.accounts.models import User, UserRole
from review_portal.assignment.models import Assignment
from review_portal.assignment.services import OPEN_STATUSES, local_today
from review_portal.enums import AccountStatus, Direction, LabelledEnum, Role
from review_portal.experts.models import ExpertDirection, ExpertProfile, ExpertUnavailability
from review_portal.extensions import db
from review_portal.imports.services import (
    DIRECTIONS,
    chunks,
    normalize,
)

if TYPE_CHECKING:
    from sqlalchemy.sql import Select

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


def assignment_history(
    user_id: int, hidden_review_ids: list[int] | tuple[int, ...] = ()
) -> list[tuple[Assignment, Any]]:
    """Every assignment of the expert, newest first, with its program (one query), except
    on ``hidden_review_ids`` (the reviews on which the viewer holds an open seat:
    :func:`~review_portal.permissions.open_seat_review_ids`)."""
    from review_portal.programs.models import Program
    from review_portal.reviews.models import Review

    return list(
        db.session.execute(
            select(Assignment, Program)
            .join(Review, Assignment.review_id == Review.id)
            .join(Program, Review.program_id == Program.id)
            .where(Assignment.expert_id == user_id)
            .where(Assignment.review_id.not_in(list(hidden_review_ids)))
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
