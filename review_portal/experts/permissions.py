"""Who may see the expert registry, manage experts, edit an expert profile and answer an
assignment: plain predicates of role, relation and state.

Experts' personal data (name, home organization) is for coordinators and administrators
only (docs/design/roles.md), so the registry and the expert's page are staff pages.
"""

from __future__ import annotations

from review_portal.assignment.permissions import can_respond_to_assignment
from review_portal.enums import AccountStatus, AssignmentStatus, Role
from review_portal.permissions import has_role, is_staff

_OPEN = (AssignmentStatus.OFFERED, AssignmentStatus.ACCEPTED)


def can_view_expert_registry(user) -> bool:
    return is_staff(user)


def can_manage_expert(user, profile=None) -> bool:
    """Suspend, reactivate, import: coordinators and administrators."""
    return is_staff(user)


def can_suspend_expert(user, profile) -> bool:
    return (
        can_manage_expert(user, profile)
        and profile.user.status == AccountStatus.APPROVED
        and not profile.suspended
    )


def can_reactivate_expert(user, profile) -> bool:
    return can_manage_expert(user, profile) and profile.suspended


def has_expert_profile(user) -> bool:
    """An approved expert with a profile (the navigation's "My profile")."""
    return has_role(user, Role.EXPERT) and user.expert_profile is not None


def can_edit_own_profile(user, profile) -> bool:
    """The expert themself, and nobody else (the staff read it in the registry)."""
    return has_role(user, Role.EXPERT) and profile is not None and profile.user_id == user.id


def can_accept_assignment(user, assignment) -> bool:
    return (
        can_respond_to_assignment(user, assignment)
        and assignment.status == AssignmentStatus.OFFERED
    )


def can_decline_assignment(user, assignment) -> bool:
    return can_respond_to_assignment(user, assignment) and assignment.status in _OPEN


#: Exposed to templates, so a button shows exactly when the action is allowed.
TEMPLATE_PREDICATES = {
    "can_view_expert_registry": can_view_expert_registry,
    "can_manage_expert": can_manage_expert,
    "can_suspend_expert": can_suspend_expert,
    "can_reactivate_expert": can_reactivate_expert,
    "can_edit_own_profile": can_edit_own_profile,
    "can_accept_assignment": can_accept_assignment,
    "can_decline_assignment": can_decline_assignment,
}
