"""Shared permission helpers: role predicates, ``authorize`` for services and ``ensure`` for
routes.

Each domain keeps its own ``can_*`` predicates in its ``permissions.py``; they are plain
functions of the user's role, their relation to the object and the object's state. A service
that changes something calls ``authorize(can_x(actor, obj))`` itself, so every path (page,
JSON, bulk, job, CLI, ``simulate``) meets the same rule; a route's ``ensure(...)`` is only the
early answer.

Roles never widen relations. A user may hold several roles; a user who sits on a review as
an expert (:func:`sits_on`: an offered, accepted or submitted assignment) is, for that
review, an expert and nothing more: before their own sheet is submitted, no staff reading of
the other sheets or the experts' names; at any time, no screening, assigning, resolving,
deciding, issuing, revoking, excluding or reopening on it (:func:`is_staff_on`,
:func:`authorize_staff_on`; ``workflow.actor_kinds`` applies the same rule to every
transition). Staff rights apply to every other review. The staff's lists, logs, exports,
digests and figures leave out, for each viewer, what concerns the reviews on which the
viewer holds an open seat (:func:`open_seat_review_ids`: one query, then a ``NOT IN``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

import sqlalchemy as sa
from flask import abort
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from review_portal.enums import AssignmentStatus, Role
from review_portal.errors import Forbidden
from review_portal.extensions import db

#: Assignments that seat an expert on a review: offered, accepted or submitted.
SEATED_STATUSES = (AssignmentStatus.OFFERED, AssignmentStatus.ACCEPTED, AssignmentStatus.COMPLETED)
#: Seated and not yet submitted.
OPEN_SEAT_STATUSES = (AssignmentStatus.OFFERED, AssignmentStatus.ACCEPTED)


def seat_review_ids(user, statuses, among=None) -> list[int]:
    """The reviews on which ``user`` holds an assignment in one of ``statuses`` (of the
    reviews ``among``, when given), in id order: one query, read afresh (a relationship
    loaded earlier in the session could miss a new assignment). ``None`` (the portal
    itself) and the anonymous user hold none."""
    if user is None or getattr(user, "id", None) is None or among is not None and not among:
        return []
    # Imported here: this module is imported by the models' own modules.
    from review_portal.assignment.models import Assignment

    stmt = sa.select(Assignment.review_id).where(
        Assignment.expert_id == user.id, Assignment.status.in_(statuses)
    )
    if among is not None:
        stmt = stmt.where(Assignment.review_id.in_(among))
    return list(db.session.execute(stmt.distinct().order_by(Assignment.review_id)).scalars())


def holds_assignment(user, review, statuses) -> bool:
    """``user`` has an assignment on ``review`` in one of ``statuses``."""
    return review.id is not None and bool(seat_review_ids(user, statuses, [review.id]))


#: The appeals' table as the seat rule reads it (this module sits below every package).
_APPEALS = sa.table("appeals", sa.column("review_id"), sa.column("panel_review_id"))


def sits_on(user, review, *, open_only: bool = False) -> bool:
    """``user`` sits on ``review`` as an expert (``open_only``: and has not submitted yet).

    The one rule of roles and relations: for a review they sit on, a user is an expert and
    nothing more, whatever other roles they hold — no staff reading of the other sheets or
    the experts' names before their own sheet is submitted (``open_only``), and no
    screening, assigning, resolving, deciding, issuing, revoking or reopening at any time.

    An appeal ties two reviews: whoever sat on the appealed review sits, for this rule, on
    its appeal panel's review too, and the other way round (one query either way)."""
    if user is None or getattr(user, "id", None) is None or review.id is None:
        return False
    from review_portal.assignment.models import Assignment

    related = sa.union(
        sa.select(_APPEALS.c.panel_review_id).where(
            _APPEALS.c.review_id == review.id, _APPEALS.c.panel_review_id.is_not(None)
        ),
        sa.select(_APPEALS.c.review_id).where(_APPEALS.c.panel_review_id == review.id),
    ).subquery()
    own = OPEN_SEAT_STATUSES if open_only else SEATED_STATUSES
    stmt = sa.select(Assignment.id).where(
        Assignment.expert_id == user.id,
        sa.or_(
            sa.and_(Assignment.review_id == review.id, Assignment.status.in_(own)),
            sa.and_(
                Assignment.review_id.in_(sa.select(related.c[0])),
                Assignment.status.in_(SEATED_STATUSES),
            ),
        ),
    )
    return db.session.execute(stmt.limit(1)).first() is not None


def open_seat_review_ids(user) -> list[int]:
    """The reviews on which ``user`` holds an open seat (offered or accepted, not yet
    submitted), in one query: what every staff list, log, export, digest and figure leaves
    out for them (``NOT IN`` these ids), so the list keeps its fixed number of statements.

    It lives here, beside :func:`sits_on`, and not in ``assignment.queries``: the audit log
    filters by it, and the audit package sits below ``assignment`` (which writes audit
    records), so it may read the assignments' table but not that package."""
    return seat_review_ids(user, OPEN_SEAT_STATUSES)


def seated_reviews(actor, review_ids) -> set[int]:
    """The reviews of ``review_ids`` on which ``actor`` sits as an expert (one query)."""
    return set(seat_review_ids(actor, SEATED_STATUSES, review_ids))


def is_approved(user) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and user.is_approved


def has_role(user, *roles: Role) -> bool:
    return is_approved(user) and user.has_role(*roles)


def is_staff(user) -> bool:
    """Coordinators and administrators of the center."""
    return has_role(user, Role.COORDINATOR, Role.ADMIN)


def is_admin(user) -> bool:
    return has_role(user, Role.ADMIN)


#: Why a member of the staff is refused a staff action on a review they sit on as an expert.
EXPERT_ON_REVIEW = _l(
    "You are an expert on this review: you cannot act on it as a coordinator "
    "(screen, assign, resolve, decide, issue, revoke or reopen)."
)


def is_staff_on(user, review) -> bool:
    """Staff rights on ``review``: coordinators and administrators who do not sit on it as
    an expert (:func:`sits_on`: a role never widens a relation)."""
    return is_staff(user) and not sits_on(user, review)


def authorize_staff_on(user, review) -> None:
    """In a service acting on ``review`` as the staff: raise
    :class:`~review_portal.errors.Forbidden`, naming the relation when that is the reason."""
    authorize(is_staff(user))
    authorize(not sits_on(user, review), EXPERT_ON_REVIEW)


def can_manage_users(user) -> bool:
    return is_admin(user)


def can_view_audit(user) -> bool:
    return is_staff(user)


def can_approve_registrations(user) -> bool:
    return is_staff(user)


def authorize(allowed: bool, message=None) -> None:
    """In a service: raise :class:`~review_portal.errors.Forbidden` unless ``allowed``."""
    if not allowed:
        raise Forbidden(message or _l("You do not have permission to do this."))


def ensure(allowed: bool) -> None:
    """Abort with 403 unless ``allowed``."""
    if not allowed:
        abort(403)


def requires(predicate: Callable[[object], bool]):
    """Route decorator: anonymous users go to the login page, others need ``predicate``."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            from review_portal.extensions import login_manager

            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            ensure(predicate(current_user))
            return view(*args, **kwargs)

        return wrapped

    return decorator


#: Predicates available in every template, so a button shows exactly when it is allowed.
TEMPLATE_PREDICATES = {
    "is_staff": is_staff,
    "is_admin": is_admin,
    "has_role": has_role,
    "is_staff_on": is_staff_on,
    "can_view_audit": can_view_audit,
    "can_manage_users": can_manage_users,
    "can_approve_registrations": can_approve_registrations,
}
