"""Experts: the coordinators' registry (filters, a fixed number of queries, CSV export and
import), suspension and its effect on eligibility, periods of unavailability, the expert's
answer to an assignment (accept, decline with a reason or a conflict of interest) and the
expert's home page."""

from __future__ import annotations

import csv
import html as html_lib
import io
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from review_portal.accounts.models import User
from review_portal.assignment.eligibility import Reason, ineligibility_reasons, load_context
from review_portal.assignment.models import Assignment
from review_portal.assignment.services import local_today
from review_portal.audit.models import AuditEvent
from review_portal.enums import AccountStatus, AssignmentStatus, Direction, Role
from review_portal.experts import queries, services
from review_portal.experts.models import ExpertProfile, ExpertUnavailability
from review_portal.extensions import db
from review_portal.notifications.models import OutboxMessage
from tests.factories import (
    ApplicantFactory,
    CoordinatorFactory,
    MunicipalityFactory,
    MunicipalViewerFactory,
    OrganizationFactory,
    expert,
    program_in_review,
)


@pytest.fixture(autouse=True)
def _english(english):
    pass


def offer(program, user, *, seat=None, status=AssignmentStatus.OFFERED, due_in=10):
    """An assignment of ``user`` to the program's current review, made directly."""
    review_id = program.current_review_id
    if seat is None:
        seat = (
            db.session.execute(
                select(sa.func.max(Assignment.seat)).where(Assignment.review_id == review_id)
            ).scalar_one()
            or 0
        ) + 1
    assignment = Assignment(
        review_id=review_id,
        expert_id=user.id,
        seat=seat,
        status=status,
        due_on=local_today() + timedelta(days=due_in),
    )
    db.session.add(assignment)
    db.session.flush()
    return assignment


def reasons_for(user, program) -> list[Reason]:
    reviews, experts = load_context(local_today(), [program.current_review_id])
    [review] = reviews
    [info] = [e for e in experts if e.id == user.id]
    return ineligibility_reasons(info, review)


def names(**filters) -> set[str]:
    stmt = queries.expert_registry_query(**filters)
    return {profile.user.full_name for profile in db.session.execute(stmt).scalars()}


def audit(action: str) -> list[AuditEvent]:
    return list(
        db.session.execute(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        ).scalars()
    )


def page(response) -> str:
    return response.get_data(as_text=True)


# --- the registry -------------------------------------------------------------------------


@pytest.fixture
def registry(session):
    """Four experts of two municipalities in every status, one at capacity."""
    north, south = MunicipalityFactory(name="Велиж"), MunicipalityFactory(name="Демидов")
    program = program_in_review(municipality=MunicipalityFactory(name="Смоленск"))
    free = expert(
        full_name="Алексеева Анна",
        municipality=north,
        directions=[Direction.TECHNICAL],
        capacity=2,
    )
    full = expert(
        full_name="Борисов Борис",
        municipality=south,
        directions=[Direction.ARTS, Direction.TECHNICAL],
        capacity=1,
    )
    offer(program, full)
    pending = expert(
        full_name="Васильева Вера",
        municipality=north,
        directions=[Direction.ARTS],
        status=AccountStatus.PENDING,
    )
    suspended = expert(
        full_name="Григорьев Глеб", municipality=south, directions=[Direction.NATURAL_SCIENCE]
    )
    suspended.expert_profile.suspended = True
    suspended.expert_profile.home_organization_name = "Гимназия «Эврика»"
    db.session.flush()
    return {
        "north": north,
        "south": south,
        "program": program,
        "free": free,
        "full": full,
        "pending": pending,
        "suspended": suspended,
    }


def test_registry_filters_by_direction(registry):
    assert names(direction="arts") == {"Борисов Борис", "Васильева Вера"}
    assert names(direction=Direction.TECHNICAL) == {"Алексеева Анна", "Борисов Борис"}
    assert names(direction="physical_sports") == set()


def test_registry_filters_by_municipality(registry):
    assert names(municipality_id=registry["north"].id) == {"Алексеева Анна", "Васильева Вера"}
    assert names(municipality_id=registry["south"].id) == {"Борисов Борис", "Григорьев Глеб"}


def test_registry_filters_by_status(registry):
    assert names(status="pending") == {"Васильева Вера"}
    assert names(status="suspended") == {"Григорьев Глеб"}
    assert names(status="active") == {"Алексеева Анна", "Борисов Борис"}


