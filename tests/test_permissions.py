"""The permission matrix: every route of the application, for every kind of actor.

A route missing from ``MATRIX`` fails ``test_every_route_is_in_the_matrix``; every later
feature adds its rows. The object of object-bound routes belongs to "the owning
organization": ``applicant_own`` is its applicant, ``applicant_other`` one of another.

Two actors hold two roles, coordinator and expert: ``dual_on`` sits as an expert (an open
seat) on every review the routes are asked about, ``dual_other`` on another review only.
A role never widens a relation: ``dual_other`` may do what a coordinator or an expert may;
``dual_on`` the same, except the staff's actions and readings on the reviews they sit on
(``SEATED_DENY``), which are refused.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date

import pytest
from flask import current_app
from sqlalchemy import select

from review_portal.assignment.models import Assignment
from review_portal.conclusions.models import Conclusion
from review_portal.enums import (
    AccountStatus,
    AssignmentStatus,
    Direction,
    NotificationKind,
    RegistryKind,
    Role,
    SheetStatus,
)
from review_portal.experts.models import ExpertUnavailability
from review_portal.extensions import db
from review_portal.jobs.models import Job
from review_portal.notifications.devmail import list_messages
from review_portal.notifications.services import deliver_outbox, notify, queue_email
from review_portal.programs.services import submit_program
from review_portal.registry.models import RegistrySnapshotItem
from review_portal.registry.queries import fingerprint, pending_changes
from review_portal.registry.services import publish_registry
from review_portal.reviews.services import decide_review
from review_portal.scoring.models import ScoreSheet
from review_portal.settings.services import set_setting
from tests.conftest import make_app
from tests.factories import (
    AdminFactory,
    ApplicantFactory,
    CoordinatorFactory,
    ExpertUserFactory,
    MunicipalViewerFactory,
    OrganizationFactory,
    ProgramFactory,
    admitted_program,
    attach_document,
    program_in_review,
    scored_review,
    with_total,
)

ACTORS = (
    "anonymous",
    "applicant_own",
    "applicant_other",
    "expert",
    "municipal",
    "coordinator",
    "admin",
    "dual_on",
    "dual_other",
)

OK, DENY, LOGIN = "ok", "deny", "login"


def published_number(w) -> str:
    """The registry number of an entry of the world's publication."""
    return db.session.execute(
        select(RegistrySnapshotItem.registry_number)
        .where(RegistrySnapshotItem.snapshot_id == w.published.id)
        .limit(1)
    ).scalar_one()


@dataclass
class World:
    """The objects routes are asked about, and one user per actor."""

    organization: object
    pending_user: object
    #: A draft of the owning organization, with its program document.
    draft: object
    #: A submitted program of the owning organization (version 1 exists).
    submitted: object
    #: A program of the owning organization under review, with one offered assignment
    #: (of an expert who is not among the actors).
    in_review: object
    assignment: object
    #: A period of unavailability of the actor "expert".
    unavailability: object
    users: dict
    #: Objects made only when a case asks for them (``reconciling``, ``awaiting``,
    #: ``decided``, ``admitted``, ``published``): scoring and deciding cost time in every one of the many cases.
    lazy: dict = field(default_factory=dict)

    def __getattr__(self, name):
        builders = self.__dict__.get("lazy", {})
        if name not in builders:
            raise AttributeError(name)
        value = builders[name]()
        db.session.flush()
        setattr(self, name, value)
        return value


@dataclass(frozen=True)
class Case:
    url: Callable[[World], str]
    expect: dict
    data: Callable[[World], dict] | None = None


def everyone(outcome=OK) -> dict:
    return dict.fromkeys(ACTORS, outcome)


#: Routes on a review that a coordinator who sits on it as an expert may not use: the
#: staff's pages of that review and every staff action on it.
SEATED_DENY = {
    ("assigning.review_experts", "GET"),
    ("assigning.assign", "POST"),
    ("assigning.remove", "POST"),
    ("scoring.sheet", "GET"),
    ("scoring.reopen", "POST"),
    ("reconciliation.review", "GET"),
    ("reconciliation.resolve", "POST"),
    ("reconciliation.decision", "GET"),
    ("reconciliation.decide", "POST"),
    ("conclusions.revoke", "POST"),
    ("registry.exclude", "GET"),
    ("registry.exclude", "POST"),
    # An appeal against a review they sit on (the world's appeal: dual_on sits on the
    # appealed review).
    ("appeals.show", "GET"),
    ("appeals.accept", "POST"),
    ("appeals.refuse", "POST"),
    ("appeals.decide", "POST"),
    ("appeals.file", "GET"),
    ("appeals.pdf", "GET"),
}


#: Routes on the actor "expert"'s own objects: the dual-role actors are other people there.
EXPERTS_OWN = {("experts.delete_unavailability", "POST")}
#: Routes on the actor "coordinator"'s own upload (a mapping page's token): the other staff
#: find nothing there.
UPLOADERS_OWN = {("imports.mapping", "GET"), ("imports.mapping", "POST")}


