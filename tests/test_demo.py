"""The demo region (``seed-demo``): what it creates, that a second run adds nothing, and
that the command refuses the production configuration."""

from __future__ import annotations

from collections import Counter
from datetime import date

from sqlalchemy import func, select

from review_portal import create_app
from review_portal.accounts.models import User, UserRole
from review_portal.accounts.services import verify_password
from review_portal.assignment.models import Assignment
from review_portal.audit.models import AuditEvent
from review_portal.audit.verification import verify_chain
from review_portal.config import ProductionConfig
from review_portal.demo import (
    ADMIN_EMAIL,
    COORDINATOR_EMAIL,
    DEMO_PASSWORD,
    MUNICIPAL_EMAIL,
    PENDING_EXPERT_EMAIL,
    PENDING_PROVIDER_EMAIL,
    seed_demo_region,
)
from review_portal.enums import AccountStatus, Direction, OrganizationType, Role
from review_portal.experts.models import ExpertProfile
from review_portal.extensions import db
from review_portal.organizations.models import Municipality, Organization
from review_portal.organizations.validators import is_valid_inn, is_valid_ogrn
from review_portal.programs.models import Program, ProgramData
from review_portal.reviews.models import Review
from review_portal.settings.services import get_setting
from review_portal.workflow import ReviewState

STATES = {
    ReviewState.DRAFT,
    ReviewState.SUBMITTED,
    ReviewState.RETURNED,
    ReviewState.IN_REVIEW,
    ReviewState.WITHDRAWN,
}
#: States reached by the demo's scored reviews (never provider 1's, who keeps the others).
SCORED_STATES = {
    ReviewState.AWAITING_DECISION,
    ReviewState.RECONCILIATION,
    ReviewState.ADMITTED,
    ReviewState.REJECTED,
    ReviewState.REVISION_REQUIRED,
}


def count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def table_counts() -> dict[str, int]:
    """Rows in every table of the schema."""
    return {
        table.name: db.session.execute(select(func.count()).select_from(table)).scalar_one()
        for table in db.metadata.sorted_tables
    }


def programs_by_state() -> dict[ReviewState, list[Program]]:
    result: dict[ReviewState, list[Program]] = {}
    for program in db.session.execute(select(Program).order_by(Program.id)).scalars():
        result.setdefault(program.state, []).append(program)
    return result


def users_with_role(role: Role) -> list[User]:
    return list(
        db.session.execute(
            select(User).join(UserRole).where(UserRole.role == role).order_by(User.id)
        ).scalars()
    )


def test_seed_demo_region_creates_27_municipalities_and_region_settings(session):
    seed_demo_region()

    names = set(db.session.execute(select(Municipality.name)).scalars())
    assert len(names) == 27 == count(Municipality)
    assert {"город Смоленск", "город Десногорск", "Вяземский район", "Холм-Жирковский район"} <= (
        names
    )
    assert get_setting("region_code") == "67"
    assert get_setting("region_name") == "Смоленская область"
    assert get_setting("center_name") == (
        "Региональный модельный центр дополнительного образования детей Смоленской области"
    )
    assert get_setting("head_name")
    assert get_setting("head_position")


def test_seed_demo_region_creates_organizations_of_every_type_with_valid_numbers(session):
    seed_demo_region()

    approved = list(
        db.session.execute(
            select(Organization).where(Organization.status == AccountStatus.APPROVED)
        ).scalars()
    )
    assert len(approved) >= 20
    assert {o.kind for o in approved} == set(OrganizationType)
    for organization in approved:
        individual = organization.kind == OrganizationType.INDIVIDUAL_ENTREPRENEUR
        assert is_valid_inn(organization.inn, 12 if individual else 10), organization.inn
        assert is_valid_ogrn(organization.ogrn), organization.ogrn
        assert len(organization.ogrn) == (15 if individual else 13)
    assert len({o.municipality_id for o in approved}) >= 8
    # Each organization has exactly one approved applicant.
    applicants = Counter(
        u.organization_id for u in users_with_role(Role.APPLICANT) if u.is_approved
    )
    assert all(applicants[o.id] == 1 for o in approved)


def test_seed_demo_region_creates_experts_covering_every_direction(session):
    seed_demo_region()

    experts = [u for u in users_with_role(Role.EXPERT) if u.is_approved]
    assert len(experts) >= 30
    assert all(u.expert_profile is not None for u in experts)
    per_direction = Counter(d for u in experts for d in u.expert_profile.directions)
    assert set(per_direction) == set(Direction)
    assert min(per_direction.values()) >= 4
    assert len({u.expert_profile.municipality_id for u in experts}) >= 10
    assert all(u.expert_profile.home_organization_name for u in experts)
    # Some work at a provider on the portal, the others elsewhere (with a valid ИНН).
    assert any(u.expert_profile.home_organization_id for u in experts)
    assert all(
        is_valid_inn(u.expert_profile.home_organization_inn)
        for u in experts
        if u.expert_profile.home_organization_inn
    )


