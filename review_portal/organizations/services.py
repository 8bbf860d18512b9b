"""Operations on provider organizations (creating one, its profile, invitations, the
transfer of an ИНН) and look-ups of municipalities.

Services flush and write the audit record; the caller commits.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import asdict, dataclass
from datetime import timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from review_portal.accounts.models import User, normalize_email
from review_portal.audit.services import apply_audited_changes, record_event
from review_portal.db import utcnow
from review_portal.enums import AccountStatus, NotificationKind, OrganizationType, Role
from review_portal.errors import DomainError
from review_portal.extensions import db
from review_portal.i18n import in_language_of
from review_portal.organizations.models import Invitation, Municipality, Organization
from review_portal.organizations.permissions import (
    can_edit_organization,
    can_invite_colleagues,
    can_transfer_inn,
)
from review_portal.organizations.queries import LIVE_STATUSES, inn_holder, others_with_inn
from review_portal.organizations.validators import is_valid_inn, is_valid_ogrn
from review_portal.permissions import authorize


class OrganizationError(DomainError):
    """An organization operation refused for a reason the user should read."""


def municipality_choices() -> list[tuple[int, str]]:
    rows = db.session.execute(
        select(Municipality.id, Municipality.name).order_by(Municipality.name)
    )
    return [(row.id, row.name) for row in rows]


def approved_organization_choices() -> list[tuple[int, str]]:
    """Approved organizations as ``(id, "short name (ИНН)")``, by name (one query)."""
    rows = db.session.execute(
        select(Organization.id, Organization.short_name, Organization.inn)
        .where(Organization.status == AccountStatus.APPROVED)
        .order_by(Organization.short_name, Organization.id)
    )
    return [(row.id, f"{row.short_name} ({row.inn})") for row in rows]


@dataclass
class OrganizationData:
    """The organization's profile as entered (validated by the form or the importer)."""

    full_name: str
    short_name: str
    inn: str
    kind: OrganizationType
    municipality_id: int
    ogrn: str | None = None
    address: str | None = None
    phone: str | None = None
    email: str | None = None
    website: str | None = None


def registration_number_errors(kind: OrganizationType, inn: str, ogrn: str | None) -> dict:
    """Field errors of an ИНН and ОГРН/ОГРНИП for a provider of ``kind`` (empty when valid).

    An individual entrepreneur has a 12-digit ИНН and a 15-digit ОГРНИП; an organization a
    10-digit ИНН and a 13-digit ОГРН; both are checked by their control digits. The messages
    are lazy: an import job keeps them, to be read in the reader's language.
    """
    entrepreneur = OrganizationType(kind) == OrganizationType.INDIVIDUAL_ENTREPRENEUR
    errors: dict = {}
    inn_length, ogrn_length = (12, 15) if entrepreneur else (10, 13)
    if not (inn.isascii() and inn.isdigit()) or len(inn) != inn_length:
        errors["inn"] = _l(
            "The INN must have %(n)s digits for this type of provider.", n=inn_length
        )
    elif not is_valid_inn(inn):
        errors["inn"] = _l("The INN control digits do not match: check the number.")
    if ogrn:
        if not (ogrn.isascii() and ogrn.isdigit()) or len(ogrn) != ogrn_length:
            errors["ogrn"] = _l(
                "The OGRN must have %(n)s digits for this type of provider.", n=ogrn_length
            )
        elif not is_valid_ogrn(ogrn):
            errors["ogrn"] = _l("The OGRN control digit does not match: check the number.")
    return errors


def find_organization_by_inn(inn: str) -> Organization | None:
    """The organization that holds ``inn`` (the approved one), if any."""
    return inn_holder(inn)


def create_organization(
    data: OrganizationData, actor, status: AccountStatus = AccountStatus.PENDING
) -> Organization:
    """Create a provider organization.

    A pending one (a registration) may name an ИНН that another organization holds or
    claims: it is a claim the coordinator decides, and the audit record names the others.
    An approved one (an import) may not name an ИНН an approved organization holds.
    """
    if status == AccountStatus.APPROVED and inn_holder(data.inn) is not None:
        raise OrganizationError(_("An organization with this INN is already registered."))
    organization = Organization(**asdict(data), status=status)
    organization.kind = OrganizationType(data.kind)
    if status == AccountStatus.APPROVED:
        organization.approved_at = utcnow()
    db.session.add(organization)
    db.session.flush()
    after = {**asdict(data), "status": status}
    rivals = [o.id for o in others_with_inn(organization) if o.status in LIVE_STATUSES]
    if rivals:
        after["inn_also_named_by"] = rivals
    record_event(
        "organization.create",
        actor=actor,
        object_type="organization",
        object_id=organization.id,
        after=after,
    )
    return organization