def test_registry_filters_by_load(registry):
    assert names(load="full") == {"Борисов Борис"}
    assert names(load="free") == {"Алексеева Анна", "Васильева Вера", "Григорьев Глеб"}
    assert names(load="idle") == {"Алексеева Анна", "Васильева Вера", "Григорьев Глеб"}
    offer(registry["program"], registry["free"])
    assert names(load="idle") == {"Васильева Вера", "Григорьев Глеб"}
    assert names(load="free") == {"Алексеева Анна", "Васильева Вера", "Григорьев Глеб"}


def test_registry_searches_name_email_and_home_organization(registry):
    assert names(q="алексеева") == {"Алексеева Анна"}
    assert names(q="Эврика") == {"Григорьев Глеб"}
    assert names(q=registry["full"].email) == {"Борисов Борис"}
    assert names(q="%") == set()


def test_registry_combines_filters(registry):
    assert names(direction="technical", load="free") == {"Алексеева Анна"}
    assert names(municipality_id=registry["south"].id, status="active") == {"Борисов Борис"}


def test_registry_page_shows_names_home_organizations_and_load(client, auth, registry):
    auth.login(CoordinatorFactory())
    html = page(client.get(f"/experts?municipality_id={registry['south'].id}"))
    assert "Борисов Борис" in html and "Григорьев Глеб" in html
    assert "Алексеева Анна" not in html
    assert "Гимназия «Эврика»" in html
    assert "1 / 1" in html  # Борисов: one open assignment of a capacity of one
    assert "Suspended" in html


def test_registry_filter_form_rejects_unknown_values(client, auth, registry):
    auth.login(CoordinatorFactory())
    assert client.get("/experts?status=retired").status_code == 400


@pytest.mark.parametrize(
    "make_user",
    [ApplicantFactory, lambda: expert(), MunicipalViewerFactory],
    ids=["applicant", "expert", "municipal"],
)
def test_registry_and_expert_pages_are_for_staff_only(client, auth, registry, make_user):
    auth.login(make_user())
    user_id = registry["free"].id
    for url in ("/experts", "/experts/export.csv", f"/experts/{user_id}", "/experts/import"):
        assert client.get(url).status_code == 403, url


def count_registry_statements(client) -> int:
    statements = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        response = client.get("/experts")
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert response.status_code == 200
    return len(statements)


def populate(n: int, start: int = 0) -> None:
    """``n`` experts, each with two directions, an open assignment and a period away; every
    other linked to a portal organization."""
    program = program_in_review()
    today = local_today()
    for i in range(start, start + n):
        user = expert(
            full_name=f"Эксперт {i:03d}",
            directions=[Direction.TECHNICAL, Direction.ARTS],
        )
        profile = user.expert_profile
        if i % 2:
            profile.home_organization = OrganizationFactory()
        profile.unavailability.append(
            ExpertUnavailability(starts_on=today, ends_on=today + timedelta(days=3))
        )
        offer(program, user, seat=i + 1)
    db.session.flush()


def test_registry_loads_in_a_fixed_number_of_queries(client, auth, session):
    """The page of 30 experts costs as many statements as the page of 3."""
    auth.login(CoordinatorFactory())
    client.get("/experts")  # anything done once per process is done now
    populate(3)
    with_3 = count_registry_statements(client)
    populate(27, start=3)
    with_30 = count_registry_statements(client)
    assert page(client.get("/experts")).count('class="expert"') == 30
    assert with_3 == with_30


# --- CSV export ---------------------------------------------------------------------------


def test_export_has_bom_header_and_the_filtered_rows(client, auth, registry):
    registry["full"].expert_profile.home_organization_inn = "7701234567"
    db.session.flush()
    auth.login(CoordinatorFactory())
    response = client.get("/experts/export.csv?direction=technical")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    raw = response.get_data()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == services.EXPORT_HEADER
    assert rows[0][:3] == ["ФИО", "Электронная почта", "Муниципальное образование"]
    by_name = {row[0]: row for row in rows[1:]}
    assert set(by_name) == {"Алексеева Анна", "Борисов Борис"}
    boris = by_name["Борисов Борис"]
    assert boris[1] == registry["full"].email
    assert boris[2] == "Демидов"
    assert boris[4] == '="7701234567"'  # an ИНН stays text in a spreadsheet
    assert boris[6] == "техническая, художественная"
    assert boris[8:11] == ["1", "1", "активен"]


