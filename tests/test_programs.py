"""Programs through the web interface: the card and its rules, submission and versions,
screening, the timeline, withdrawal, and who may see or touch what."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from review_portal.enums import AccountStatus, Direction, Level, StudyForm
from review_portal.extensions import db
from review_portal.notifications.models import Notification, OutboxMessage
from review_portal.programs.models import Program, ProgramVersion
from review_portal.reviews.models import Review
from review_portal.workflow import ReviewState
from tests.factories import (
    ApplicantFactory,
    CoordinatorFactory,
    ExpertUserFactory,
    MunicipalityFactory,
    MunicipalViewerFactory,
    OrganizationFactory,
    ProgramFactory,
    attach_document,
)


@pytest.fixture(autouse=True)
def _english(english):
    pass


def card(**overrides) -> dict:
    data = {
        "title": "Юный конструктор",
        "direction": Direction.TECHNICAL.value,
        "level": Level.BASIC.value,
        "program_type": "general_developmental",
        "requested_registry_kind": "certified",
        "age_min": "8",
        "age_max": "12",
        "total_hours": "144",
        "duration_months": "9",
        "study_form": StudyForm.FULL_TIME.value,
        "group_min": "10",
        "group_max": "15",
        "annotation": "Программа развивает инженерное мышление.",
    }
    data.update(overrides)
    return data


def program_count() -> int:
    return db.session.execute(select(func.count(Program.id))).scalar_one()


@pytest.fixture
def provider(session):
    return ApplicantFactory()


def create_via_web(auth, provider, **overrides):
    data = card(municipality_id=str(provider.organization.municipality_id), **overrides)
    return auth.post("/programs/new", data)


def test_provider_creates_a_program_with_every_field(client, auth, provider):
    auth.login(provider)
    response = create_via_web(
        auth, provider, uses_distance_learning="y", adapted_for_disabilities="y", multi_level="y"
    )
    assert response.status_code == 302
    program = db.session.execute(select(Program)).scalar_one()
    assert response.headers["Location"].endswith(f"/programs/{program.id}")
    assert program.multi_level is True
    page = auth.client.get(f"/programs/{program.id}").get_data(as_text=True)
    assert re.search(
        r'Multi-level program</dt><dd class="[^"]*" id="card-multi-level">yes</dd>', page
    )
    assert (program.title, program.direction, program.level) == (
        "Юный конструктор",
        Direction.TECHNICAL,
        Level.BASIC,
    )
    assert (program.age_min, program.age_max, program.total_hours) == (8, 12, 144)
    assert program.uses_distance_learning and program.adapted_for_disabilities
    assert not program.network_form
    assert program.organization_id == provider.organization_id
    assert program.state == ReviewState.DRAFT


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"age_min": "2"}, "age_min", "The age must be from 3 to 18 years."),
        ({"age_max": "19"}, "age_max", "The age must be from 3 to 18 years."),
        (
            {"age_min": "12", "age_max": "8"},
            "age_max",
            "The maximum age cannot be less than the minimum age.",
        ),
        ({"total_hours": "0"}, "total_hours", "The number of hours must be greater than zero."),
        (
            {"group_min": "20", "group_max": "10"},
            "group_max",
            "The maximum group size cannot be less than the minimum.",
        ),
        ({"title": ""}, "title", "This field is required."),
        ({"direction": ""}, "direction", "This field is required."),
        ({"age_min": "восемь"}, "age_min", "Not a valid integer value."),
    ],
)
def test_invalid_card_shows_the_message_next_to_the_field_and_keeps_input(
    client, auth, provider, overrides, field, message
):
    auth.login(provider)
    response = create_via_web(auth, provider, **overrides)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'id="{field}-error"' in page
    error_block = page.split(f'id="{field}-error"', 1)[1].split("</div>", 1)[0]
    assert message in error_block
    assert 'value="Программа развивает' not in page  # textarea content, not an attribute
    assert "Программа развивает инженерное мышление." in page  # what was typed stays
    assert program_count() == 0


def test_submit_requires_the_program_document(client, auth, provider):
    program = ProgramFactory(organization=provider.organization)
    auth.login(provider)
    response = auth.post(f"/programs/{program.id}/submit", token_from=f"/programs/{program.id}")
    assert response.status_code == 302
    page = client.get(f"/programs/{program.id}").get_data(as_text=True)
    assert "Upload the program document before submitting." in page
    assert program.state == ReviewState.DRAFT
    assert db.session.execute(select(func.count(ProgramVersion.id))).scalar_one() == 0


def submit_via_web(auth, program):
    return auth.post(f"/programs/{program.id}/submit", token_from=f"/programs/{program.id}")


def test_full_journey_submit_return_fix_resubmit_accept(client, auth, provider):
    """The issue's "done when": every step through the web, each on the timeline."""
    coordinator = CoordinatorFactory()
    program = ProgramFactory(organization=provider.organization, title="Шахматы")
    attach_document(program)

    auth.login(provider)
    assert submit_via_web(auth, program).status_code == 302
    assert program.state == ReviewState.SUBMITTED
    first = db.session.execute(select(ProgramVersion)).scalar_one()
    assert (first.number, first.title, len(first.documents)) == (1, "Шахматы", 1)
    auth.logout()

    auth.login(coordinator)
    queue = client.get("/screening").get_data(as_text=True)
    assert "Шахматы" in queue
    empty = auth.post(f"/programs/{program.id}/return", {"reason": "  "})
    assert empty.status_code == 400
    assert program.state == ReviewState.SUBMITTED
    returned = auth.post(f"/programs/{program.id}/return", {"reason": "Нет учебного плана"})
    assert returned.status_code == 302
    assert program.state == ReviewState.RETURNED
    mail = db.session.execute(
        select(OutboxMessage).where(OutboxMessage.to_email == provider.email)
    ).scalar_one()
    assert "Нет учебного плана" in mail.body
    assert db.session.execute(
        select(Notification).where(Notification.user_id == provider.id)
    ).scalar_one()
    auth.logout()

    auth.login(provider)
    page = client.get(f"/programs/{program.id}").get_data(as_text=True)
    assert "Нет учебного плана" in page
    edited = auth.post(
        f"/programs/{program.id}/edit",
        card(title="Шахматы для всех", municipality_id=str(program.municipality_id)),
    )
    assert edited.status_code == 302
    assert submit_via_web(auth, program).status_code == 302
    assert program.state == ReviewState.SUBMITTED
    versions = db.session.execute(select(ProgramVersion).order_by(ProgramVersion.number)).scalars()
    assert [(v.number, v.title) for v in versions] == [(1, "Шахматы"), (2, "Шахматы для всех")]
    auth.logout()

    auth.login(coordinator)
    assert auth.post(f"/programs/{program.id}/accept").status_code == 302
    review = program.current_review
    assert review.state == ReviewState.IN_REVIEW
    assert (review.rubric_id, review.rubric_version) == ("dop-general", 1)

    page = client.get(f"/programs/{program.id}").get_data(as_text=True)
    timeline = page.split('id="timeline"', 1)[1].split("</ol>", 1)[0]
    steps = [line for line in timeline.split("<li") if "→" in line]
    assert len(steps) == 5  # submit, return, edit, submit, accept
    assert "Нет учебного плана" in timeline