def transfer_inn(holder: Organization, successor: Organization, actor, reason: str) -> None:
    """The center takes the ИНН from ``holder`` (the approved organization holding it) for
    ``successor`` (a registration naming the same ИНН, which the caller approves next).

    The holder's status becomes ``rejected`` and it is marked as having lost the ИНН (when,
    why, to whom): it no longer holds it, so ``successor`` can be approved. Nothing of it
    is deleted: its users keep their accounts and read its programs, results and
    conclusions, but no longer act for it (:func:`~.permissions.acts_for`); each of its
    approved applicants is told by e-mail and in the portal. Audited as
    ``organization.inn_transfer``; a reason is required.
    """
    from review_portal.notifications.services import tell

    authorize(can_transfer_inn(actor))
    reason = (reason or "").strip()
    if not reason:
        raise OrganizationError(_("A reason is required for this action."))
    if (
        holder.id == successor.id
        or holder.inn != successor.inn
        or holder.status != AccountStatus.APPROVED
    ):
        raise OrganizationError(_("This organization does not hold the INN of the registration."))
    holder.status = AccountStatus.REJECTED
    holder.inn_lost_at = utcnow()
    holder.inn_lost_reason = reason
    holder.inn_lost_to_id = successor.id
    db.session.flush()
    record_event(
        "organization.inn_transfer",
        actor=actor,
        object_type="organization",
        object_id=holder.id,
        before={"status": "approved"},
        after={
            "status": "rejected",
            "inn": holder.inn,
            "inn_lost_to_id": successor.id,
            "reason": reason,
        },
    )
    for user in colleagues(holder):
        if user.is_approved and user.has_role(Role.APPLICANT):
            with in_language_of(user):
                message = _(
                    "The regional model center has transferred the INN %(inn)s of "
                    "%(organization)s to another registration. Reason: %(reason)s\n"
                    "You can no longer act for this organization on the portal; its programs "
                    "and conclusions are kept. If you think this is a mistake, contact the "
                    "regional model center."
                ) % {"inn": holder.inn, "organization": holder.short_name, "reason": reason}
                tell(
                    user,
                    NotificationKind.ACCOUNT,
                    message,
                    subject=_("Your organization on the program review portal"),
                )


#: Fields a provider may change in their organization's profile; the ИНН and the type
#: identify the legal entity and are not among them.
PROFILE_FIELDS = (
    "full_name",
    "short_name",
    "ogrn",
    "municipality_id",
    "address",
    "phone",
    "email",
    "website",
)


def update_organization_profile(organization: Organization, actor, **data) -> dict:
    """Change the profile; returns ``{field: (before, after)}``, audited."""
    authorize(can_edit_organization(actor, organization))
    unknown = set(data) - set(PROFILE_FIELDS)
    if unknown:
        raise TypeError(f"not profile fields: {', '.join(sorted(unknown))}")
    errors = registration_number_errors(organization.kind, organization.inn, data.get("ogrn"))
    if "ogrn" in errors:
        raise OrganizationError(errors["ogrn"])
    return apply_audited_changes(
        organization, data, action="organization.update", actor=actor, object_type="organization"
    )


INVITATION_DAYS = 7


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invite_colleague(organization: Organization, actor, email: str) -> Invitation:
    """E-mail a colleague a single-use link (valid 7 days) to join the organization."""
    from review_portal.notifications.services import queue_email
    from review_portal.urls import public_url

    authorize(can_invite_colleagues(actor, organization))
    email = normalize_email(email)
    if organization.status != AccountStatus.APPROVED:
        raise OrganizationError(_("Colleagues can be invited once the organization is approved."))
    if db.session.scalar(select(User.id).where(User.email == email)) is not None:
        raise OrganizationError(_("An account with this e-mail already exists."))
    token = secrets.token_urlsafe(32)
    now = utcnow()
    invitation = Invitation(
        organization_id=organization.id,
        email=email,
        token_hash=_token_hash(token),
        invited_by_id=actor.id,
        created_at=now,
        expires_at=now + timedelta(days=INVITATION_DAYS),
    )
    db.session.add(invitation)
    db.session.flush()
    record_event(
        "organization.invite",
        actor=actor,
        object_type="organization",
        object_id=organization.id,
        after={"email": email, "invitation_id": invitation.id},
    )
    # No account yet, so no language of theirs: the portal's default one.
    with in_language_of(None):
        queue_email(
            email,
            _("Invitation to the program review portal"),
            _(
                "%(name)s invites you to join %(organization)s on the program review portal.\n"
                "To create your account, open this link within %(days)s days: %(url)s"
            )
            % {
                "name": actor.full_name,
                "organization": organization.short_name,
                "days": INVITATION_DAYS,
                "url": public_url("accounts.accept_invitation", token=token),
            },
        )
    return invitation


def find_invitation(token: str) -> Invitation | None:
    """The invitation of this token if it is unused and has not expired."""
    invitation = db.session.execute(
        select(Invitation).where(Invitation.token_hash == _token_hash(token))
    ).scalar_one_or_none()
    if invitation is None or invitation.accepted_at is not None:
        return None
    # An organization no longer approved (its ИНН transferred to another registration)
    # takes no new members.
    if invitation.organization.status != AccountStatus.APPROVED:
        return None
    if invitation.expires_at <= utcnow():
        return None
    return invitation


def colleagues(organization: Organization):
    return (
        db.session.execute(
            select(User).where(User.organization_id == organization.id).order_by(User.full_name)
        )
        .scalars()
        .all()
    )


def pending_invitations(organization: Organization) -> list[Invitation]:
    return list(
        db.session.execute(
            select(Invitation)
            .where(
                Invitation.organization_id == organization.id,
                Invitation.accepted_at.is_(None),
                Invitation.expires_at > utcnow(),
            )
            .order_by(Invitation.created_at.desc())
        ).scalars()
    )