def test_export_neutralises_formulas(client, auth, registry):
    registry["free"].expert_profile.qualification = "=HYPERLINK(1)"
    db.session.flush()
    auth.login(CoordinatorFactory())
    text = client.get("/experts/export.csv?q=Алексеева").get_data().decode("utf-8-sig")
    row = list(csv.reader(io.StringIO(text), delimiter=";"))[1]
    assert row[7] == "'=HYPERLINK(1)"


# --- CSV import ---------------------------------------------------------------------------

IMPORT_HEADER = [
    "ФИО",
    "Электронная почта",
    "Муниципальное образование",
    "Место работы",
    "ИНН места работы",
    "Должность",
    "Направленности",
    "Квалификация и опыт",
    "Максимальная нагрузка",
]


def csv_bytes(rows, header=IMPORT_HEADER, encoding="utf-8-sig") -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


ROW_ERROR_RE = re.compile(
    r'<tr class="row-error"><td>(\d+)</td><td>(.*?)</td><td>(.*?)</td></tr>', re.S
)


def upload(auth, content: bytes, name="experts.csv"):
    return auth.post(
        "/experts/import",
        {"file": (io.BytesIO(content), name)},
        token_from="/experts/import",
        content_type="multipart/form-data",
    )


@pytest.fixture
def import_world(session):
    municipality = MunicipalityFactory(name="Вязьма")
    school = OrganizationFactory(short_name="ДДТ «Радуга»")
    return {"municipality": municipality, "school": school, "coordinator": CoordinatorFactory()}


def test_import_creates_approved_experts_with_directions_and_a_password_link(
    client, auth, import_world
):
    school = import_world["school"]
    content = csv_bytes(
        [
            [
                "Иванова Ирина Петровна",
                "Ivanova@Example.org",
                "вязьма",
                "ДДТ «Радуга»",
                school.inn,
                "методист",
                "техническая, художественная",
                "Высшая категория, стаж 15 лет",
                "4",
            ],
            [
                "Петров Пётр",
                "petrov@example.org",
                "Вязьма",
                "Школа № 2",
                "",
                "",
                "естественно-научная; туристско-краеведческая",
                "Учитель биологии",
                "2",
            ],
        ],
        encoding="cp1251",
    )
    auth.login(import_world["coordinator"])
    response = upload(auth, content)
    assert response.status_code == 302, page(response)
    assert response.headers["Location"].endswith("/experts")

    ivanova = db.session.execute(
        select(User).where(User.email == "ivanova@example.org")
    ).scalar_one()
    assert ivanova.status == AccountStatus.APPROVED
    assert ivanova.roles == {Role.EXPERT}
    assert ivanova.consent_at is not None
    profile = ivanova.expert_profile
    assert profile.directions == {Direction.TECHNICAL, Direction.ARTS}
    assert profile.home_organization_id == school.id
    assert profile.municipality_id == import_world["municipality"].id
    assert (profile.position, profile.capacity) == ("методист", 4)

    petrov = db.session.execute(select(User).where(User.email == "petrov@example.org")).scalar_one()
    assert petrov.expert_profile.directions == {
        Direction.NATURAL_SCIENCE,
        Direction.TOURISM_LOCAL_HISTORY,
    }
    assert petrov.expert_profile.home_organization_id is None
    assert petrov.expert_profile.home_organization_inn is None

    for address in ("ivanova@example.org", "petrov@example.org"):
        [message] = db.session.execute(
            select(OutboxMessage).where(OutboxMessage.to_email == address)
        ).scalars()
        assert "/password/reset/" in message.body
    [event] = audit("import.experts")
    assert event.after["created"] == 2

    html = page(client.get("/experts"))
    assert "Imported 2 experts" in html
    assert "Иванова Ирина Петровна" in html