def with_dual_roles(key, expect: dict) -> dict:
    """The dual-role actors' outcomes, from the coordinator's and the expert's."""
    as_expert = DENY if key in EXPERTS_OWN else expect["expert"]
    either = OK if OK in (expect["coordinator"], as_expert) else expect["coordinator"]
    expect["dual_other"] = either
    expect["dual_on"] = DENY if key in SEATED_DENY else either
    if key in UPLOADERS_OWN:
        expect["dual_other"] = expect["dual_on"] = "not found"
    return expect


def only(*allowed: str) -> dict:
    """Allowed for ``allowed``; anonymous goes to the login page; others are refused."""
    expect = dict.fromkeys(ACTORS, DENY)
    expect["anonymous"] = LOGIN
    expect.update(dict.fromkeys(allowed, OK))
    return expect


def logged_in() -> dict:
    return {**everyone(OK), "anonymous": LOGIN}


STAFF = only("coordinator", "admin")
APPLICANTS = only("applicant_own", "applicant_other")
OWN = only("applicant_own")
#: Who may read a program: its provider, the center and the municipal viewer of its
#: municipality (the world's viewer is of that municipality).
READERS = only("applicant_own", "municipal", "coordinator", "admin")

MATRIX: dict[tuple[str, str], Case] = {
    # frame
    ("main.index", "GET"): Case(lambda w: "/", everyone()),
    ("main.home", "GET"): Case(lambda w: "/home", logged_in()),
    ("main.healthz", "GET"): Case(lambda w: "/healthz", everyone()),
    ("main.pending", "GET"): Case(lambda w: "/pending", logged_in()),
    ("main.coordinator_home", "GET"): Case(lambda w: "/coordinator", STAFF),
    ("main.provider_home", "GET"): Case(lambda w: "/provider", APPLICANTS),
    ("main.expert_home", "GET"): Case(lambda w: "/expert", only("expert")),
    ("main.municipal_home", "GET"): Case(lambda w: "/municipal", only("municipal")),
    ("main.set_language", "POST"): Case(
        lambda w: "/language", everyone(), data=lambda w: {"language": "en"}
    ),
    ("static", "GET"): Case(lambda w: "/static/css/portal.css", everyone()),
    ("bootstrap.static", "GET"): Case(
        lambda w: "/bootstrap/static/css/bootstrap.min.css", everyone()
    ),
    # accounts
    ("accounts.login", "GET"): Case(lambda w: "/login", everyone()),
    ("accounts.login", "POST"): Case(
        lambda w: "/login", everyone(), data=lambda w: {"email": "x@example.org", "password": "x"}
    ),
    ("accounts.logout", "POST"): Case(lambda w: "/logout", everyone()),
    ("accounts.register_provider", "GET"): Case(lambda w: "/register/provider", everyone()),
    ("accounts.register_provider", "POST"): Case(lambda w: "/register/provider", everyone()),
    ("accounts.register_expert", "GET"): Case(lambda w: "/register/expert", everyone()),
    ("accounts.register_expert", "POST"): Case(lambda w: "/register/expert", everyone()),
    ("accounts.change_password", "GET"): Case(lambda w: "/password", logged_in()),
    ("accounts.change_password", "POST"): Case(lambda w: "/password", logged_in()),
    ("accounts.request_reset", "GET"): Case(lambda w: "/password/reset", everyone()),
    ("accounts.request_reset", "POST"): Case(lambda w: "/password/reset", everyone()),
    ("accounts.reset_password", "GET"): Case(lambda w: "/password/reset/no-such", everyone()),
    ("accounts.reset_password", "POST"): Case(lambda w: "/password/reset/no-such", everyone()),
    ("accounts.registrations", "GET"): Case(lambda w: "/registrations", STAFF),
    ("accounts.registration", "GET"): Case(lambda w: f"/registrations/{w.pending_user.id}", STAFF),
    ("accounts.approve", "POST"): Case(
        lambda w: f"/registrations/{w.pending_user.id}/approve", STAFF
    ),
    ("accounts.transfer_inn", "POST"): Case(
        lambda w: f"/registrations/{w.pending_user.id}/transfer-inn",
        STAFF,
        data=lambda w: {"transfer_reason": "Выписка из ЕГРЮЛ", "transfer_confirmed": "y"},
    ),
    ("accounts.reject", "POST"): Case(
        lambda w: f"/registrations/{w.pending_user.id}/reject",
        STAFF,
        data=lambda w: {"reason": "Неполные данные"},
    ),
    # users and roles
    ("users.index", "GET"): Case(lambda w: "/admin/users/", only("admin")),
    ("users.create", "GET"): Case(lambda w: "/admin/users/new", only("admin")),
    ("users.create", "POST"): Case(lambda w: "/admin/users/new", only("admin")),
    ("users.edit", "GET"): Case(lambda w: f"/admin/users/{w.pending_user.id}", only("admin")),
    ("users.edit", "POST"): Case(lambda w: f"/admin/users/{w.pending_user.id}", only("admin")),
    # programs
    ("programs.index", "GET"): Case(
        lambda w: "/programs/",
        only("applicant_own", "applicant_other", "municipal", "coordinator", "admin"),
    ),
    ("programs.create", "GET"): Case(lambda w: "/programs/new", APPLICANTS),
    ("programs.create", "POST"): Case(lambda w: "/programs/new", APPLICANTS),
    ("programs.view", "GET"): Case(lambda w: f"/programs/{w.draft.id}", READERS),
    ("programs.edit", "GET"): Case(lambda w: f"/programs/{w.draft.id}/edit", OWN),
    ("programs.edit", "POST"): Case(lambda w: f"/programs/{w.draft.id}/edit", OWN),
    ("programs.version", "GET"): Case(lambda w: f"/programs/{w.submitted.id}/versions/1", READERS),
    ("programs.submit", "POST"): Case(lambda w: f"/programs/{w.draft.id}/submit", OWN),
    ("programs.renew", "POST"): Case(lambda w: f"/programs/{w.renewable.id}/renew", OWN),
    ("programs.withdraw", "POST"): Case(
        lambda w: f"/programs/{w.draft.id}/withdraw", only("applicant_own", "coordinator", "admin")
    ),
    ("documents.upload", "POST"): Case(lambda w: f"/programs/{w.draft.id}/documents", OWN),
    ("documents.delete", "POST"): Case(
        lambda w: f"/programs/{w.draft.id}/documents/{w.draft.documents[0].id}/delete", OWN
    ),
    ("documents.download", "GET"): Case(
        lambda w: f"/programs/{w.draft.id}/documents/{w.draft.documents[0].id}",
        only("applicant_own", "coordinator", "admin"),
    ),
    ("documents.version_document", "GET"): Case(
        lambda w: (
            f"/versions/{w.submitted.versions[0].id}/documents/"
            f"{w.submitted.versions[0].documents[0].id}"
        ),
        READERS,
    ),
    ("compare.compare", "GET"): Case(lambda w: f"/programs/{w.submitted.id}/compare", READERS),
    ("screening.queue", "GET"): Case(lambda w: "/screening", STAFF),
    ("screening.accept", "POST"): Case(lambda w: f"/programs/{w.submitted.id}/accept", STAFF),
    ("screening.return_for_fixes", "POST"): Case(
        lambda w: f"/programs/{w.submitted.id}/return",
        STAFF,
        data=lambda w: {"reason": "Нет плана"},
    ),
    # assignment
    ("assigning.run", "GET"): Case(lambda w: "/assignments/run", STAFF),
    ("assignment.overdue", "GET"): Case(lambda w: "/assignments/overdue", STAFF),
    ("assigning.apply_run", "POST"): Case(
        lambda w: "/assignments/run", STAFF, data=lambda w: {"seed": "0"}
    ),
    ("assigning.review_experts", "GET"): Case(
        lambda w: f"/reviews/{w.in_review.current_review_id}/experts", STAFF
    ),
    ("assigning.assign", "POST"): Case(
        lambda w: f"/reviews/{w.in_review.current_review_id}/experts",
        STAFF,
        data=lambda w: {"expert_id": str(w.users["expert"].id)},
    ),
    ("assigning.remove", "POST"): Case(
        lambda w: f"/assignments/{w.assignment.id}/remove",
        STAFF,
        data=lambda w: {"reason": "Не отвечает"},
    ),
    # experts
    ("experts.registry", "GET"): Case(lambda w: "/experts", STAFF),
    ("experts.export", "GET"): Case(lambda w: "/experts/export.csv", STAFF),
    ("experts.import_experts", "GET"): Case(lambda w: "/experts/import", STAFF),
    ("experts.import_experts", "POST"): Case(lambda w: "/experts/import", STAFF),
    ("experts.import_template", "GET"): Case(lambda w: "/experts/import/template.csv", STAFF),
    ("experts.view", "GET"): Case(lambda w: f"/experts/{w.users['expert'].id}", STAFF),
    ("experts.suspend", "POST"): Case(
        lambda w: f"/experts/{w.users['expert'].id}/suspend",
        STAFF,
        data=lambda w: {"reason": "Нарушение сроков"},
    ),
    ("experts.reactivate", "POST"): Case(
        lambda w: f"/experts/{w.users['expert'].id}/reactivate", STAFF
    ),
    ("experts.own_profile", "GET"): Case(lambda w: "/expert/profile", only("expert")),
    ("experts.own_profile", "POST"): Case(lambda w: "/expert/profile", only("expert")),
    ("experts.declare_conflict", "POST"): Case(
        lambda w: "/expert/conflicts",
        only("expert"),
        data=lambda w: {"organization_id": str(w.organization.id), "text": "Консультирую"},
    ),
    ("experts.add_unavailability", "POST"): Case(
        lambda w: "/expert/unavailability", only("expert")
    ),
    ("experts.delete_unavailability", "POST"): Case(
        lambda w: f"/expert/unavailability/{w.unavailability.id}/delete", only("expert")
    ),
    # Nobody among the actors holds this assignment: only its own expert may answer.
    ("experts.accept", "POST"): Case(lambda w: f"/assignments/{w.assignment.id}/accept", only()),
    ("experts.decline", "POST"): Case(
        lambda w: f"/assignments/{w.assignment.id}/decline",
        only(),
        data=lambda w: {"reason": "Конфликт интересов"},
    ),
    # bulk import
    ("imports.upload", "GET"): Case(lambda w: "/import", STAFF),
    ("imports.upload", "POST"): Case(lambda w: "/import", STAFF),
    ("imports.template", "GET"): Case(lambda w: "/import/template/organizations.csv", STAFF),
    ("imports.status", "GET"): Case(lambda w: f"/import/{w.import_job.id}", STAFF),
    # A mapping page's token is its uploader's (the coordinator's): another admin's is not
    # found.
    ("imports.mapping", "GET"): Case(
        lambda w: f"/import/mapping/{w.mapping_token}", {**STAFF, "admin": "not found"}
    ),
    ("imports.mapping", "POST"): Case(
        lambda w: f"/import/mapping/{w.mapping_token}", {**STAFF, "admin": "not found"}
    ),
    # organizations
    ("organizations.profile", "GET"): Case(lambda w: "/organization", APPLICANTS),
    ("organizations.edit", "GET"): Case(lambda w: "/organization/edit", APPLICANTS),
    ("organizations.edit", "POST"): Case(lambda w: "/organization/edit", APPLICANTS),
    ("organizations.invite", "POST"): Case(lambda w: "/organization/invite", APPLICANTS),
    ("accounts.accept_invitation", "GET"): Case(lambda w: "/invite/no-such", everyone()),
    ("accounts.accept_invitation", "POST"): Case(lambda w: "/invite/no-such", everyone()),
    ("organizations.index", "GET"): Case(lambda w: "/organizations", STAFF),
    ("organizations.view", "GET"): Case(
        lambda w: f"/organizations/{w.organization.id}",
        only("applicant_own", "coordinator", "admin"),
    ),
    # scoring: nobody among the actors holds the assignment; staff read and reopen
    ("scoring.sheet", "GET"): Case(lambda w: f"/sheets/{w.assignment.id}", STAFF),
    ("scoring.save", "POST"): Case(
        lambda w: f"/sheets/{w.assignment.id}",
        only(),
        data=lambda w: {"revision": "0", "action": "save"},
    ),
    ("scoring.autosave", "POST"): Case(lambda w: f"/sheets/{w.assignment.id}/autosave", only()),
    ("scoring.reopen", "POST"): Case(
        lambda w: f"/sheets/{w.assignment.sheet.id}/reopen",
        STAFF,
        data=lambda w: {"reason": "Уточнить оценки"},
    ),
    ("scoring.history", "GET"): Case(lambda w: "/expert/history", only("expert")),
    ("scoring.history_sheet", "GET"): Case(
        lambda w: f"/expert/history/{w.assignment.sheet.id}", only()
    ),
    # rubrics
    ("rubrics.index", "GET"): Case(lambda w: "/rubrics", STAFF),
    ("rubrics.preview", "GET"): Case(lambda w: "/rubrics/dop-general/1", STAFF),
    ("rubrics.choose_active", "POST"): Case(
        lambda w: "/rubrics/active",
        STAFF,
        data=lambda w: {"program_type": "general_developmental", "rubric": "dop-general:1"},
    ),
    # reconciliation and decision
    ("reconciliation.index", "GET"): Case(lambda w: "/reconciliations", STAFF),
    ("reconciliation.review", "GET"): Case(
        lambda w: f"/reviews/{w.reconciling.id}/reconciliation", STAFF
    ),
    ("reconciliation.resolve", "POST"): Case(
        lambda w: f"/reviews/{w.reconciling.id}/resolve",
        STAFF,
        data=lambda w: {
            "justification": "Второй эксперт не учёл учебный план.",
            "counted": [str(a.id) for a in w.reconciling.assignments],
        },
    ),
    ("reconciliation.decisions", "GET"): Case(lambda w: "/decisions", STAFF),
    ("reconciliation.confirm_many", "POST"): Case(
        lambda w: "/decisions/confirm", STAFF, data=lambda w: {"review_ids": [str(w.awaiting.id)]}
    ),
    ("reconciliation.decision", "GET"): Case(lambda w: f"/reviews/{w.awaiting.id}/decision", STAFF),
    ("reconciliation.decide", "POST"): Case(
        lambda w: f"/reviews/{w.awaiting.id}/decision",
        STAFF,
        data=lambda w: {"decision": "admitted", "justification": ""},
    ),
    # Nobody among the actors is an expert of a discussion: only its own experts take part.
    ("discussion.page", "GET"): Case(lambda w: f"/discussion/{w.assignment.id}", only()),
    ("discussion.revise", "POST"): Case(lambda w: f"/discussion/{w.assignment.id}", only()),
    ("results.review", "GET"): Case(lambda w: f"/reviews/{w.decided.id}/result", READERS),
    # conclusions: verification is public; the PDF of an unpublished program is not
    ("conclusions.check", "GET"): Case(lambda w: "/verify", everyone()),
    ("conclusions.check_upload", "POST"): Case(
        lambda w: "/verify",
        everyone(),
        data=lambda w: {"file": (io.BytesIO(b"%PDF-1.4 not a conclusion"), "copy.pdf")},
    ),
    ("conclusions.verify", "GET"): Case(
        lambda w: f"/verify/{conclusion_of(w.decided).number}", everyone()
    ),
    ("conclusions.pdf", "GET"): Case(
        lambda w: f"/verify/{conclusion_of(w.decided).number}.pdf",
        {**READERS, "anonymous": DENY},
    ),
    # appeals
    ("appeals.new", "GET"): Case(
        lambda w: f"/conclusions/{conclusion_of(w.rejected).id}/appeal", OWN
    ),
    ("appeals.new", "POST"): Case(
        lambda w: f"/conclusions/{conclusion_of(w.rejected).id}/appeal",
        OWN,
        data=lambda w: {"reason_C1": "Цель программы указана в разделе 1."},
    ),
    ("appeals.index", "GET"): Case(lambda w: "/appeals", STAFF),
    ("appeals.show", "GET"): Case(
        lambda w: f"/appeals/{w.appeal.id}", only("applicant_own", "coordinator", "admin")
    ),
    ("appeals.file", "GET"): Case(
        lambda w: f"/appeals/{w.appeal.id}/files/{w.appeal.files[0].id}",
        only("applicant_own", "coordinator", "admin"),
    ),
    ("appeals.accept", "POST"): Case(lambda w: f"/appeals/{w.appeal.id}/accept", STAFF),
    ("appeals.refuse", "POST"): Case(
        lambda w: f"/appeals/{w.appeal.id}/refuse",
        STAFF,
        data=lambda w: {"ground": "unfounded", "reason": "Доводы не относятся к критериям."},
    ),
    ("appeals.decide", "POST"): Case(
        lambda w: f"/appeals/{w.appeal.id}/decide",
        STAFF,
        data=lambda w: {"decision": "rejected", "answer": "Оценки подтверждены."},
    ),
    ("appeals.verify", "GET"): Case(lambda w: f"/verify/appeal/{w.appeal.number}", everyone()),
    ("appeals.pdf", "GET"): Case(
        lambda w: f"/verify/appeal/{w.appeal.number}.pdf",
        only("applicant_own", "coordinator", "admin"),
    ),
    ("conclusions.revoke", "POST"): Case(
        lambda w: f"/conclusions/{conclusion_of(w.decided).id}/revoke",
        STAFF,
        data=lambda w: {"reason": "Ошибка в данных программы."},
    ),
    # background jobs
    ("jobs.index", "GET"): Case(lambda w: "/jobs", STAFF),
    ("jobs.view", "GET"): Case(lambda w: f"/jobs/{w.job.id}", STAFF),
    ("jobs.status", "GET"): Case(lambda w: f"/jobs/{w.job.id}.json", STAFF),
    # registry: the published registry is public; pending changes are the center's, and a
    # municipal viewer's within their municipality
    ("registry.index", "GET"): Case(lambda w: f"/registry?snapshot={w.published.id}", everyone()),
    ("registry.snapshots", "GET"): Case(lambda w: "/registry/snapshots", everyone()),
    ("registry.entry", "GET"): Case(lambda w: f"/registry/{published_number(w)}", everyone()),
    ("registry.diff", "GET"): Case(
        lambda w: f"/registry/diff?from={w.published.id}&to={w.published.id}", everyone()
    ),
    ("registry.pending", "GET"): Case(
        lambda w: "/registry/pending", only("municipal", "coordinator", "admin")
    ),
    ("registry.publish", "POST"): Case(
        lambda w: "/registry/publish",
        STAFF,
        data=lambda w: {
            "kind": "certified",
            "changes": fingerprint(pending_changes(RegistryKind.CERTIFIED)),
        },
    ),
    ("registry.municipal", "GET"): Case(lambda w: "/registry/municipal", only("municipal")),
    ("registry.exclude", "GET"): Case(lambda w: f"/programs/{w.admitted.id}/exclude", STAFF),
    ("registry.exclude", "POST"): Case(
        lambda w: f"/programs/{w.admitted.id}/exclude",
        STAFF,
        data=lambda w: {"reason": "Программа больше не реализуется."},
    ),
    ("registry_exports.registry_csv", "GET"): Case(
        lambda w: f"/registry.csv?snapshot={w.published.id}", everyone()
    ),
    ("registry_exports.registry_xlsx", "GET"): Case(
        lambda w: f"/registry.xlsx?snapshot={w.published.id}", everyone()
    ),
    ("registry_exports.municipal_csv", "GET"): Case(
        lambda w: "/registry/municipal.csv", only("municipal")
    ),
    ("registry_exports.municipal_xlsx", "GET"): Case(
        lambda w: "/registry/municipal.xlsx", only("municipal")
    ),
    ("registry_exports.pending_csv", "GET"): Case(
        lambda w: "/registry/pending.csv", only("municipal", "coordinator", "admin")
    ),
    ("registry_api.registry", "GET"): Case(
        lambda w: f"/api/v1/registry?snapshot={w.published.id}", everyone()
    ),
    ("registry_api.snapshots", "GET"): Case(lambda w: "/api/v1/registry/snapshots", everyone()),
    ("registry_api.diff", "GET"): Case(
        lambda w: f"/api/v1/registry/diff?from={w.published.id}&to={w.published.id}", everyone()
    ),
    ("registry_api.openapi", "GET"): Case(lambda w: "/api/v1/openapi.json", everyone()),
    # analytics: the center's, and a municipal viewer's within their municipality (the
    # tables naming experts are the center's only: tests/test_analytics.py)
    ("analytics.dashboard", "GET"): Case(
        lambda w: "/analytics", only("municipal", "coordinator", "admin")
    ),
    ("analytics.agreement", "GET"): Case(
        lambda w: "/analytics/agreement", only("municipal", "coordinator", "admin")
    ),
    ("analytics.export", "GET"): Case(
        lambda w: "/analytics/programs_by_state.csv", only("municipal", "coordinator", "admin")
    ),
    ("analytics.export_xlsx", "GET"): Case(
        lambda w: "/analytics/programs_by_state.xlsx", only("municipal", "coordinator", "admin")
    ),
    # audit
    ("audit.events", "GET"): Case(lambda w: "/audit/", STAFF),
    ("audit.export", "GET"): Case(lambda w: "/audit/export.csv", STAFF),
    # the notification centre (each user's own)
    ("notifications.index", "GET"): Case(lambda w: "/notifications", logged_in()),
    ("notifications.open_", "POST"): Case(
        lambda w: f"/notifications/{w.notification.id}", only("applicant_own")
    ),
    ("notifications.read_all", "POST"): Case(lambda w: "/notifications/read", logged_in()),
    ("notifications.choices", "GET"): Case(lambda w: "/notifications/settings", logged_in()),
    ("notifications.choices", "POST"): Case(
        lambda w: "/notifications/settings",
        logged_in(),
        data=lambda w: {"by_mail": ["assignments", "programs"]},
    ),
    # the center's settings (belong to no review: a seat narrows nothing)
    ("settings.index", "GET"): Case(lambda w: "/settings", STAFF),
    ("settings.index", "POST"): Case(
        lambda w: "/settings", STAFF, data=lambda w: {"region_code": "67"}
    ),
    ("settings.add_day", "POST"): Case(
        lambda w: "/settings/calendar/days_off/add", STAFF, data=lambda w: {"day": "2026-11-09"}
    ),
    ("settings.remove_day", "POST"): Case(
        lambda w: "/settings/calendar/days_off/remove", STAFF, data=lambda w: listed_day_off()
    ),
}


