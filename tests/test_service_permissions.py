"""Every state-changing service checks who acts, without any route in between.

Each service is called directly with each actor of the permission matrix (the same world,
the dual-role coordinators included; anonymous is Flask-Login's anonymous user). Where the
matrix answers the service's route with 403 (or the login page), the service itself must
raise :class:`~review_portal.errors.Forbidden`; where the route is allowed, the service may
succeed or refuse for the object's state, but never for permission. A bulk path, a job, the
CLI or ``simulate`` that calls the service therefore meets the same rule as the page.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import pytest
from flask_login import AnonymousUserMixin
from werkzeug.datastructures import FileStorage

from review_portal.accounts.services import (
    approve_registration,
    create_user_by_admin,
    reject_registration,
)
from review_portal.assignment.services import (
    accept_assignment,
    assign_manually,
    decline_assignment,
    remove_assignment,
    run_assignment,
    start_assignment_run,
)
from review_portal.conclusions.bulk import start_bulk_issue
from review_portal.conclusions.services import revoke_conclusion
from review_portal.enums import DocumentKind, ProgramType, RegistryKind, Role
from review_portal.errors import DomainError, Forbidden
from review_portal.experts.services import (
    add_unavailability,
    import_experts_csv,
    reactivate_expert,
    suspend_expert,
    update_expert_profile,
)
from review_portal.extensions import db
from review_portal.imports.services import import_file
from review_portal.organizations.services import invite_colleague, update_organization_profile
from review_portal.programs.documents import add_document, remove_document
from review_portal.programs.services import (
    accept_submission,
    return_submission,
    submit_program,
    update_program,
    withdraw_program,
)
from review_portal.reconciliation.services import resolve_review, revise_scores
from review_portal.registry.services import exclude_program, publish_registry
from review_portal.reviews.services import decide_review
from review_portal.rubrics.registry import choose_active_rubric, get_rubric
from review_portal.scoring.services import SheetInput, reopen_sheet, save_sheet, submit_sheet
from tests import test_permissions as matrix
from tests.factories import MINIMAL_PDF
from tests.test_permissions import ACTORS, DENY, LOGIN, MATRIX, conclusion_of

#: The permission matrix's world: the same objects and actors.
world = matrix.world


@dataclass(frozen=True)
class ServiceCase:
    #: The route whose matrix row says who may call the service.
    route: tuple[str, str]
    call: Callable


SERVICES: dict[str, ServiceCase] = {
    "submit_program": ServiceCase(
        ("programs.submit", "POST"), lambda w, a: submit_program(w.draft, a)
    ),
    "update_program": ServiceCase(
        ("programs.edit", "POST"), lambda w, a: update_program(w.draft, a, title="Новое название")
    ),
    "withdraw_program": ServiceCase(
        ("programs.withdraw", "POST"), lambda w, a: withdraw_program(w.draft, a, "Отзываем")
    ),
    "accept_submission": ServiceCase(
        ("screening.accept", "POST"), lambda w, a: accept_submission(w.submitted, a)
    ),
    "return_submission": ServiceCase(
        ("screening.return_for_fixes", "POST"),
        lambda w, a: return_submission(w.submitted, a, "Нет учебного плана"),
    ),
    "run_assignment": ServiceCase(
        ("assigning.apply_run", "POST"), lambda w, a: run_assignment(a, apply=False)
    ),
    "start_assignment_run": ServiceCase(
        ("assigning.apply_run", "POST"),
        lambda w, a: start_assignment_run(a, seed=0, fingerprint=None),
    ),
    "assign_manually": ServiceCase(
        ("assigning.assign", "POST"),
        lambda w, a: assign_manually(w.in_review.current_review, w.users["expert"], a),
    ),
    "remove_assignment": ServiceCase(
        ("assigning.remove", "POST"), lambda w, a: remove_assignment(w.assignment, a, "Болеет")
    ),
    "accept_assignment": ServiceCase(
        ("experts.accept", "POST"), lambda w, a: accept_assignment(w.assignment, a)
    ),
    "decline_assignment": ServiceCase(
        ("experts.decline", "POST"),
        lambda w, a: decline_assignment(w.assignment, a, "Занят"),
    ),
    "save_sheet": ServiceCase(
        ("scoring.save", "POST"),
        lambda w, a: save_sheet(w.assignment, a, SheetInput(revision=0, scores={}, comments={})),
    ),
    "submit_sheet": ServiceCase(
        ("scoring.save", "POST"), lambda w, a: submit_sheet(w.assignment, a)
    ),
    "reopen_sheet": ServiceCase(
        ("scoring.reopen", "POST"),
        lambda w, a: reopen_sheet(w.assignment.sheet, a, "Уточнить оценки"),
    ),
    "revise_scores": ServiceCase(
        ("discussion.revise", "POST"), lambda w, a: revise_scores(w.assignment, a, {})
    ),
    "resolve_review": ServiceCase(
        ("reconciliation.resolve", "POST"),
        lambda w, a: resolve_review(
            w.reconciling,
            a,
            "Второй эксперт не учёл учебный план.",
            [x.id for x in w.reconciling.assignments if x.sheet is not None],
        ),
    ),
    "decide_review": ServiceCase(
        ("reconciliation.decide", "POST"),
        lambda w, a: decide_review(w.awaiting, a, w.awaiting.computed_decision, issue=False),
    ),
    "start_bulk_issue": ServiceCase(
        ("reconciliation.confirm_many", "POST"), lambda w, a: start_bulk_issue([w.awaiting.id], a)
    ),
    "revoke_conclusion": ServiceCase(
        ("conclusions.revoke", "POST"),
        lambda w, a: revoke_conclusion(conclusion_of(w.decided), a, "Ошибка в данных"),
    ),
    "exclude_program": ServiceCase(
        ("registry.exclude", "POST"),
        lambda w, a: exclude_program(w.admitted.current_review, a, "Не реализуется"),
    ),
    "publish_registry": ServiceCase(
        ("registry.publish", "POST"), lambda w, a: publish_registry(RegistryKind.CERTIFIED, a)
    ),
    "suspend_expert": ServiceCase(
        ("experts.suspend", "POST"),
        lambda w, a: suspend_expert(w.users["expert"].expert_profile, a, "Нарушение сроков"),
    ),
    "reactivate_expert": ServiceCase(
        ("experts.reactivate", "POST"),
        lambda w, a: reactivate_expert(w.users["expert"].expert_profile, a),
    ),
    "approve_registration": ServiceCase(
        ("accounts.approve", "POST"), lambda w, a: approve_registration(w.pending_user, a)
    ),
    "reject_registration": ServiceCase(
        ("accounts.reject", "POST"),
        lambda w, a: reject_registration(w.pending_user, a, "Неполные данные"),
    ),
    "create_user_by_admin": ServiceCase(
        ("users.create", "POST"),
        lambda w, a: create_user_by_admin(
            a,
            email="new.coordinator@example.org",
            full_name="Новый Координатор",
            roles=[Role.COORDINATOR],
            municipality_id=None,
            organization_id=None,
        ),
    ),
    "add_document": ServiceCase(
        ("documents.upload", "POST"),
        lambda w, a: add_document(w.draft, a, pdf_upload(), DocumentKind.ATTACHMENT),
    ),
    "remove_document": ServiceCase(
        ("documents.delete", "POST"),
        lambda w, a: remove_document(w.draft, w.draft.documents[0], a),
    ),
    # The provider's own organization (another provider edits theirs on the same page).
    "update_organization_profile": ServiceCase(
        ("organizations.edit", "POST"),
        lambda w, a: update_organization_profile(own_organization(w, a), a, phone="+74812000000"),
    ),
    "invite_colleague": ServiceCase(
        ("organizations.invite", "POST"),
        lambda w, a: invite_colleague(own_organization(w, a), a, "colleague@example.org"),
    ),
    "choose_active_rubric": ServiceCase(
        ("rubrics.choose_active", "POST"),
        lambda w, a: choose_active_rubric(
            ProgramType.GENERAL_DEVELOPMENTAL, get_rubric("dop-general", 1), a
        ),
    ),
    "import_file": ServiceCase(
        ("imports.upload", "POST"),
        lambda w, a: import_file("organizations", io.BytesIO(b"inn;name\n"), a, "o.csv"),
    ),
    "import_experts_csv": ServiceCase(
        ("experts.import_experts", "POST"),
        lambda w, a: import_experts_csv(io.BytesIO(b"email\n"), a, "e.csv"),
    ),
    # The expert's own profile (another expert edits theirs on the same page).
    "update_expert_profile": ServiceCase(
        ("experts.own_profile", "POST"),
        lambda w, a: update_expert_profile(own_profile(w, a), a, capacity=4),
    ),
    "add_unavailability": ServiceCase(
        ("experts.add_unavailability", "POST"),
        lambda w, a: add_unavailability(own_profile(w, a), a, date(2031, 1, 1), date(2031, 1, 9)),
    ),
}


def own_organization(w, actor):
    """The actor's organization where they have one, else the world's."""
    return getattr(actor, "organization", None) or w.organization


def own_profile(w, actor):
    """The actor's expert profile where they have one, else the world's expert's."""
    return getattr(actor, "expert_profile", None) or w.users["expert"].expert_profile