def test_submitted_version_never_changes_after_edits(client, auth, provider):
    coordinator = CoordinatorFactory()
    program = ProgramFactory(organization=provider.organization, title="Хор", total_hours=72)
    attach_document(program)
    auth.login(provider)
    submit_via_web(auth, program)
    auth.logout()
    auth.login(coordinator)
    auth.post(f"/programs/{program.id}/return", {"reason": "Уточнить часы"})
    auth.logout()
    auth.login(provider)
    auth.post(
        f"/programs/{program.id}/edit",
        card(
            title="Хор мальчиков", total_hours="100", municipality_id=str(program.municipality_id)
        ),
    )
    version = db.session.execute(select(ProgramVersion)).scalar_one()
    db.session.refresh(version)
    assert (version.title, version.total_hours) == ("Хор", 72)
    page = client.get(f"/programs/{program.id}/versions/1").get_data(as_text=True)
    assert "Хор</h1>" in page and "Хор мальчиков" not in page


def test_program_cannot_be_edited_while_under_review(client, auth, provider):
    program = ProgramFactory(organization=provider.organization)
    attach_document(program)
    auth.login(provider)
    submit_via_web(auth, program)
    response = auth.post(f"/programs/{program.id}/edit", card(title="Другое"))
    assert response.status_code == 403
    assert client.get(f"/programs/{program.id}/edit").status_code == 403
    db.session.refresh(program)
    assert program.title != "Другое"


def test_withdraw_with_a_reason_is_on_the_timeline(client, auth, provider):
    program = ProgramFactory(organization=provider.organization)
    attach_document(program)
    auth.login(provider)
    submit_via_web(auth, program)
    response = auth.post(
        f"/programs/{program.id}/withdraw",
        {"reason": "Педагог уволился"},
        token_from=f"/programs/{program.id}",
    )
    assert response.status_code == 302
    assert program.state == ReviewState.WITHDRAWN
    page = client.get(f"/programs/{program.id}").get_data(as_text=True)
    assert "Педагог уволился" in page
    again = auth.post(f"/programs/{program.id}/withdraw", {})
    assert again.status_code == 403


def test_accept_is_refused_without_a_rubric_for_the_type(
    app, client, auth, provider, tmp_path, monkeypatch
):
    # A rubric folder holding only the general developmental rubric: nothing covers
    # pre-professional programs.
    import shutil

    from review_portal.rubrics.registry import RUBRIC_DIR

    folder = tmp_path / "rubrics"
    folder.mkdir()
    shutil.copy(RUBRIC_DIR / "dop-general.yaml", folder / "dop-general.yaml")
    monkeypatch.setitem(app.config, "RUBRIC_DIR", str(folder))
    program = ProgramFactory(organization=provider.organization, program_type="pre_professional")
    attach_document(program)
    auth.login(provider)
    submit_via_web(auth, program)
    auth.logout()
    auth.login(CoordinatorFactory())
    auth.post(f"/programs/{program.id}/accept")
    assert program.state == ReviewState.SUBMITTED
    page = client.get(f"/programs/{program.id}").get_data(as_text=True)
    assert "No rubric is active for this program type" in page


