"""Declared conflicts of interest are remembered (issue 18, item 5): declared on a decline or
from the expert's profile, shown to the coordinator with date and text, and excluding the
expert from every later review of the program (of the organization, when declared so) in
the automatic run, its dry run and manual assignment; a re-review keeps the previous
round's experts who are still eligible."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from review_portal.assignment import services
from review_portal.assignment.eligibility import Reason
from review_portal.assignment.models import Assignment, ConflictSource, ExpertConflict
from review_portal.audit.models import AuditEvent
from review_portal.enums import AccountStatus, AssignmentStatus
from review_portal.extensions import db
from review_portal.i18n import local_date
from review_portal.programs.services import accept_submission, submit_program
from review_portal.workflow import ReviewState, advance
from tests import factories
from tests.factories import (
    ApplicantFactory,
    CoordinatorFactory,
    MunicipalityFactory,
    OrganizationFactory,
    add_assignment,
    expert,
    program_in_review,
    with_total,
)

REASON = "участвовал в разработке"


def conflicts_of(user) -> list[ExpertConflict]:
    return list(
        db.session.execute(
            select(ExpertConflict)
            .where(ExpertConflict.expert_id == user.id)
            .order_by(ExpertConflict.id)
        ).scalars()
    )


def row(page: str, user) -> str:
    return page.split(f'data-expert="{user.id}"', 1)[1].split("</tr>", 1)[0]


def decline_on_the_page(client, auth, assignment, reason, *, whole=False):
    auth.login(assignment.expert)
    data = {"reason": reason, "conflict": "y"}
    if whole:
        data["whole_organization"] = "y"
    answer = auth.post(f"/assignments/{assignment.id}/decline", data, token_from="/expert")
    assert answer.status_code == 302
    auth.logout()


@pytest.fixture
def round_two(client, auth, session):
    """The issue's case: round 1, expert A declines declaring a conflict, B and the
    replacement C score; the program is revised and its round 2 is in expertise. B also
    has an open assignment elsewhere, so balancing loads alone would prefer A to B."""
    home, away = MunicipalityFactory(name="Рославль"), MunicipalityFactory(name="Ярцево")
    coordinator = CoordinatorFactory()
    organization = OrganizationFactory(municipality=home)
    program = program_in_review(coordinator, organization=organization, municipality=home)
    a = expert(municipality=away, full_name="Эксперт Конфликтный")
    b = expert(municipality=away, full_name="Эксперт Прежний")
    first = program.current_review
    offer_a = services.assign_manually(first, a, coordinator)
    offer_b = services.assign_manually(first, b, coordinator)
    c = expert(municipality=away, full_name="Эксперт Заменяющий")
    # B's other work: a full review elsewhere (its second expert can take nothing more).
    elsewhere = program_in_review(coordinator, organization=OrganizationFactory(municipality=home))
    add_assignment(elsewhere.current_review, b, 1)
    add_assignment(elsewhere.current_review, expert(municipality=away, capacity=1), 2)

    decline_on_the_page(client, auth, offer_a, REASON)
    replacement = db.session.execute(
        select(Assignment).where(Assignment.review_id == first.id, Assignment.expert_id == c.id)
    ).scalar_one()
    for offer, user in ((offer_b, b), (replacement, c)):
        services.accept_assignment(offer, user)
        factories.submit_scores(offer, with_total(12))
    assert first.state == ReviewState.AWAITING_DECISION
    advance(first, ReviewState.REVISION_REQUIRED, coordinator)
    submit_program(program, ApplicantFactory(organization=organization))
    second = accept_submission(program, coordinator)
    assert second.round == 2 and second.state == ReviewState.IN_REVIEW
    # A newcomer with no load at all: balance alone would take him rather than B.
    expert(municipality=away, full_name="Эксперт Новый")
    return {"coordinator": coordinator, "program": program, "first": first, "second": second}


def test_round_two_dry_run_keeps_the_previous_expert_and_never_the_conflicted_one(
    client, auth, round_two
):
    a, b, c = (
        db.session.execute(select(Assignment).where(Assignment.review_id == round_two["first"].id))
        .scalars()
        .all()[i]
        .expert
        for i in range(3)
    )
    stored = conflicts_of(a)
    assert [(s.program_id, s.text, s.source) for s in stored] == [
        (round_two["program"].id, REASON, ConflictSource.DECLINE)
    ]
    second = round_two["second"]

    plan = services.run_assignment(round_two["coordinator"], apply=False).plan
    assert sorted(plan.assignments[second.id]) == sorted([b.id, c.id])

    auth.login(round_two["coordinator"])
    page = client.get("/assignments/run?dry_run=1&seed=0").get_data(as_text=True)
    assert "Эксперт Прежний" in page and "Эксперт Заменяющий" in page
    assert "Эксперт Конфликтный" not in page and "Эксперт Новый" not in page


def test_round_two_candidate_list_shows_the_conflict_and_the_service_refuses_it(
    client, auth, round_two
):
    second = round_two["second"]
    a = next(x for x in round_two["first"].assignments if x.status == AssignmentStatus.DECLINED)
    declared = local_date(conflicts_of(a.expert)[0].declared_at).strftime("%d.%m.%Y")
    auth.login(round_two["coordinator"])
    page = client.get(f"/reviews/{second.id}/experts").get_data(as_text=True)
    assert f"Заявлен конфликт интересов {declared}: {REASON}" in row(page, a.expert)
    assert "Назначить" not in row(page, a.expert)

    # The page's POST and the service itself refuse him, whatever the page showed.
    refused = auth.post(f"/reviews/{second.id}/experts", {"expert_id": str(a.expert_id)})
    assert refused.status_code == 400
    with pytest.raises(services.AssignmentError) as error:
        services.assign_manually(second, a.expert, round_two["coordinator"])
    assert REASON in str(error.value.message)
    assert not db.session.execute(
        select(Assignment).where(
            Assignment.review_id == second.id, Assignment.expert_id == a.expert_id
        )
    ).first()


def test_conflict_holds_for_third_experts_and_replacements(session):
    coordinator = CoordinatorFactory()
    program = program_in_review(coordinator)
    conflicted = expert(municipality=MunicipalityFactory())
    db.session.add(
        ExpertConflict(
            expert_id=conflicted.id,
            organization_id=program.organization_id,
            program_id=program.id,
            text="Консультирую авторов программы",
            source=ConflictSource.PROFILE,
            recorded_by_id=conflicted.id,
        )
    )
    other = expert(municipality=MunicipalityFactory())
    db.session.flush()
    services.run_assignment(coordinator, apply=True)
    offered = [a.expert_id for a in program.current_review.assignments]
    assert offered == [other.id]
    # A decline of the other expert brings no replacement: the conflicted one is the only
    # other expert, and the vacancy stays open.
    assert services.decline_assignment(program.current_review.assignments[0], other, "Болею") == []


def test_decline_for_the_whole_organization_excludes_its_other_programs(client, auth, session):
    coordinator = CoordinatorFactory()
    organization = OrganizationFactory()
    program = program_in_review(coordinator, organization=organization)
    decliner = expert(municipality=MunicipalityFactory())
    offer = services.assign_manually(program.current_review, decliner, coordinator)
    decline_on_the_page(client, auth, offer, "Консультирую директора", whole=True)
    [stored] = conflicts_of(decliner)
    assert stored.program_id is None and stored.organization_id == organization.id
    assert stored.assignment_id == offer.id
    sibling = program_in_review(coordinator, organization=organization)
    reasons = {e.id: r for e, r in services.candidates(sibling.current_review)}
    assert Reason.CONFLICT in reasons[decliner.id]


def test_profile_declaration_excludes_from_every_program_of_the_organization(client, auth, session):
    coordinator = CoordinatorFactory()
    organization = OrganizationFactory(short_name="МБУ ДО «Дом творчества»")
    pending = OrganizationFactory(status=AccountStatus.PENDING)
    advisor = expert(municipality=MunicipalityFactory(), full_name="Эксперт Советник")
    auth.login(advisor)
    profile = client.get("/expert/profile").get_data(as_text=True)
    assert "МБУ ДО «Дом творчества»" in profile and pending.short_name not in profile
    # Bad ids are form errors, never a 500, and write nothing.
    for bad in ("999999999999999999999", "abc", str(pending.id), ""):
        answer = auth.post(
            "/expert/conflicts",
            {"organization_id": bad, "text": "Работаю по совместительству"},
            token_from="/expert/profile",
        )
        assert answer.status_code == 400, bad
        assert 'id="organization_id-error"' in answer.get_data(as_text=True)
    assert conflicts_of(advisor) == []

    done = auth.post(
        "/expert/conflicts",
        {"organization_id": str(organization.id), "text": "Работаю по совместительству"},
        token_from="/expert/profile",
    )
    assert done.status_code == 302
    [stored] = conflicts_of(advisor)
    assert (stored.organization_id, stored.program_id, stored.source) == (
        organization.id,
        None,
        ConflictSource.PROFILE,
    )
    assert db.session.execute(
        select(AuditEvent).where(
            AuditEvent.action == "expert.conflict_declare",
            AuditEvent.object_id == str(stored.id),
        )
    ).first()
    auth.logout()

    # A program of that organization submitted later: never offered to the advisor.
    program = program_in_review(coordinator, organization=organization)
    outsider = expert(municipality=MunicipalityFactory())
    plan = services.run_assignment(coordinator, apply=False).plan
    assert plan.assignments[program.current_review_id] == (outsider.id,)

    # The coordinator sees the declaration on the expert's page and in the candidate list.
    auth.login(coordinator)
    declared = local_date(stored.declared_at).strftime("%d.%m.%Y")
    page = client.get(f"/experts/{advisor.id}").get_data(as_text=True)
    conflicts = page.split('id="conflicts"', 1)[1].split("</table>", 1)[0]
    assert declared in conflicts and "Работаю по совместительству" in conflicts
    assert "МБУ ДО «Дом творчества»" in conflicts and "вся организация" in conflicts
    candidates = client.get(f"/reviews/{program.current_review_id}/experts").get_data(as_text=True)
    assert f"Заявлен конфликт интересов {declared}: Работаю по совместительству" in row(
        candidates, advisor
    )


def test_only_the_expert_declares_their_own_conflict(session):
    advisor = expert()
    with pytest.raises(services.Forbidden):
        services.declare_organization_conflict(
            advisor, CoordinatorFactory(), OrganizationFactory().id, "Советник"
        )
