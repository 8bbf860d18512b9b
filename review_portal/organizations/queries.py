"""Reads about ИНН claims: which organization holds an ИНН and which others name it.

An approved organization holds its ИНН (at most one per ИНН, enforced by the database);
pending registrations naming the same ИНН are claims the coordinator decides, rejected ones
are history.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import case, select

from review_portal.accounts.models import User
from review_portal.enums import AccountStatus
from review_portal.extensions import db
from review_portal.organizations.models import Organization

#: Organizations whose ИНН claim is live: the holder and the pending registrations.
LIVE_STATUSES = (AccountStatus.APPROVED, AccountStatus.PENDING)

#: Holders first, then pending claims, then rejected registrations; oldest first.
_CLAIM_ORDER = (
    case(
        (Organization.status == AccountStatus.APPROVED, 0),
        (Organization.status == AccountStatus.PENDING, 1),
        else_=2,
    ),
    Organization.created_at,
    Organization.id,
)


def inn_holder(inn: str | None) -> Organization | None:
    """The approved organization that holds ``inn``, if any."""
    if not inn:
        return None
    return db.session.execute(
        select(Organization).where(
            Organization.inn == inn.strip(), Organization.status == AccountStatus.APPROVED
        )
    ).scalar_one_or_none()


def others_with_inn(organization: Organization) -> list[Organization]:
    """Every other organization naming ``organization``'s ИНН, whatever its status: the
    holder first, then pending claims, then rejected ones."""
    return list(
        db.session.execute(
            select(Organization)
            .where(Organization.inn == organization.inn, Organization.id != organization.id)
            .order_by(*_CLAIM_ORDER)
        ).scalars()
    )


def has_rival_claims(organization: Organization) -> bool:
    """Another organization holds or claims (pending) ``organization``'s ИНН."""
    return (
        db.session.execute(
            select(Organization.id)
            .where(
                Organization.inn == organization.inn,
                Organization.id != organization.id,
                Organization.status.in_(LIVE_STATUSES),
            )
            .limit(1)
        ).first()
        is not None
    )


def live_rivals(organizations: Iterable[Organization]) -> dict[int, list[Organization]]:
    """For each of ``organizations`` (by id), the other organizations that hold or claim
    its ИНН (approved or pending), holder first; in one query, for a list page."""
    organizations = [o for o in organizations if o is not None]
    inns = sorted({o.inn for o in organizations})
    if not inns:
        return {}
    by_inn: dict[str, list[Organization]] = defaultdict(list)
    for other in db.session.execute(
        select(Organization)
        .where(Organization.inn.in_(inns), Organization.status.in_(LIVE_STATUSES))
        .order_by(*_CLAIM_ORDER)
    ).scalars():
        by_inn[other.inn].append(other)
    return {
        o.id: [other for other in by_inn[o.inn] if other.id != o.id]
        for o in organizations
        if any(other.id != o.id for other in by_inn[o.inn])
    }


def users_of(organizations: Iterable[Organization]) -> dict[int, list[User]]:
    """The users of each of ``organizations`` (by id), by name, in one query."""
    ids = sorted({o.id for o in organizations})
    users: dict[int, list[User]] = defaultdict(list)
    if ids:
        for user in db.session.execute(
            select(User).where(User.organization_id.in_(ids)).order_by(User.full_name, User.id)
        ).scalars():
            users[user.organization_id].append(user)
    return users
