"""The navigation bar: the links each user sees, by role, each guarded by the same predicate
as the page it opens."""

from __future__ import annotations

from flask import current_app
from flask_babel import lazy_gettext as _l

from review_portal.analytics.permissions import can_view_analytics
from review_portal.appeals.permissions import can_list_appeals
from review_portal.enums import Role
from review_portal.experts.permissions import can_view_expert_registry, has_expert_profile
from review_portal.notifications.permissions import can_read_dev_mail
from review_portal.permissions import (
    can_approve_registrations,
    can_manage_users,
    can_view_audit,
    has_role,
    is_staff,
)
from review_portal.programs.permissions import (
    can_import,
    can_view_program_list,
    can_view_screening_queue,
)
from review_portal.reconciliation.permissions import can_view_reconciliations
from review_portal.scoring.permissions import can_view_history
from review_portal.settings.permissions import can_manage_settings

LINKS = (
    (_l("Coordinator"), "main.coordinator_home", is_staff),
    (_l("Screening"), "screening.queue", can_view_screening_queue),
    (_l("Assignment"), "assigning.run", is_staff),
    (_l("Overdue"), "assignment.overdue", is_staff),
    (_l("Reconciliation"), "reconciliation.index", can_view_reconciliations),
    (_l("Decisions"), "reconciliation.decisions", can_view_reconciliations),
    (_l("Appeals"), "appeals.index", can_list_appeals),
    (_l("Programs"), "programs.index", can_view_program_list),
    (_l("Organizations"), "organizations.index", is_staff),
    (_l("Experts"), "experts.registry", can_view_expert_registry),
    (_l("Import"), "imports.upload", can_import),
    (_l("Rubrics"), "rubrics.index", is_staff),
    (_l("Registrations"), "accounts.registrations", can_approve_registrations),
    (_l("Analytics"), "analytics.dashboard", can_view_analytics),
    (_l("Audit log"), "audit.events", can_view_audit),
    (_l("Jobs"), "jobs.index", is_staff),
    (_l("Settings"), "settings.index", can_manage_settings),
    # Only where the development mailbox's pages exist (see navigation_for).
    (_l("Mail (development)"), "devmail.index", can_read_dev_mail),
    (_l("Users"), "users.index", can_manage_users),
    (_l("My assignments"), "main.expert_home", lambda u: has_role(u, Role.EXPERT)),
    (_l("History"), "scoring.history", can_view_history),
    (_l("My profile"), "experts.own_profile", has_expert_profile),
    (_l("My organization"), "organizations.profile", lambda u: has_role(u, Role.APPLICANT)),
    (_l("Municipality"), "main.municipal_home", lambda u: has_role(u, Role.MUNICIPAL)),
)


def navigation_for(user) -> list[tuple[object, str]]:
    """The links ``user`` may follow, of the pages this application has (the development
    mailbox exists in development only)."""
    if not getattr(user, "is_authenticated", False):
        return []
    pages = current_app.view_functions
    return [
        (label, endpoint)
        for label, endpoint, allowed in LINKS
        if endpoint in pages and allowed(user)
    ]