def test_import_with_one_bad_row_writes_nothing_and_names_row_and_column(
    client, auth, import_world
):
    taken = expert(email="taken@example.org")
    good = ["Сидоров С.", "sidorov@example.org", "Вязьма", "Школа", "", "", "техническая", "x", "3"]
    content = csv_bytes(
        [
            good,
            ["Орлова О.", "orlova@example.org", "Вязьма", "Школа", "", "", "кулинарная", "x", "3"],
            ["Титов Т.", taken.email, "Вязьма", "Школа", "", "", "художественная", "x", "3"],
            [
                "Дубль Д.",
                "SIDOROV@example.org",
                "Вязьма",
                "Школа",
                "",
                "",
                "художественная",
                "x",
                "0",
            ],
        ]
    )
    users_before = db.session.execute(select(sa.func.count(User.id))).scalar_one()
    auth.login(import_world["coordinator"])
    response = upload(auth, content)
    assert response.status_code == 422
    html = page(response)
    assert "Nothing was imported" in html
    errors = [(row, html_lib.unescape(column)) for row, column, _ in ROW_ERROR_RE.findall(html)]
    assert ("3", "Направленности") in errors
    assert ("4", "Электронная почта") in errors
    assert ("5", "Электронная почта") in errors  # the same e-mail as row 2
    assert ("5", "Максимальная нагрузка") in errors
    assert "кулинарная" in html
    assert db.session.execute(select(sa.func.count(User.id))).scalar_one() == users_before
    assert (
        db.session.execute(
            select(User).where(User.email == "sidorov@example.org")
        ).scalar_one_or_none()
        is None
    )
    assert audit("import.experts") == []


def test_import_service_reports_a_wrong_header_as_a_file_problem(import_world):
    report = services.import_experts_csv(
        io.BytesIO(csv_bytes([["x"]], header=["ФИО", "Почта"])), import_world["coordinator"]
    )
    assert not report.ok and report.created == 0
    problems = " ".join(str(m) for m in report.file_errors)
    assert "«Электронная почта»" in problems and "«Почта»" in problems


def test_import_template_lists_the_columns(client, auth, import_world):
    auth.login(import_world["coordinator"])
    body = client.get("/experts/import/template.csv").get_data().decode("utf-8-sig")
    assert body.strip().split(";") == IMPORT_HEADER


# --- suspension ---------------------------------------------------------------------------


@pytest.fixture
def routed(session):
    """A program in review and a technical expert of another municipality, eligible for it."""
    program = program_in_review()
    return {"program": program, "expert": expert(full_name="Кузнецова Ксения")}


def test_suspend_requires_a_reason(client, auth, routed):
    user = routed["expert"]
    auth.login(CoordinatorFactory())
    response = auth.post(f"/experts/{user.id}/suspend", {"reason": "  "})
    assert response.status_code == 400
    assert "This field is required." in page(response)
    db.session.refresh(user.expert_profile)
    assert user.expert_profile.suspended is False
    assert audit("expert.suspend") == []


def test_suspended_expert_is_not_eligible_until_reactivated(client, auth, routed):
    user, program = routed["expert"], routed["program"]
    assert reasons_for(user, program) == []
    coordinator = CoordinatorFactory()
    auth.login(coordinator)

    response = auth.post(f"/experts/{user.id}/suspend", {"reason": "Нарушил сроки дважды"})
    assert response.status_code == 302
    profile = db.session.get(ExpertProfile, user.expert_profile.id, populate_existing=True)
    assert profile.suspended is True
    assert profile.suspended_reason == "Нарушил сроки дважды"
    [event] = audit("expert.suspend")
    assert event.actor_id == coordinator.id
    assert event.object_id == str(user.id)
    assert event.after == {"suspended": True, "reason": "Нарушил сроки дважды"}
    assert Reason.NOT_ACTIVE in reasons_for(user, program)
    assert queries.expert_status(profile) == queries.ExpertStatus.SUSPENDED
    html = page(client.get(f"/experts/{user.id}"))
    assert "Нарушил сроки дважды" in html and "Reactivate the expert" in html

    response = auth.post(f"/experts/{user.id}/reactivate", token_from=f"/experts/{user.id}")
    assert response.status_code == 302
    db.session.refresh(profile)
    assert profile.suspended is False and profile.suspended_reason is None
    assert len(audit("expert.reactivate")) == 1
    assert reasons_for(user, program) == []