def test_seed_demo_region_creates_approved_staff_and_pending_registrations(session):
    seed_demo_region()

    coordinator = db.session.execute(
        select(User).where(User.email == COORDINATOR_EMAIL)
    ).scalar_one()
    admin = db.session.execute(select(User).where(User.email == ADMIN_EMAIL)).scalar_one()
    municipal = db.session.execute(select(User).where(User.email == MUNICIPAL_EMAIL)).scalar_one()
    assert coordinator.is_staff and coordinator.roles == {Role.COORDINATOR}
    assert admin.is_staff and admin.roles == {Role.ADMIN}
    assert municipal.is_approved and municipal.roles == {Role.MUNICIPAL}
    assert municipal.municipality is not None
    assert verify_password(coordinator, DEMO_PASSWORD)

    pending = {
        u.email: u
        for u in db.session.execute(
            select(User).where(User.status == AccountStatus.PENDING)
        ).scalars()
    }
    assert set(pending) == {PENDING_PROVIDER_EMAIL, PENDING_EXPERT_EMAIL}
    provider, expert = pending[PENDING_PROVIDER_EMAIL], pending[PENDING_EXPERT_EMAIL]
    assert provider.consent_at is not None and expert.consent_at is not None
    assert provider.organization.status == AccountStatus.PENDING
    assert is_valid_inn(provider.organization.inn, 10)
    assert expert.expert_profile.directions


def test_seed_demo_region_creates_programs_in_every_state(session):
    seed_demo_region()

    by_state = programs_by_state()
    assert set(by_state) == STATES | SCORED_STATES

    for program in by_state[ReviewState.DRAFT]:
        assert program.versions == []
        assert program.current_review.round == 1
    for state in (ReviewState.SUBMITTED, ReviewState.RETURNED, ReviewState.IN_REVIEW):
        for program in by_state[state]:
            version = program.current_review.version
            assert version is not None and version.number == len(program.versions)
            assert {n: getattr(version, n) for n in ProgramData.DATA_FIELDS} == program.data()
    for program in by_state[ReviewState.RETURNED]:
        last = program.current_review.transitions[-1]
        assert last.name == "return_for_fixes" and last.reason
        assert last.actor_id == users_with_role(Role.COORDINATOR)[0].id
    for program in by_state[ReviewState.WITHDRAWN]:
        assert program.current_review.transitions[-1].name == "withdraw"

    # One program was returned, fixed and submitted again: a second version.
    resubmitted = [p for p in by_state[ReviewState.SUBMITTED] if len(p.versions) == 2]
    assert len(resubmitted) == 1
    assert [t.name for t in resubmitted[0].current_review.transitions] == [
        "submit",
        "return_for_fixes",
        "edit",
        "submit",
    ]


def test_seed_demo_region_assigns_two_eligible_experts_per_review(session):
    seed_demo_region()

    in_review = programs_by_state()[ReviewState.IN_REVIEW]
    assert len(in_review) >= 6
    for program in in_review:
        assignments = program.current_review.assignments
        assert sorted(a.seat for a in assignments) == [1, 2]
        for assignment in assignments:
            profile = assignment.expert.expert_profile
            assert program.direction in profile.directions
            assert profile.municipality_id != program.municipality_id
            assert profile.home_organization_id != program.organization_id
            assert assignment.due_on > date.today()
    # Every demo assignment is open (offered or accepted), so each counts in the load.
    open_load = Counter(db.session.execute(select(Assignment.expert_id)).scalars())
    profiles = {p.user_id: p for p in db.session.execute(select(ExpertProfile)).scalars()}
    assert all(load <= profiles[expert_id].capacity for expert_id, load in open_load.items())


def test_seed_demo_region_scores_some_reviews_through_the_rules(session):
    seed_demo_region()

    by_state = programs_by_state()
    assert {state: len(by_state[state]) for state in SCORED_STATES} == dict.fromkeys(
        SCORED_STATES, 1
    )
    waiting = by_state[ReviewState.AWAITING_DECISION][0].current_review
    assert waiting.divergent is False and waiting.final_result["total"] == "15.50"
    divergent = by_state[ReviewState.RECONCILIATION][0].current_review
    assert divergent.divergent is True and divergent.extra_experts == 1
    overridden = by_state[ReviewState.REVISION_REQUIRED][0].current_review
    assert overridden.computed_decision.value == "admitted"
    assert overridden.override_reason
    admitted = by_state[ReviewState.ADMITTED][0].current_review
    assert admitted.decision.value == "admitted" and admitted.override_reason is None