def test_screening_queue_filters(client, auth, session):
    north, south = MunicipalityFactory(name="Север"), MunicipalityFactory(name="Юг")
    programs = {}
    for title, municipality, direction in [
        ("Робототехника", north, Direction.TECHNICAL),
        ("Вокал", south, Direction.ARTS),
        ("Туризм", north, Direction.TOURISM_LOCAL_HISTORY),
    ]:
        organization = OrganizationFactory(municipality=municipality, short_name=f"Центр {title}")
        program = ProgramFactory(
            organization=organization, title=title, direction=direction, municipality=municipality
        )
        attach_document(program)
        from review_portal.programs.services import submit_program

        submit_program(program, ApplicantFactory(organization=organization))
        programs[title] = program
    ProgramFactory(title="Черновик")  # drafts are not in the queue
    auth.login(CoordinatorFactory())

    def listed(query: str) -> set[str]:
        page = client.get(f"/screening?{query}").get_data(as_text=True)
        return {t for t in [*programs, "Черновик"] if f">{t}</a>" in page}

    assert listed("") == {"Робототехника", "Вокал", "Туризм"}
    assert listed(f"municipality_id={north.id}") == {"Робототехника", "Туризм"}
    assert listed("direction=arts") == {"Вокал"}
    assert listed("organization=Центр+Туризм") == {"Туризм"}
    assert listed("submitted_from=2000-01-01&submitted_to=2000-01-02") == set()


def test_users_of_another_organization_cannot_touch_a_program_by_guessing_ids(
    client, auth, provider
):
    program = ProgramFactory(organization=provider.organization)
    attach_document(program)
    stranger = ApplicantFactory()
    auth.login(stranger)
    pid = program.id
    assert client.get(f"/programs/{pid}").status_code == 403
    assert client.get(f"/programs/{pid}/edit").status_code == 403
    assert auth.post(f"/programs/{pid}/edit", card()).status_code == 403
    assert auth.post(f"/programs/{pid}/submit").status_code == 403
    assert auth.post(f"/programs/{pid}/withdraw").status_code == 403
    assert client.get(f"/programs/{pid}/versions/1").status_code == 403
    assert client.get(f"/programs/{pid + 1000}").status_code == 404
    listing = client.get("/programs/").get_data(as_text=True)
    assert program.title not in listing
    assert program.state == ReviewState.DRAFT


def test_municipal_viewer_reads_only_their_municipality(client, auth, session):
    home = MunicipalityFactory(name="Вязьма")
    viewer = MunicipalViewerFactory(municipality=home)
    ours = ProgramFactory(
        organization=OrganizationFactory(municipality=home), title="Наша программа"
    )
    theirs = ProgramFactory(title="Чужая программа")
    auth.login(viewer)
    listing = client.get("/programs/").get_data(as_text=True)
    assert "Наша программа" in listing and "Чужая программа" not in listing
    assert client.get(f"/programs/{ours.id}").status_code == 200
    assert client.get(f"/programs/{theirs.id}").status_code == 403
    page = client.get(f"/programs/{ours.id}").get_data(as_text=True)
    assert f"/programs/{ours.id}/edit" not in page and "/submit" not in page
    assert auth.post(f"/programs/{ours.id}/edit", card()).status_code == 403


def test_expert_sees_only_programs_they_are_assigned_to(client, auth, session):
    from datetime import date

    from review_portal.assignment.models import Assignment

    expert = ExpertUserFactory()
    program = ProgramFactory()
    other = ProgramFactory()
    db.session.add(
        Assignment(review=program.current_review, expert_id=expert.id, seat=1, due_on=date.today())
    )
    db.session.flush()
    auth.login(expert)
    assert client.get(f"/programs/{program.id}").status_code == 200
    assert client.get(f"/programs/{other.id}").status_code == 403


def test_pending_organization_cannot_create_programs(client, auth, session):
    applicant = ApplicantFactory(organization=OrganizationFactory(status=AccountStatus.PENDING))
    auth.login(applicant)
    assert client.get("/programs/new").status_code == 403


def test_resubmission_after_revision_required_starts_a_new_round(session):
    from review_portal.programs.services import submit_program
    from review_portal.workflow import advance

    program = ProgramFactory()
    attach_document(program)
    provider = ApplicantFactory(organization=program.organization)
    coordinator = CoordinatorFactory()
    first = submit_program(program, provider)
    advance(first, ReviewState.IN_REVIEW, coordinator)
    advance(first, ReviewState.AWAITING_DECISION, None)
    advance(first, ReviewState.REVISION_REQUIRED, coordinator)
    second = submit_program(program, provider)
    assert second.id != first.id and second.round == 2
    assert program.current_review_id == second.id
    assert first.state == ReviewState.REVISION_REQUIRED
    assert [v.number for v in program.versions] == [1, 2]
    assert db.session.execute(select(func.count(Review.id))).scalar_one() == 2