def test_service_refuses_to_suspend_twice_or_a_pending_expert(routed):
    coordinator = CoordinatorFactory()
    profile = routed["expert"].expert_profile
    services.suspend_expert(profile, coordinator, "причина")
    with pytest.raises(services.ExpertError):
        services.suspend_expert(profile, coordinator, "ещё раз")
    with pytest.raises(services.ExpertError):
        services.reactivate_expert(expert().expert_profile, coordinator)
    pending = expert(status=AccountStatus.PENDING)
    with pytest.raises(services.ExpertError):
        services.suspend_expert(pending.expert_profile, coordinator, "причина")


def test_expert_page_shows_profile_load_history_and_links_pending_to_approval(client, auth, routed):
    user, program = routed["expert"], routed["program"]
    assignment = offer(program, user)
    assignment.status = AssignmentStatus.DECLINED
    assignment.decline_reason = "Работаю в этой организации"
    assignment.conflict_declared = True
    db.session.flush()
    auth.login(CoordinatorFactory())
    html = page(client.get(f"/experts/{user.id}"))
    assert "Кузнецова Ксения" in html
    assert "МБОУ «Средняя школа № 1»" in html
    assert program.title in html
    assert "Работаю в этой организации" in html and "conflict of interest" in html
    assert '<dd class="col-sm-9" id="load">0 / 5</dd>' in html
    assert f"/reviews/{assignment.review_id}/experts" not in html

    open_one = offer(program_in_review(title="Открытая"), user)
    html = page(client.get(f"/experts/{user.id}"))
    assert '<dd class="col-sm-9" id="load">1 / 5</dd>' in html
    assert f"/reviews/{open_one.review_id}/experts" in html  # the way to reassign it

    pending = expert(status=AccountStatus.PENDING)
    html = page(client.get(f"/experts/{pending.id}"))
    assert f"/registrations/{pending.id}" in html
    assert client.get(f"/experts/{CoordinatorFactory().id}").status_code == 404


# --- the expert's profile and unavailability -----------------------------------------------


def test_expert_edits_own_profile_and_is_linked_to_a_portal_organization(client, auth, routed):
    user = routed["expert"]
    school = OrganizationFactory()
    auth.login(user)
    form = page(client.get("/expert/profile"))
    assert 'value="technical" checked' in form or "checked" in form
    response = auth.post(
        "/expert/profile",
        {
            "directions": ["arts", "social_humanitarian"],
            "capacity": "3",
            "qualification": "Хореограф, 20 лет",
            "experience_years": "20",
            "position": "педагог",
            "home_organization_name": school.short_name,
            "home_organization_inn": school.inn,
        },
        token_from="/expert/profile",
    )
    assert response.status_code == 302
    profile = db.session.get(ExpertProfile, user.expert_profile.id, populate_existing=True)
    assert profile.directions == {Direction.ARTS, Direction.SOCIAL_HUMANITARIAN}
    assert profile.capacity == 3
    assert profile.home_organization_id == school.id
    [event] = audit("expert.update_profile")
    assert event.after["home_organization_id"] == school.id
    assert event.after["directions"] == ["arts", "social_humanitarian"]


def test_profile_form_refuses_no_direction_and_a_wrong_inn(client, auth, routed):
    user = routed["expert"]
    auth.login(user)
    response = auth.post(
        "/expert/profile",
        {
            "capacity": "3",
            "qualification": "x",
            "home_organization_name": "Школа",
            "home_organization_inn": "1234567890",
        },
        token_from="/expert/profile",
    )
    assert response.status_code == 400
    html = page(response)
    assert "Choose at least one direction." in html
    assert "The INN control digits do not match" in html
    assert user.expert_profile.directions == {Direction.TECHNICAL}


def post_period(auth, starts_on, ends_on, reason=""):
    return auth.post(
        "/expert/unavailability",
        {"starts_on": starts_on.isoformat(), "ends_on": ends_on.isoformat(), "reason": reason},
        token_from="/expert/profile",
    )


def periods_of(user) -> list[ExpertUnavailability]:
    return list(
        db.session.execute(
            select(ExpertUnavailability).where(
                ExpertUnavailability.expert_id == user.expert_profile.id
            )
        ).scalars()
    )


def test_unavailability_ending_before_it_starts_is_refused(client, auth, routed):
    user = routed["expert"]
    today = local_today()
    auth.login(user)
    response = post_period(auth, today + timedelta(days=5), today + timedelta(days=1))
    assert response.status_code == 400
    assert "The period cannot end before it starts." in page(response)
    response = post_period(auth, today - timedelta(days=9), today - timedelta(days=2))
    assert response.status_code == 400
    assert "The period is already over" in page(response)
    assert periods_of(user) == []