def pdf_upload() -> FileStorage:
    return FileStorage(
        io.BytesIO(MINIMAL_PDF), filename="extra.pdf", content_type="application/pdf"
    )


CASES = sorted((name, actor) for name in SERVICES for actor in ACTORS)


def test_every_service_case_names_a_route_of_the_matrix():
    assert {case.route for case in SERVICES.values()} <= set(MATRIX)


@pytest.mark.parametrize(("name", "actor"), CASES)
def test_service_refuses_whom_the_matrix_refuses(app, world, name, actor):
    case = SERVICES[name]
    user = AnonymousUserMixin() if actor == "anonymous" else world.users[actor]
    forbidden = MATRIX[case.route].expect[actor] in (DENY, LOGIN)
    # The world's lazy objects are made before the savepoint, so only the call is undone.
    case.call.__code__  # noqa: B018 - (documentation: the call reads the world below)
    objects = {"reconciling", "awaiting", "decided", "admitted"} & set(case.call.__code__.co_names)
    for attribute in objects:
        getattr(world, attribute)
    savepoint = db.session.begin_nested()
    try:
        case.call(world, user)
    except Forbidden as error:
        assert forbidden, f"{name} refused {actor}, whom the matrix allows: {error.message}"
    except DomainError as error:
        assert not forbidden, f"{name} let {actor} through to a state check: {error.message}"
    else:
        assert not forbidden, f"{name} did its work for {actor}, whom the matrix refuses"
    finally:
        savepoint.rollback()
