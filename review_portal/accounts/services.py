"""Account operations: hashing, logging in, registration, approval, password change and
reset. Services flush and audit; the route commits. (The limits on logging in and the other
public forms are the routes' business: :mod:`review_portal.accounts.throttle`.)"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from review_portal.accounts.models import PasswordResetToken, User, normalize_email
from review_portal.audit.services import record_event
from review_portal.db import utcnow
from review_portal.enums import AccountStatus, Direction, NotificationKind, OrganizationType, Role
from review_portal.errors import DomainError
from review_portal.experts.models import ExpertProfile
from review_portal.extensions import db
from review_portal.i18n import in_language_of
from review_portal.notifications.services import notify, queue_email
from review_portal.organizations.models import Organization
from review_portal.organizations.queries import inn_holder
from review_portal.organizations.services import (
    OrganizationData,
    OrganizationError,
    create_organization,
    find_invitation,
    transfer_inn,
)
from review_portal.permissions import authorize, can_approve_registrations, can_manage_users
from review_portal.urls import public_url

if TYPE_CHECKING:
    from argon2 import PasswordHasher

#: Version of the consent text to the processing of personal data (152-ФЗ) shown at sign-up.
CONSENT_VERSION = "2026-1"

_hashers: dict[bool, PasswordHasher] = {}


class AccountError(DomainError):
    """An operation refused for a reason the user should read (already translated)."""


def _hasher() -> PasswordHasher:
    # Tests use cheap parameters; every other configuration the library's defaults (RFC 9106).
    from argon2 import PasswordHasher

    fast = bool(current_app.config.get("PASSWORD_HASH_FAST"))
    if fast not in _hashers:
        _hashers[fast] = (
            PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
            if fast
            else PasswordHasher()
        )
    return _hashers[fast]


#: ``[password, its hash or None until first needed]`` while :func:`published_password` holds.
_published: ContextVar[list | None] = ContextVar("published_password", default=None)


def hash_password(password: str) -> str:
    published = _published.get()
    if published is None or not secrets.compare_digest(published[0], password):
        return _hasher().hash(password)
    if published[1] is None:
        published[1] = _hasher().hash(password)
    return published[1]


@contextmanager
def published_password(password: str) -> Iterator[None]:
    """Within it, every account given ``password`` gets the same hash of it, computed once.

    Only for a password that is printed for everyone to read (the demo accounts'): a hash
    is slow on purpose (a third of a second) and salted so that a stolen table reveals no
    secret, and a published password has none to keep. The demo region and its season make
    about eighty accounts, half a minute of hashing on a first ``make run`` otherwise."""
    token = _published.set([password, None])
    try:
        yield
    finally:
        _published.reset(token)


def verify_password(user: User, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return _hasher().verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


#: Which home page a user lands on, by the first of their roles in this order.
HOME_BY_ROLE = (
    (Role.ADMIN, "main.coordinator_home"),
    (Role.COORDINATOR, "main.coordinator_home"),
    (Role.EXPERT, "main.expert_home"),
    (Role.APPLICANT, "main.provider_home"),
    (Role.MUNICIPAL, "main.municipal_home"),
)


def home_endpoint(user: User) -> str:
    """The endpoint of ``user``'s own home page."""
    if not user.is_approved:
        return "main.pending"
    for role, endpoint in HOME_BY_ROLE:
        if user.has_role(role):
            return endpoint
    return "main.pending"


def find_user_by_email(email: str) -> User | None:
    return db.session.execute(
        select(User).where(User.email == normalize_email(email))
    ).scalar_one_or_none()


def email_taken(email: str) -> bool:
    return find_user_by_email(email) is not None


def authenticate(email: str, password: str) -> User | None:
    """The user for these credentials, or ``None``.

    The caller shows one message for every failure, so nobody learns whether the e-mail
    exists; an unknown e-mail costs the same time as a wrong password. A disabled account
    fails like a wrong password.
    """
    email = normalize_email(email)
    user = find_user_by_email(email)
    if user is None:
        # Spend the same time as a real check, so timing does not reveal the account.
        _hasher().hash(password)
        ok = False
    else:
        ok = verify_password(user, password) and user.active
    if not ok:
        record_event(
            "account.login_failed",
            actor=None,
            object_type="user",
            object_id=user.id if user else None,
            after={"email": email},
        )
        return None
    if _hasher().check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    record_event("account.login", actor=user, object_type="user", object_id=user.id)
    return user


@dataclass
class NewUser:
    email: str
    password: str
    full_name: str
    phone: str | None = None


def _create_user(data: NewUser, role: Role, consent: bool) -> User:
    if email_taken(data.email):
        raise AccountError(_("An account with this e-mail already exists."))
    user = User(
        email=normalize_email(data.email),
        password_hash=hash_password(data.password),
        full_name=data.full_name.strip(),
        phone=data.phone,
        status=AccountStatus.PENDING,
        consent_at=utcnow() if consent else None,
        consent_version=CONSENT_VERSION if consent else None,
    )
    user.add_role(role)
    db.session.add(user)
    return user


def register_provider(
    user_data: NewUser,
    *,
    full_name: str,
    short_name: str,
    inn: str,
    ogrn: str | None,
    kind: OrganizationType,
    municipality_id: int,
    address: str | None,
    consent: bool,
) -> User:
    """Create a pending organization and its first, pending applicant user.

    The ИНН may be one another organization holds or claims: the registration is then a
    claim, which the coordinator decides on its approval page (:func:`approve_registration`).
    """
    if email_taken(user_data.email):
        raise AccountError(_("An account with this e-mail already exists."))
    try:
        organization = create_organization(
            OrganizationData(
                full_name=full_name.strip(),
                short_name=short_name.strip(),
                inn=inn,
                ogrn=ogrn or None,
                kind=OrganizationType(kind),
                municipality_id=municipality_id,
                address=address,
                email=normalize_email(user_data.email),
            ),
            actor=None,
        )
    except OrganizationError as error:
        raise AccountError(str(error)) from None
    user = _create_user(user_data, Role.APPLICANT, consent)
    user.organization_id = organization.id
    db.session.flush()
    record_event(
        "account.register_provider",
        actor=user,
        object_type="user",
        object_id=user.id,
        after={"organization_id": organization.id, "inn": inn, "email": user.email},
    )
    return user


def register_expert(
    user_data: NewUser,
    *,
    municipality_id: int,
    home_organization_name: str,
    home_organization_inn: str | None,
    position: str | None,
    directions: list[Direction],
    qualification: str,
    experience_years: int | None,
    capacity: int,
    consent: bool,
) -> User:
    """Create a pending expert user with their profile."""
    user = _create_user(user_data, Role.EXPERT, consent)
    home = inn_holder(home_organization_inn)
    profile = ExpertProfile(
        user=user,
        municipality_id=municipality_id,
        home_organization_id=home.id if home else None,
        home_organization_name=home_organization_name.strip(),
        home_organization_inn=home_organization_inn or None,
        position=position,
        qualification=qualification,
        experience_years=experience_years,
        capacity=capacity,
    )
    profile.set_directions(directions)
    db.session.add(profile)
    db.session.flush()
    record_event(
        "account.register_expert",
        actor=user,
        object_type="user",
        object_id=user.id,
        after={"email": user.email, "directions": sorted(d.value for d in profile.directions)},
    )
    return user


class InnHeld(AccountError):
    """The registration's ИНН is held by another approved organization, and the coordinator
    did not decide to transfer it."""

    status = 422


def _inn_held_error(holder: Organization | None) -> InnHeld:
    if holder is None:
        return InnHeld(
            _(
                "Another organization with this INN has just been approved. Reload the page "
                "and decide whether to transfer the INN to this registration."
            )
        )
    return InnHeld(
        _(
            "The INN %(inn)s is held by the approved organization %(name)s. This registration "
            "can be approved only by transferring the INN to it: the other organization then "
            "loses it."
        )
        % {"inn": holder.inn, "name": holder.short_name}
    )


def approve_registration(
    user: User, actor: User, *, transfer_inn_reason: str | None = None
) -> None:
    """Approve a pending self-registration (and the organization it registered).

    Refused without consent to the processing of personal data. One approved organization
    holds an ИНН: when another one holds the registration's ИНН, approval is refused
    (:class:`InnHeld`, nothing written) unless the coordinator decided to transfer the ИНН
    (``transfer_inn_reason``), which marks the other organization as having lost it
    (:func:`~review_portal.organizations.services.transfer_inn`); a transfer asked for an ИНН
    that nobody else holds is refused too. The database enforces the same rule (a partial
    unique index): a concurrent approval of the same ИНН is refused with the same error.
    """
    authorize(can_approve_registrations(actor))
    if user.status != AccountStatus.PENDING:
        raise AccountError(_("This registration has already been processed."))
    if user.consent_at is None:
        raise AccountError(
            _("The account cannot be approved: there is no consent to personal data processing.")
        )
    organization = user.organization
    approves_organization = (
        organization is not None and organization.status == AccountStatus.PENDING
    )
    holder = inn_holder(organization.inn) if approves_organization else None
    if transfer_inn_reason is not None:
        if holder is None:
            raise AccountError(
                _("No other approved organization holds this INN: approve the registration.")
            )
        try:
            transfer_inn(holder, organization, actor, transfer_inn_reason)
        except OrganizationError as error:
            raise AccountError(str(error)) from None
    elif holder is not None:
        raise _inn_held_error(holder)
    now = utcnow()
    user.status = AccountStatus.APPROVED
    user.approved_at = now
    user.approved_by_id = actor.id
    if approves_organization:
        organization.status = AccountStatus.APPROVED
        organization.approved_at = now
        try:
            with db.session.begin_nested():
                db.session.flush()
        except IntegrityError:
            # Another organization with this ИНН was approved since the check above.
            raise _inn_held_error(None) from None
        record_event(
            "organization.approve",
            actor=actor,
            object_type="organization",
            object_id=organization.id,
            before={"status": "pending"},
            after={"status": "approved"}
            | ({"inn_transferred_from": holder.id} if transfer_inn_reason is not None else {}),
        )
    record_event(
        "account.approve",
        actor=actor,
        object_type="user",
        object_id=user.id,
        before={"status": "pending"},
        after={"status": "approved"},
    )
    with in_language_of(user):
        queue_email(
            user,
            _("Your account on the program review portal is approved"),
            _("Your registration has been approved. You can now log in: %(url)s")
            % {"url": public_url("accounts.login")},
        )
        notify(user, _("Your registration has been approved."), kind=NotificationKind.ACCOUNT)


def reject_registration(user: User, actor: User, reason: str) -> None:
    """Reject a pending self-registration with a reason the user will read."""
    authorize(can_approve_registrations(actor))
    reason = (reason or "").strip()
    if not reason:
        raise AccountError(_("A reason is required for this action."))
    if user.status != AccountStatus.PENDING:
        raise AccountError(_("This registration has already been processed."))
    user.status = AccountStatus.REJECTED
    user.rejection_reason = reason
    organization = user.organization
    if organization is not None and organization.status == AccountStatus.PENDING:
        organization.status = AccountStatus.REJECTED
    record_event(
        "account.reject",
        actor=actor,
        object_type="user",
        object_id=user.id,
        before={"status": "pending"},
        after={"status": "rejected", "reason": reason},
    )
    with in_language_of(user):
        queue_email(
            user,
            _("Your registration on the program review portal"),
            _(
                "Your registration has been rejected. Reason: %(reason)s\n\n"
                "If you think this is a mistake, contact the regional model center."
            )
            % {"reason": reason},
        )


def change_password(user: User, current: str, new: str) -> None:
    if not verify_password(user, current):
        raise AccountError(_("The current password is wrong."))
    _set_password(user, new)
    record_event("account.change_password", actor=user, object_type="user", object_id=user.id)


def _set_password(user: User, new: str) -> None:
    user.password_hash = hash_password(new)
    user.password_changed_at = utcnow()
    end_sessions(user)


def end_sessions(user: User) -> None:
    """End every session and "remember me" cookie of ``user``: their identity carries the
    session version, which goes up here (in the database, so two at once both count)."""
    user.session_version = User.session_version + 1
    db.session.flush()


def log_out(user: User) -> None:
    """The user logs out: this browser's session and every other one of theirs ends (a
    copied session or remember cookie no longer opens anything)."""
    end_sessions(user)
    record_event("account.logout", actor=user, object_type="user", object_id=user.id)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def request_password_reset(email: str) -> None:
    """E-mail a single-use, expiring reset link when an active account has this e-mail.

    Does the same visible thing whether or not the account exists.
    """
    user = find_user_by_email(email)
    if user is None or not user.active:
        return
    hours = current_app.config["PASSWORD_RESET_HOURS"]
    url = public_url("accounts.reset_password", token=_new_reset_token(user, hours))
    record_event("account.request_reset", actor=None, object_type="user", object_id=user.id)
    with in_language_of(user):
        queue_email(
            user,
            _("Password reset on the program review portal"),
            _(
                "To set a new password, open this link within %(hours)s hours: %(url)s\n"
                "If you did not ask for it, ignore this message."
            )
            % {"hours": hours, "url": url},
        )


def _new_reset_token(user: User, hours: int) -> str:
    """A fresh single-use token for ``user``, valid ``hours``; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    db.session.add(
        PasswordResetToken(
            user_id=user.id,
            token_hash=_token_hash(token),
            created_at=now,
            expires_at=now + timedelta(hours=hours),
        )
    )
    return token


def find_reset_token(token: str) -> PasswordResetToken | None:
    """The token's record if it exists, is unused and has not expired."""
    row = db.session.execute(
        select(PasswordResetToken).where(PasswordResetToken.token_hash == _token_hash(token))
    ).scalar_one_or_none()
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        return None
    return row


def reset_password(token: str, new: str) -> User:
    """Set a new password with a reset token; the token (and every other) is used up."""
    row = find_reset_token(token)
    if row is None:
        raise AccountError(_("The reset link is invalid or has expired. Ask for a new one."))
    now = utcnow()
    # Using one link spends all the user's outstanding links.
    db.session.execute(
        update(PasswordResetToken)
        .where(PasswordResetToken.user_id == row.user_id, PasswordResetToken.used_at.is_(None))
        .values(used_at=now)
    )
    user = row.user
    _set_password(user, new)
    record_event("account.reset_password", actor=user, object_type="user", object_id=user.id)
    return user


def registrations_query(
    *,
    role: str | None = None,
    status: str | None = None,
    municipality_id: int | None = None,
    q: str | None = None,
):
    """Self-registered users (applicants and experts) matching the filters, newest first."""
    from sqlalchemy import func, or_
    from sqlalchemy.orm import selectinload

    from review_portal.accounts.models import UserRole

    municipality = func.coalesce(Organization.municipality_id, ExpertProfile.municipality_id)
    stmt = (
        select(User)
        .outerjoin(Organization, User.organization_id == Organization.id)
        .outerjoin(ExpertProfile, ExpertProfile.user_id == User.id)
        .where(
            User.id.in_(
                select(UserRole.user_id).where(UserRole.role.in_([Role.APPLICANT, Role.EXPERT]))
            )
        )
        .options(
            selectinload(User.organization).selectinload(Organization.municipality),
            selectinload(User.expert_profile).selectinload(ExpertProfile.municipality),
        )
        .order_by(User.created_at.desc(), User.id.desc())
    )
    if role:
        stmt = stmt.where(User.id.in_(select(UserRole.user_id).where(UserRole.role == Role(role))))
    if status:
        stmt = stmt.where(User.status == AccountStatus(status))
    if municipality_id:
        stmt = stmt.where(municipality == municipality_id)
    if q:
        # What the user typed is matched literally (``%`` and ``_`` are not wildcards), and
        # the case is folded on both sides by the database, so an exact-case Cyrillic search
        # matches on SQLite too (whose lower() folds ASCII only).
        stmt = stmt.where(
            or_(
                *(
                    column.icontains(q, autoescape=True)
                    for column in (
                        User.full_name,
                        User.email,
                        Organization.short_name,
                        Organization.full_name,
                        Organization.inn,
                        ExpertProfile.home_organization_name,
                    )
                )
            )
        )
    return stmt


#: The hash of an account that cannot log in with a password until its owner sets one
#: (argon2 refuses it as a hash, so every check fails).
UNUSABLE_PASSWORD = "!unusable"


def create_approved_user(
    email: str,
    password: str | None,
    full_name: str,
    roles: list[Role],
    *,
    actor: User | None = None,
    organization_id: int | None = None,
    municipality_id: int | None = None,
) -> User:
    """An account created by an operator (or the CLI): approved at once, with consent noted."""
    if email_taken(email):
        raise AccountError(_("An account with this e-mail already exists."))
    now = utcnow()
    user = User(
        email=normalize_email(email),
        password_hash=hash_password(password) if password else UNUSABLE_PASSWORD,
        full_name=full_name,
        status=AccountStatus.APPROVED,
        approved_at=now,
        approved_by_id=actor.id if actor else None,
        organization_id=organization_id,
        municipality_id=municipality_id,
        consent_at=now,
        consent_version=CONSENT_VERSION,
    )
    for role in roles:
        user.add_role(role)
    db.session.add(user)
    db.session.flush()
    record_event(
        "account.create",
        actor=actor,
        object_type="user",
        object_id=user.id,
        after={"email": user.email, "roles": sorted(r.value for r in roles)},
    )
    return user


#: How long the link that lets an operator-created user set a first password stays valid.
WELCOME_LINK_HOURS = 72


def create_user_by_admin(
    actor: User,
    *,
    email: str,
    full_name: str,
    roles: list[Role],
    municipality_id: int | None,
    organization_id: int | None,
) -> User:
    """Create an approved account for someone (a coordinator, a municipal viewer ...).

    The account gets an unusable random password and its owner an e-mail with a link to
    set their own. The consent to data processing is recorded as obtained by the operator
    (staff sign it on paper when their account is requested).
    """
    authorize(can_manage_users(actor))
    _check_role_relations(roles, municipality_id, organization_id)
    user = create_approved_user(
        email,
        None,
        full_name,
        roles,
        actor=actor,
        organization_id=organization_id,
        municipality_id=municipality_id,
    )
    send_welcome_link(user)
    return user


def _check_role_relations(
    roles: list[Role], municipality_id: int | None, organization_id: int | None
) -> None:
    if not roles:
        raise AccountError(_("Choose at least one role."))
    if Role.MUNICIPAL in roles and municipality_id is None:
        raise AccountError(_("A municipal viewer needs a municipality."))
    if Role.APPLICANT in roles and organization_id is None:
        raise AccountError(_("A provider user needs an organization."))


def update_user(
    user: User,
    actor: User,
    *,
    full_name: str,
    roles: list[Role],
    active: bool,
    municipality_id: int | None,
    organization_id: int | None,
) -> None:
    """Change a user's name, roles, active flag and relations; audited.

    An administrator cannot take the administrator role from themselves or switch their own
    account off, so the portal is never left without someone able to manage it.
    """
    authorize(can_manage_users(actor))
    _check_role_relations(roles, municipality_id, organization_id)
    if user.id == actor.id and (Role.ADMIN not in roles or not active):
        raise AccountError(
            _("You cannot remove your own administrator role or switch off your own account.")
        )
    before = _user_snapshot(user)
    user.full_name = full_name.strip()
    user.active = active
    user.municipality_id = municipality_id
    user.organization_id = organization_id
    for role in set(Role) - set(roles):
        user.remove_role(role)
    for role in roles:
        user.add_role(role)
    db.session.flush()
    after = _user_snapshot(user)
    if after["roles"] != before["roles"] or (before["active"] and not after["active"]):
        # The user's open sessions were opened for another account: they end.
        end_sessions(user)
    if after != before:
        record_event(
            "account.update",
            actor=actor,
            object_type="user",
            object_id=user.id,
            before=before,
            after=after,
        )


def _user_snapshot(user: User) -> dict:
    return {
        "full_name": user.full_name,
        "roles": sorted(r.value for r in user.roles),
        "active": user.active,
        "municipality_id": user.municipality_id,
        "organization_id": user.organization_id,
    }


def users_query(*, role: str | None = None, active: str | None = None, q: str | None = None):
    """All users for the administrator's list, filtered, by name."""
    from sqlalchemy import or_
    from sqlalchemy.orm import selectinload

    from review_portal.accounts.models import UserRole

    stmt = (
        select(User)
        .options(selectinload(User.organization), selectinload(User.municipality))
        .order_by(User.full_name, User.id)
    )
    if role:
        stmt = stmt.where(User.id.in_(select(UserRole.user_id).where(UserRole.role == Role(role))))
    if active in ("1", "0"):
        stmt = stmt.where(User.active.is_(active == "1"))
    if q:
        stmt = stmt.where(
            or_(
                User.full_name.icontains(q, autoescape=True),
                User.email.icontains(q, autoescape=True),
            )
        )
    return stmt


def register_invited_applicant(data: NewUser, organization: Organization, consent: bool) -> User:
    """An applicant invited by a colleague: approved at once, bound to the organization."""
    user = _create_user(data, Role.APPLICANT, consent)
    user.organization_id = organization.id
    user.status = AccountStatus.APPROVED
    user.approved_at = utcnow()
    db.session.flush()
    record_event(
        "account.accept_invitation",
        actor=user,
        object_type="user",
        object_id=user.id,
        after={"organization_id": organization.id, "email": user.email},
    )
    return user


def accept_invitation(token: str, *, full_name: str, password: str, consent: bool) -> User:
    """Create the invited colleague's account: an approved applicant of the organization.

    The inviting applicant vouches for them, so no coordinator approval is needed; the
    consent to data processing is still required and recorded.
    """
    invitation = find_invitation(token)
    if invitation is None:
        raise OrganizationError(_("The invitation is invalid, used or expired."))
    if not consent:
        raise OrganizationError(_("Consent is required to register."))
    user = register_invited_applicant(
        NewUser(invitation.email, password, full_name), invitation.organization, consent=consent
    )
    invitation.accepted_at = utcnow()
    db.session.flush()
    return user


def send_welcome_link(user: User) -> None:
    """E-mail ``user`` a single-use link to set their first password, valid
    :data:`WELCOME_LINK_HOURS` (for accounts an operator or an import created)."""
    url = public_url("accounts.reset_password", token=_new_reset_token(user, WELCOME_LINK_HOURS))
    with in_language_of(user):
        queue_email(
            user,
            _("Your account on the program review portal"),
            _(
                "An account has been created for you on the program review portal.\n"
                "To set your password, open this link within %(hours)s hours: %(url)s"
            )
            % {"hours": WELCOME_LINK_HOURS, "url": url},
        )