def test_seed_demo_region_publishes_its_admitted_programs_in_the_registry(session):
    from review_portal.conclusions.permissions import is_in_published_registry
    from review_portal.enums import RegistryKind
    from review_portal.registry.models import RegistrySnapshot
    from review_portal.registry.queries import RegistryFilters, page_items

    seed_demo_region()

    (admitted,) = programs_by_state()[ReviewState.ADMITTED]
    (snapshot,) = db.session.execute(select(RegistrySnapshot)).scalars()
    assert (snapshot.kind, snapshot.number, snapshot.entry_count) == (
        RegistryKind.CERTIFIED,
        1,
        1,
    )
    (item,) = page_items(snapshot.id, RegistryFilters()).items
    assert (item["program_id"], item["title"]) == (admitted.id, admitted.title)
    assert item["registry_number"] == f"{get_setting('region_code')}-С-000001"
    assert is_in_published_registry(admitted)


def test_seed_demo_region_keeps_audit_chain_intact(session):
    seed_demo_region()

    report = verify_chain()
    assert report.ok, report.problem
    actions = Counter(db.session.execute(select(AuditEvent.action)).scalars())
    assert actions["program.create"] == count(Program)
    by_state = programs_by_state()
    screened = sum(len(by_state[s]) for s in SCORED_STATES | {ReviewState.IN_REVIEW})
    assert actions["review.screen_ok"] == screened
    assert actions["assignment.create"] == count(Assignment)


def test_seed_demo_region_run_twice_creates_nothing_new(session):
    first = seed_demo_region()
    before = table_counts()

    second = seed_demo_region()

    assert second == first
    assert table_counts() == before
    assert before["programs"] > 0 and before["users"] > 0


def _production_app(app, monkeypatch):
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    # get_config("production") writes these class attributes; restore them afterwards.
    monkeypatch.setattr(ProductionConfig, "SECRET_KEY", ProductionConfig.SECRET_KEY)
    monkeypatch.setattr(
        ProductionConfig, "SQLALCHEMY_DATABASE_URI", ProductionConfig.SQLALCHEMY_DATABASE_URI
    )
    monkeypatch.setattr(ProductionConfig, "AUDIT_ANCHOR_KEY", ProductionConfig.AUDIT_ANCHOR_KEY)
    monkeypatch.setenv("SECRET_KEY", "a-production-secret-of-forty-characters!!")
    monkeypatch.setenv("DATABASE_URL", url)
    return create_app("production", **PRODUCTION_SETTINGS)


#: What a production start needs besides its secrets (checked at start-up).
PRODUCTION_SETTINGS = {
    "AUDIT_ANCHOR_KEY": "an-audit-anchor-key-of-forty-characters!",
    "PUBLIC_URL": "https://nok.rmc67.ru",
    "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/14",
}


def test_seed_demo_cli_under_production_config_refuses_and_writes_nothing(app, monkeypatch):
    production = _production_app(app, monkeypatch)
    assert production.config["PRODUCTION"] is True
    try:
        with production.app_context():
            before = table_counts()
            db.session.remove()

            result = production.test_cli_runner().invoke(args=["seed-demo"])

            assert result.exit_code == 1
            assert "refuses to run under the production configuration" in result.output
            assert "Demo region is ready" not in result.output
            assert table_counts() == before
            assert (
                db.session.execute(
                    select(func.count()).select_from(User).where(User.email == COORDINATOR_EMAIL)
                ).scalar_one()
                == 0
            )
            db.session.remove()
    finally:
        with production.app_context():
            db.engine.dispose()


def test_seed_demo_cli_under_testing_config_prints_demo_accounts(app, session):
    result = app.test_cli_runner().invoke(args=["seed-demo"])

    assert result.exit_code == 0, result.output
    assert "Demo region is ready" in result.output
    demo_users = list(
        db.session.execute(
            select(User).where(
                User.email.like("%@demo.rmc67.ru"), User.status == AccountStatus.APPROVED
            )
        ).scalars()
    )
    assert len(demo_users) >= 53
    lines = result.output.splitlines()
    for user in demo_users:
        assert any(user.email in line and DEMO_PASSWORD in line for line in lines), user.email
    assert COORDINATOR_EMAIL in result.output
    assert PENDING_PROVIDER_EMAIL not in result.output


def test_seed_demo_region_gives_provider1_programs_in_every_state(session):
    seed_demo_region()

    provider1 = db.session.execute(
        select(User).where(User.email == "provider1@demo.rmc67.ru")
    ).scalar_one()
    states = set(
        db.session.execute(
            select(Review.state)
            .join(Program, Program.current_review_id == Review.id)
            .where(Program.organization_id == provider1.organization_id)
        ).scalars()
    )
    assert states == STATES
