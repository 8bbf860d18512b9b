"""Assignment through the coordinator's pages and the services: the capacity check, the dry
run and its application, manual assignment with reasons, removal and decline with
replacement, and two runs at the same moment on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from review_portal.assignment import services
from review_portal.assignment.eligibility import Reason
from review_portal.assignment.models import Assignment
from review_portal.enums import AssignmentStatus, Direction
from review_portal.extensions import db
from tests.factories import (
    ApplicantFactory,
    CoordinatorFactory,
    MunicipalityFactory,
    OrganizationFactory,
    add_assignment,
    expert,
    program_in_review,
)


@pytest.fixture(autouse=True)
def _english(english):
    pass


def assignments_of(program) -> list[Assignment]:
    return list(
        db.session.execute(
            select(Assignment)
            .where(Assignment.review_id == program.current_review_id)
            .order_by(Assignment.seat)
        ).scalars()
    )


def count_assignments() -> int:
    return db.session.execute(select(func.count(Assignment.id))).scalar_one()


@pytest.fixture
def region(session):
    """Two municipalities, two programs in review (technical), three technical experts."""
    home, away = MunicipalityFactory(name="Рославль"), MunicipalityFactory(name="Ярцево")
    coordinator = CoordinatorFactory()
    programs = [
        program_in_review(
            coordinator,
            organization=OrganizationFactory(municipality=home),
            municipality=home,
            title=f"Робототехника {i}",
        )
        for i in range(2)
    ]
    experts = [expert(municipality=away, full_name=f"Эксперт {i}") for i in range(3)]
    return {"coordinator": coordinator, "programs": programs, "experts": experts, "home": home}


def test_dry_run_shows_the_plan_and_writes_nothing(client, auth, region):
    auth.login(region["coordinator"])
    page = client.get("/assignments/run?dry_run=1&seed=0").get_data(as_text=True)
    assert "Places filled: 4 of 4." in page
    assert "Робототехника 0" in page and "Эксперт 0" in page
    assert count_assignments() == 0


def test_applying_the_plan_creates_offers_with_deadlines(client, auth, region):
    auth.login(region["coordinator"])
    page = client.get("/assignments/run?dry_run=1&seed=0").get_data(as_text=True)
    fingerprint = page.split('name="fingerprint" value="', 1)[1].split('"', 1)[0]
    response = auth.post("/assignments/run", {"seed": "0", "fingerprint": fingerprint})
    assert response.status_code == 302
    # The run is a job: its page tells what it did.
    job_page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Automatic assignment" in job_page
    assert "4 assignments created; 4 of 4 places filled." in job_page
    for program in region["programs"]:
        rows = assignments_of(program)
        assert len(rows) == 2
        assert len({a.expert_id for a in rows}) == 2
        assert all(a.status == AssignmentStatus.OFFERED and a.due_on for a in rows)
        assert [a.seat for a in rows] == [1, 2]
    loads = db.session.execute(
        select(Assignment.expert_id, func.count()).group_by(Assignment.expert_id)
    ).all()
    assert sorted(n for _, n in loads) == [1, 1, 2]  # 4 places over 3 experts, evenly


def test_apply_refuses_when_the_plan_changed_since_the_dry_run(client, auth, region):
    auth.login(region["coordinator"])
    response = auth.post("/assignments/run", {"seed": "0", "fingerprint": "0" * 64})
    assert response.status_code == 302
    job_page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "The job stopped: The situation changed since the dry run" in job_page
    assert "JobStop" not in job_page
    assert 'data-status="failed"' in job_page
    assert 'id="back-to-assignment"' in job_page
    assert count_assignments() == 0


def test_capacity_check_names_the_shortfall(client, auth, session):
    coordinator = CoordinatorFactory()
    for i in range(3):
        program_in_review(coordinator, title=f"Хор {i}", direction=Direction.ARTS)
    expert(directions=[Direction.ARTS], capacity=2)
    auth.login(coordinator)
    page = client.get("/assignments/run").get_data(as_text=True)
    shortfall = page.split('id="shortfall"', 1)[1].split("</div>", 1)[0]
    assert "arts: 3 programs need 6 places, experts have 2" in shortfall
    home = client.get("/coordinator").get_data(as_text=True)
    assert 'id="shortfall"' in home


def test_manual_page_lists_candidates_with_reasons(client, auth, region):
    colleague = expert(municipality=region["home"], full_name="Местный эксперт")
    artist = expert(directions=[Direction.ARTS], full_name="Художник")
    program = region["programs"][0]
    auth.login(region["coordinator"])
    page = client.get(f"/reviews/{program.current_review_id}/experts").get_data(as_text=True)

    def row(user):
        return page.split(f'data-expert="{user.id}"', 1)[1].split("</tr>", 1)[0]

    assert str(Reason.SAME_MUNICIPALITY.label) in row(colleague)
    assert "Assign" in row(region["experts"][0])
    # An expert of another direction is counted, not listed.
    assert f'data-expert="{artist.id}"' not in page
    assert "Experts of other directions, not listed: 1." in page


def test_manual_assignment_checks_the_rules(client, auth, region):
    program = region["programs"][0]
    colleague = expert(municipality=region["home"])
    auth.login(region["coordinator"])
    refused = auth.post(
        f"/reviews/{program.current_review_id}/experts", {"expert_id": str(colleague.id)}
    )
    assert refused.status_code == 400
    assert "is from the program's municipality" in refused.get_data(as_text=True)
    assert count_assignments() == 0
    ok = auth.post(
        f"/reviews/{program.current_review_id}/experts",
        {"expert_id": str(region["experts"][0].id)},
    )
    assert ok.status_code == 302
    assert [a.expert_id for a in assignments_of(program)] == [region["experts"][0].id]


def test_expert_working_in_the_organization_is_never_assigned(session):
    coordinator = CoordinatorFactory()
    program = program_in_review(coordinator)
    insider = expert(municipality=MunicipalityFactory())
    insider.expert_profile.home_organization_id = program.organization_id
    outsider = expert(municipality=MunicipalityFactory())
    db.session.flush()
    services.run_assignment(coordinator, apply=True)
    assert [a.expert_id for a in assignments_of(program)] == [outsider.id]


def test_decline_brings_a_replacement_who_is_never_the_decliner(session, region):
    coordinator = region["coordinator"]
    program = region["programs"][0]
    services.run_assignment(coordinator, apply=True)
    first = assignments_of(program)[0]
    decliner = first.expert
    replacements = services.decline_assignment(
        first, decliner, "Знаком с педагогами организации", conflict=True
    )
    assert first.status == AssignmentStatus.DECLINED and first.conflict_declared
    assert len(replacements) == 1
    live = [a for a in assignments_of(program) if a.status == AssignmentStatus.OFFERED]
    assert len(live) == 2 and decliner.id not in {a.expert_id for a in live}
    # A later run never offers the same review to the decliner again.
    services.run_assignment(coordinator, apply=True)
    assert decliner.id not in {
        a.expert_id for a in assignments_of(program) if a.status != AssignmentStatus.DECLINED
    }


def test_removal_needs_a_reason_and_brings_a_replacement(client, auth, region):
    program = region["programs"][0]
    services.run_assignment(region["coordinator"], apply=True)
    target = assignments_of(program)[0]
    auth.login(region["coordinator"])
    empty = auth.post(f"/assignments/{target.id}/remove", {"reason": ""})
    assert empty.status_code == 400
    assert target.status == AssignmentStatus.OFFERED
    done = auth.post(f"/assignments/{target.id}/remove", {"reason": "Не отвечает"})
    assert done.status_code == 302
    db.session.refresh(target)
    assert target.status == AssignmentStatus.WITHDRAWN
    live = [a for a in assignments_of(program) if a.status == AssignmentStatus.OFFERED]
    assert len(live) == 2 and target.expert_id not in {a.expert_id for a in live}


def test_suspended_and_unavailable_experts_are_skipped(session):
    from datetime import timedelta

    from review_portal.experts.models import ExpertUnavailability

    coordinator = CoordinatorFactory()
    program = program_in_review(coordinator)
    suspended = expert(municipality=MunicipalityFactory())
    suspended.expert_profile.suspended = True
    away = expert(municipality=MunicipalityFactory())
    today = services.local_today()
    db.session.add(
        ExpertUnavailability(
            expert_id=away.expert_profile.id,
            starts_on=today + timedelta(days=2),
            ends_on=today + timedelta(days=5),
        )
    )
    fine = expert(municipality=MunicipalityFactory())
    db.session.flush()
    services.run_assignment(coordinator, apply=True)
    assert [a.expert_id for a in assignments_of(program)] == [fine.id]


def test_capacity_is_never_exceeded(session):
    coordinator = CoordinatorFactory()
    programs = [program_in_review(coordinator, title=f"П{i}") for i in range(4)]
    busy = expert(municipality=MunicipalityFactory(), capacity=1)
    other = expert(municipality=MunicipalityFactory(), capacity=1)
    result = services.run_assignment(coordinator, apply=True)
    assert result.plan.filled == 2
    loads = {e.id: 0 for e in (busy, other)}
    for program in programs:
        for a in assignments_of(program):
            loads[a.expert_id] += 1
    assert loads == {busy.id: 1, other.id: 1}


def test_applicants_and_experts_cannot_open_assignment_pages(client, auth, region):
    program = region["programs"][0]
    for user in (ApplicantFactory(organization=program.organization), region["experts"][0]):
        auth.login(user)
        assert client.get("/assignments/run").status_code == 403
        assert client.get(f"/reviews/{program.current_review_id}/experts").status_code == 403
        auth.logout()


def test_capacity_check_from_the_database_equals_the_run_s(session):
    """``load_capacity_check`` counts in the database what ``capacity_check`` counts on
    ``load_context``'s snapshots: the same figures on a mixed region (experts on reviews,
    declined, over capacity, suspended, switched off, of two directions; extra experts)."""
    from review_portal.assignment.capacity import capacity_check, load_capacity_check
    from review_portal.assignment.eligibility import load_context
    from review_portal.reviews.models import Review

    coordinator = CoordinatorFactory()
    programs = [
        program_in_review(coordinator, title=f"Программа {i}", direction=direction)
        for i, direction in enumerate(
            [Direction.TECHNICAL, Direction.TECHNICAL, Direction.ARTS, Direction.ARTS]
        )
    ]
    busy = expert(directions=[Direction.TECHNICAL, Direction.ARTS], capacity=1)
    free = expert(directions=[Direction.TECHNICAL], capacity=4)
    suspended = expert(directions=[Direction.ARTS], capacity=9)
    suspended.expert_profile.suspended = True
    off = expert(directions=[Direction.TECHNICAL], capacity=9)
    off.active = False
    expert(directions=[Direction.ARTS], capacity=3)
    reviews = [db.session.get(Review, p.current_review_id) for p in programs]
    add_assignment(reviews[0], busy, 1)
    add_assignment(reviews[0], free, 2, status=AssignmentStatus.OFFERED)
    add_assignment(reviews[1], busy, 1, status=AssignmentStatus.DECLINED)
    add_assignment(reviews[2], free, 1)
    add_assignment(reviews[2], suspended, 2)
    reviews[3].extra_experts = 1
    db.session.flush()

    expected = capacity_check(*load_context(services.local_today()))
    assert load_capacity_check() == expected
    technical = next(c for c in expected if c.direction == Direction.TECHNICAL)
    # Programs 0 (full) and 1 (two places); busy is over capacity, free has 4 - 2.
    assert (technical.programs, technical.demand, technical.capacity) == (1, 2, 2)
