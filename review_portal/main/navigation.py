"""The navigation bar: the links each user sees, by role, each guarded by the same predicate
as the page it opens."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Link:
    label: object
    endpoint: str


@dataclass(frozen=True)
class Group:
    """A drop-down menu of the bar: its label and the links the user may follow."""

    label: object
    links: tuple[Link, ...]

    @property
    def endpoints(self) -> frozenset[str]:
        return frozenset(link.endpoint for link in self.links)


#: The bar, in order: a link, or a group label and its links ``(label, endpoint, allowed)``.
MENU = (
    (_l("Coordinator"), "main.coordinator_home", is_staff),
    (
        _l("Expertise"),
        (
            (_l("Screening"), "screening.queue", can_view_screening_queue),
            (_l("Assignment"), "assigning.run", is_staff),
            (_l("Overdue"), "assignment.overdue", is_staff),
            (_l("Reconciliation"), "reconciliation.index", can_view_reconciliations),
            (_l("Decisions"), "reconciliation.decisions", can_view_reconciliations),
            (_l("Appeals"), "appeals.index", can_list_appeals),
        ),
    ),
    (
        _l("Programs and experts"),
        (
            (_l("Programs"), "programs.index", can_view_program_list),
            (_l("Organizations"), "organizations.index", is_staff),
            (_l("Experts"), "experts.registry", can_view_expert_registry),
            (_l("Rubrics"), "rubrics.index", is_staff),
            (_l("Import"), "imports.upload", can_import),
        ),
    ),
    (_l("Analytics"), "analytics.dashboard", can_view_analytics),
    (
        _l("Administration"),
        (
            (_l("Registrations"), "accounts.registrations", can_approve_registrations),
            (_l("Users"), "users.index", can_manage_users),
            (_l("Audit log"), "audit.events", can_view_audit),
            (_l("Jobs"), "jobs.index", is_staff),
            (_l("Settings"), "settings.index", can_manage_settings),
            # Only where the development mailbox's pages exist (see navigation_for).
            (_l("Mail (development)"), "devmail.index", can_read_dev_mail),
        ),
    ),
    (
        _l("Expert's work"),
        (
            (_l("My assignments"), "main.expert_home", lambda u: has_role(u, Role.EXPERT)),
            (_l("History"), "scoring.history", can_view_history),
            (_l("My profile"), "experts.own_profile", has_expert_profile),
        ),
    ),
    (_l("My organization"), "organizations.profile", lambda u: has_role(u, Role.APPLICANT)),
    (_l("Municipality"), "main.municipal_home", lambda u: has_role(u, Role.MUNICIPAL)),
)

#: Up to this many links the bar lists them all; with more (the center's staff: about 20)
#: it folds the groups into drop-down menus, so that the bar keeps to two rows at 1366 px.
FLAT_UP_TO = 7


def navigation_for(user) -> list[Link | Group]:
    """The links ``user`` may follow, of the pages this application has (the development
    mailbox exists in development only): a flat list of :class:`Link` for a user with few,
    else groups of two or more links as :class:`Group` (a group of one is its link)."""
    if not getattr(user, "is_authenticated", False):
        return []
    pages = current_app.view_functions

    def allowed(entries) -> list[Link]:
        return [
            Link(label, endpoint)
            for label, endpoint, predicate in entries
            if endpoint in pages and predicate(user)
        ]

    items: list[Link | Group] = []
    for label, *rest in MENU:
        if isinstance(rest[0], tuple):
            links = allowed(rest[0])
            if len(links) > 1:
                items.append(Group(label, tuple(links)))
            else:
                items.extend(links)
        else:
            items.extend(allowed([(label, *rest)]))
    if sum(len(i.links) if isinstance(i, Group) else 1 for i in items) <= FLAT_UP_TO:
        return [link for i in items for link in (i.links if isinstance(i, Group) else (i,))]
    return items
