"""Who may read and change an organization's profile, invite colleagues and transfer an ИНН.

A member reads their organization's pages; acting for it (editing the profile, inviting,
editing and submitting its programs) also needs the organization not to have lost its ИНН
to another registration (:func:`acts_for`).
"""

from __future__ import annotations

from review_portal.enums import Role
from review_portal.permissions import has_role, is_staff


def is_member(user, organization) -> bool:
    return has_role(user, Role.APPLICANT) and user.organization_id == organization.id


def acts_for(user, organization) -> bool:
    """A member who may act for the organization: not once the center has transferred its
    ИНН to another registration (its records stay readable to them)."""
    return is_member(user, organization) and organization.inn_lost_at is None


def can_view_organization(user, organization) -> bool:
    return is_staff(user) or is_member(user, organization)


def can_edit_organization(user, organization) -> bool:
    return acts_for(user, organization)


def can_invite_colleagues(user, organization) -> bool:
    return acts_for(user, organization)


def can_list_organizations(user) -> bool:
    return is_staff(user)


def can_transfer_inn(user) -> bool:
    """Take an ИНН from the organization that holds it for another registration: the
    center's decision (coordinators and administrators)."""
    return is_staff(user)
