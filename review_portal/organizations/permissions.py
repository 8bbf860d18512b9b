"""Who may read and change an organization's profile and invite colleagues."""

from __future__ import annotations

from review_portal.enums import Role
from review_portal.permissions import has_role, is_staff


def is_member(user, organization) -> bool:
    return has_role(user, Role.APPLICANT) and user.organization_id == organization.id


def can_view_organization(user, organization) -> bool:
    return is_staff(user) or is_member(user, organization)


def can_edit_organization(user, organization) -> bool:
    return is_member(user, organization)


def can_invite_colleagues(user, organization) -> bool:
    return is_member(user, organization)


def can_list_organizations(user) -> bool:
    return is_staff(user)