def listed_day_off() -> dict:
    """A day of the center's extra days off, to remove."""
    set_setting("holidays", ["2026-11-09"])
    return {"day": "2026-11-09"}


MATRIX = {
    key: replace(case, expect=with_dual_roles(key, dict(case.expect)))
    for key, case in MATRIX.items()
}

#: Routes that only a development application registers (the development mailbox, with
#: ``DEV_MAILBOX_DIR``): absent from the testing application, they are asked of one that
#: has them (:class:`TestDevelopmentRoutes`).
DEVELOPMENT_MATRIX = {
    ("devmail.index", "GET"): Case(lambda w: "/dev/mail", STAFF),
    ("devmail.message", "GET"): Case(lambda w: f"/dev/mail/{w.dev_message}", STAFF),
}
DEVELOPMENT_MATRIX = {
    key: replace(case, expect=with_dual_roles(key, dict(case.expect)))
    for key, case in DEVELOPMENT_MATRIX.items()
}


def conclusion_of(review):
    """The newest conclusion of ``review``, read from the database."""
    return (
        db.session.execute(
            select(Conclusion)
            .where(Conclusion.review_id == review.id)
            .order_by(Conclusion.id.desc())
        )
        .scalars()
        .first()
    )


def application_routes(app) -> set[tuple[str, str]]:
    return {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def test_every_route_is_in_the_matrix(app):
    routes = application_routes(app)
    missing = sorted(routes - set(MATRIX))
    stale = sorted(set(MATRIX) - routes)
    assert not missing, f"routes without a row in the permission matrix: {missing}"
    assert not stale, f"rows for routes that do not exist: {stale}"
    assert not routes & set(DEVELOPMENT_MATRIX), "development routes in the testing app"


@pytest.fixture
def world(session) -> World:
    organization = OrganizationFactory()
    pending = ApplicantFactory(organization=organization, status=AccountStatus.PENDING)
    users = {
        "applicant_own": ApplicantFactory(organization=organization),
        "applicant_other": ApplicantFactory(),
        "expert": ExpertUserFactory(),
        "municipal": MunicipalViewerFactory(municipality=organization.municipality),
        "coordinator": CoordinatorFactory(),
        "admin": AdminFactory(),
        "dual_on": ExpertUserFactory(roles=[Role.EXPERT, Role.COORDINATOR]),
        "dual_other": ExpertUserFactory(roles=[Role.EXPERT, Role.COORDINATOR]),
    }
    assert users["applicant_own"].has_role(Role.APPLICANT)
    draft = ProgramFactory(organization=organization)
    attach_document(draft)
    submitted = ProgramFactory(organization=organization)
    attach_document(submitted)
    submit_program(submitted, users["applicant_own"])
    in_review = program_in_review(users["coordinator"], organization=organization)
    assignment = Assignment(
        review_id=in_review.current_review_id,
        expert_id=ExpertUserFactory().id,
        seat=1,
        due_on=date.today(),
    )
    db.session.add(assignment)
    db.session.add(ScoreSheet(assignment=assignment, status=SheetStatus.SUBMITTED))
    unavailability = ExpertUnavailability(
        expert_id=users["expert"].expert_profile.id,
        starts_on=date(2030, 1, 1),
        ends_on=date(2030, 1, 10),
    )
    db.session.add(unavailability)
    db.session.flush()
    coordinator = users["coordinator"]
    seat(users["dual_on"], in_review.current_review, AssignmentStatus.ACCEPTED)
    elsewhere = program_in_review(coordinator)
    seat(users["dual_other"], elsewhere.current_review, AssignmentStatus.ACCEPTED)

    def seated(build, review_of=lambda built: built):
        """``build``, then an open seat of ``dual_on`` on the review it made."""

        def built():
            made = build()
            seat(users["dual_on"], review_of(made), AssignmentStatus.OFFERED)
            return made

        return built

    def reconciling():
        # No expert of the arts exists: the divergent review waits for a third expert.
        arts = program_in_review(coordinator, organization=organization, direction=Direction.ARTS)
        return scored_review(with_total(18), with_total(10), program=arts)[0]

    def awaiting():
        program = program_in_review(coordinator, organization=organization)
        return scored_review(with_total(16), with_total(15), program=program)[0]

    def decided():
        program = program_in_review(coordinator, organization=organization)
        review = scored_review(with_total(17), with_total(16), program=program)[0]
        decide_review(review, coordinator, review.computed_decision)
        return review

    def rejected():
        program = program_in_review(coordinator, organization=organization)
        review = scored_review(with_total(8), with_total(8), program=program)[0]
        decide_review(review, coordinator, review.computed_decision)
        return review

    def appeal():
        """An appeal of "applicant_own" against the rejected review's conclusion (dual_on
        sits on that review), with an attached file and, as if dismissed, a stored
        decision (its fields written directly: the routes only read them)."""
        from review_portal import storage
        from review_portal.appeals.models import AppealFile
        from review_portal.appeals.services import file_appeal

        review = world_rejected()
        made = file_appeal(
            conclusion_of(review), users["applicant_own"], {"C1": "Цель указана в разделе 1."}
        )
        made.files.append(AppealFile(file_id=draft.documents[0].file_id, name="довод.pdf"))
        sha256, size = storage.save_bytes(b"%PDF-1.4\n%%EOF\n")
        made.number = f"00-{date.today().year}-A00001"
        made.storage_key = made.sha256 = made.content_sha256 = sha256
        made.size = size
        made.issued_at = made.filed_at
        return made

    def renewable():
        """A published program of the owning organization whose entry ends in 30 days."""
        from datetime import timedelta

        program, _conclusion, entry = admitted_program(
            coordinator=coordinator, organization=organization
        )
        publish_registry(RegistryKind.CERTIFIED, coordinator)
        db.session.refresh(entry)
        entry.valid_until = date.today() + timedelta(days=30)
        return program

    def job():
        queued = Job(kind="issue_conclusions", payload={}, total=1)
        db.session.add(queued)
        return queued

    def import_job():
        queued = Job(kind="import_file", payload={"kind": "programs"}, total=0)
        db.session.add(queued)
        return queued

    def mapping_token():
        """The mapping page's token of a file with other titles, uploaded by the
        coordinator."""
        from review_portal import storage
        from review_portal.imports.background import _serializer

        key, _size = storage.save_bytes("Название;ИНН\r\nРобототехника;6731000014\r\n".encode())
        return _serializer().dumps(["programs", key, "a.csv", users["coordinator"].id])

    def admitted():
        return admitted_program(coordinator=coordinator, organization=organization)[0]

    def dev_message():
        """A message delivered into the development mailbox (a development application's
        only): its key."""
        queue_email("someone@example.org", "Письмо портала", "Текст письма.")
        deliver_outbox()
        return list_messages(current_app.config["DEV_MAILBOX_DIR"]).messages[0].key

    def notification():
        """A notification of the actor "applicant_own" (with a link to their program)."""
        return notify(
            users["applicant_own"],
            "Программа принята к экспертизе",
            f"/programs/{draft.id}",
            kind=NotificationKind.PROGRAMS,
        )

    def published():
        admitted_program(coordinator=coordinator, organization=organization)
        return publish_registry(RegistryKind.CERTIFIED, coordinator)

    built_rejected: list = []

    def world_rejected():
        if not built_rejected:
            built_rejected.append(seated(rejected)())
        return built_rejected[0]

    return World(
        lazy={
            "rejected": world_rejected,
            "renewable": renewable,
            "appeal": appeal,
            "reconciling": seated(reconciling),
            "awaiting": seated(awaiting),
            "decided": seated(decided),
            "job": job,
            "import_job": import_job,
            "mapping_token": mapping_token,
            "admitted": seated(admitted, lambda program: program.current_review),
            "published": published,
            "dev_message": dev_message,
            "notification": notification,
        },
        unavailability=unavailability,
        organization=organization,
        pending_user=pending,
        draft=draft,
        submitted=submitted,
        in_review=in_review,
        assignment=assignment,
        users=users,
    )


def seat(user, review, status) -> Assignment:
    """``user`` sits on ``review`` as an expert (the next free seat)."""
    taken = db.session.execute(
        select(Assignment.seat).where(Assignment.review_id == review.id)
    ).scalars()
    assignment = Assignment(
        review_id=review.id,
        expert_id=user.id,
        seat=max(taken, default=0) + 1,
        status=status,
        due_on=date.today(),
    )
    db.session.add(assignment)
    db.session.flush()
    return assignment


def outcome_of(response) -> str:
    if response.status_code == 403:
        return DENY
    if response.status_code == 404:
        return "not found"
    if response.status_code in (301, 302, 303) and "/login" in response.headers["Location"]:
        return LOGIN
    if response.status_code == 401:
        return LOGIN
    if response.status_code >= 500:
        return f"error {response.status_code}"
    return OK


CASES = sorted((key, actor) for key in MATRIX for actor in ACTORS)


@pytest.mark.parametrize(
    ("key", "actor"), CASES, ids=lambda v: "-".join(v) if isinstance(v, tuple) else v
)
def test_route_answers_each_actor_as_the_matrix_says(client, auth, world, key, actor):
    answers_as_the_matrix_says(client, auth, world, key, MATRIX[key], actor)


def answers_as_the_matrix_says(client, auth, world, key, case: Case, actor: str) -> None:
    endpoint, method = key
    if actor != "anonymous":
        response = auth.login(world.users[actor])
        assert response.status_code == 302, f"{actor} could not log in"
    url = case.url(world)
    if method == "GET":
        response = client.get(url)
    else:
        data = case.data(world) if case.data else {}
        response = auth.post(url, data)
    if response.status_code == 200 and response.mimetype == "text/html":
        # Every page has a plain-text title (no markup leaking into it).
        title = response.get_data(as_text=True).split("<title>", 1)[1].split("</title>", 1)[0]
        assert "<" not in title and len(title) < 300, f"{url}: broken <title>"
    response.close()  # static files are streamed from an open file
    assert outcome_of(response) == case.expect[actor], (
        f"{method} {url} as {actor}: HTTP {response.status_code}"
    )


class TestDevelopmentRoutes:
    """The development mailbox's routes, on a testing application with a mailbox (the
    one the tests above use has none, as a production has none)."""

    @pytest.fixture(scope="class")
    @classmethod
    def app(cls, tmp_path_factory):
        directory = tmp_path_factory.mktemp("devmail")
        app = make_app("sqlite", directory, DEV_MAILBOX_DIR=str(directory / "mail"))
        yield app
        with app.app_context():
            db.engine.dispose()

    def test_every_development_route_is_in_the_matrix(self, app):
        routes = application_routes(app)
        assert routes - set(MATRIX) == set(DEVELOPMENT_MATRIX)

    @pytest.mark.parametrize(
        ("key", "actor"),
        sorted((key, actor) for key in DEVELOPMENT_MATRIX for actor in ACTORS),
        ids=lambda v: "-".join(v) if isinstance(v, tuple) else v,
    )
    def test_route_answers_each_actor_as_the_matrix_says(self, client, auth, world, key, actor):
        answers_as_the_matrix_says(client, auth, world, key, DEVELOPMENT_MATRIX[key], actor)