def test_expert_unavailable_over_the_review_period_is_not_eligible(client, auth, routed):
    user, program = routed["expert"], routed["program"]
    today = local_today()
    auth.login(user)
    response = post_period(auth, today, today + timedelta(days=30), "отпуск")
    assert response.status_code == 302
    [period] = periods_of(user)
    assert (period.starts_on, period.reason) == (today, "отпуск")
    assert Reason.UNAVAILABLE in reasons_for(user, program)
    assert len(audit("expert.add_unavailability")) == 1

    overlapping = post_period(auth, today + timedelta(days=29), today + timedelta(days=40))
    assert overlapping.status_code == 400
    assert "overlaps another one" in page(overlapping)

    response = auth.post(f"/expert/unavailability/{period.id}/delete", token_from="/expert/profile")
    assert response.status_code == 302
    assert periods_of(user) == []
    assert Reason.UNAVAILABLE not in reasons_for(user, program)


def test_unavailability_far_ahead_leaves_the_expert_eligible(routed):
    user, program = routed["expert"], routed["program"]
    today = local_today()
    services.add_unavailability(
        user.expert_profile, user, today + timedelta(days=60), today + timedelta(days=70)
    )
    assert reasons_for(user, program) == []


def test_expert_cannot_delete_another_experts_period(client, auth, routed):
    other = expert()
    today = local_today()
    period = services.add_unavailability(other.expert_profile, other, today, today)
    auth.login(routed["expert"])
    response = auth.post(f"/expert/unavailability/{period.id}/delete", token_from="/expert/profile")
    assert response.status_code == 403
    assert periods_of(other) == [period]


# --- accept and decline -------------------------------------------------------------------


def test_expert_accepts_an_offer(client, auth, routed):
    assignment = offer(routed["program"], routed["expert"])
    auth.login(routed["expert"])
    response = auth.post(f"/assignments/{assignment.id}/accept", token_from="/expert")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/expert")
    db.session.refresh(assignment)
    assert assignment.status == AssignmentStatus.ACCEPTED
    assert assignment.responded_at is not None
    assert "You have accepted the assignment." in page(client.get("/expert"))

    again = auth.post(f"/assignments/{assignment.id}/accept", token_from="/expert")
    assert again.status_code == 302
    assert "no longer waiting for an answer" in page(client.get("/expert"))


def test_decline_without_a_reason_changes_nothing(client, auth, routed):
    assignment = offer(routed["program"], routed["expert"])
    auth.login(routed["expert"])
    response = auth.post(
        f"/assignments/{assignment.id}/decline",
        {"reason": " ", "conflict": "y"},
        token_from="/expert",
    )
    assert response.status_code == 302
    db.session.refresh(assignment)
    assert assignment.status == AssignmentStatus.OFFERED
    assert assignment.decline_reason is None and assignment.conflict_declared is False
    assert "To decline an assignment, give the reason." in page(client.get("/expert"))
    assert audit("assignment.decline") == []


@pytest.mark.parametrize("conflict", [False, True], ids=["reason", "conflict"])
def test_decline_records_the_reason_and_the_expert_is_never_offered_it_again(
    client, auth, routed, conflict
):
    user, program = routed["expert"], routed["program"]
    replacement = expert(full_name="Запасной Эксперт")
    assignment = offer(program, user)
    auth.login(user)
    data = {"reason": "Автор программы — мой коллега"}
    if conflict:
        data["conflict"] = "y"
    response = auth.post(f"/assignments/{assignment.id}/decline", data, token_from="/expert")
    assert response.status_code == 302
    db.session.refresh(assignment)
    assert assignment.status == AssignmentStatus.DECLINED
    assert assignment.decline_reason == "Автор программы — мой коллега"
    assert assignment.conflict_declared is conflict
    [event] = audit("assignment.decline")
    assert event.after["conflict"] is conflict

    assert Reason.DECLINED in reasons_for(user, program)
    offered = {
        a.expert_id: a.status
        for a in db.session.execute(
            select(Assignment).where(Assignment.review_id == program.current_review_id)
        ).scalars()
    }
    # The replacement is found automatically; the declining expert is not asked again.
    assert offered == {user.id: AssignmentStatus.DECLINED, replacement.id: AssignmentStatus.OFFERED}
    html = page(client.get("/expert"))
    assert "You have declined the assignment" in html
    assert ("conflict of interest has been recorded" in html) is conflict


@pytest.mark.parametrize("action", ["accept", "decline"])
def test_only_the_assigned_expert_may_answer(client, auth, routed, action):
    assignment = offer(routed["program"], routed["expert"])
    for intruder in (expert(), CoordinatorFactory(), ApplicantFactory()):
        auth.login(intruder)
        response = auth.post(
            f"/assignments/{assignment.id}/{action}", {"reason": "не моё"}, token_from="/"
        )
        assert response.status_code == 403
        auth.logout()
    db.session.refresh(assignment)
    assert assignment.status == AssignmentStatus.OFFERED
    auth.login(routed["expert"])
    assert auth.post(f"/assignments/999999/{action}", {"reason": "x"}).status_code == 404


# --- the expert's home page ---------------------------------------------------------------


def test_expert_home_groups_assignments_with_deadlines_and_no_names(client, auth, session):
    programs = [
        program_in_review(title=title)
        for title in ("Новая программа", "Принятая программа", "Просроченная", "Сданная")
    ]
    me = expert(full_name="Я Сам")
    colleague = expert(full_name="Коллега Тайный", email="secret.colleague@example.org")
    today = local_today()
    to_accept = offer(programs[0], me, due_in=7)
    accepted = offer(programs[1], me, status=AssignmentStatus.ACCEPTED, due_in=3)
    overdue = offer(programs[2], me, status=AssignmentStatus.ACCEPTED, due_in=-2)
    done = offer(programs[3], me, status=AssignmentStatus.COMPLETED, due_in=-20)
    for program in programs:
        offer(program, colleague)
    declined = offer(program_in_review(title="Отклонённая"), me, status=AssignmentStatus.DECLINED)

    groups = services_groups(me.id)
    assert [r.assignment.id for r in groups.to_accept] == [to_accept.id]
    assert [r.assignment.id for r in groups.in_progress] == [accepted.id]
    assert [r.assignment.id for r in groups.overdue] == [overdue.id]
    assert [r.assignment.id for r in groups.submitted] == [done.id]
    assert declined.id not in {r.assignment.id for r in groups.to_accept}

    auth.login(me)
    html = page(client.get("/expert"))
    sections = {
        name: html.split(f'id="{name}"', 1)[1].split("</section>", 1)[0]
        for name in ("to-accept", "in-progress", "overdue", "submitted")
    }
    assert "Новая программа" in sections["to-accept"]
    assert (today + timedelta(days=7)).strftime("%d.%m.%Y") in sections["to-accept"]
    assert "7 days left" in sections["to-accept"]
    assert f"/assignments/{to_accept.id}/accept" in sections["to-accept"]
    assert f"/assignments/{to_accept.id}/decline" in sections["to-accept"]
    assert "Принятая программа" in sections["in-progress"]
    assert f"/assignments/{accepted.id}/accept" not in html
    assert "Просроченная" in sections["overdue"] and "overdue by 2 days" in sections["overdue"]
    assert "Сданная" in sections["submitted"]
    assert "Отклонённая" not in html
    assert f'/programs/{programs[0].id}"' in html
    assert "Technical" in sections["to-accept"] and "7–11 years" in sections["to-accept"]
    # Nobody else's name or contact: no colleague, no provider's user.
    assert "Коллега Тайный" not in html and "secret.colleague" not in html
    for program in programs:
        creator = db.session.get(User, program.created_by_id)
        assert creator.full_name not in html and creator.email not in html


def services_groups(user_id):
    from review_portal.main.services import expert_assignments

    return expert_assignments(user_id)


def test_navigation_shows_experts_to_staff_and_my_profile_to_experts(client, auth, routed):
    auth.login(CoordinatorFactory())
    html = page(client.get("/coordinator"))
    assert 'href="/experts"' in html and 'href="/expert/profile"' not in html
    auth.logout()
    auth.login(routed["expert"])
    html = page(client.get("/expert"))
    assert 'href="/expert/profile"' in html and 'href="/experts"' not in html
