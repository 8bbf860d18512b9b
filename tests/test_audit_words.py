"""The audit log in words: every action the code writes is described, the page reads each
record as a sentence with its object linked and the changed fields listed, its filters (who,
what object, what kind) pick the right rows, hostile filter values are refused in Russian,
and a page costs a fixed number of statements."""

from __future__ import annotations

import ast
from pathlib import Path

import lxml.html
import pytest
import sqlalchemy as sa

from review_portal.accounts.services import update_user
from review_portal.appeals import services as appeals
from review_portal.audit.describe import GROUPS, KINDS, short_name
from review_portal.audit.models import AuditEvent
from review_portal.audit.services import record_event
from review_portal.enums import RefusalGround, Role
from review_portal.extensions import db
from review_portal.imports.services import KINDS as IMPORT_KINDS
from review_portal.settings.services import set_setting
from review_portal.workflow import APPEAL_TRANSITIONS, TRANSITIONS
from tests.factories import (
    AdminFactory,
    ApplicantFactory,
    CoordinatorFactory,
    OrganizationFactory,
    ProgramFactory,
    UserFactory,
    expert,
)
from tests.test_appeals import REASONS, decided

PACKAGE = Path(__file__).resolve().parent.parent / "review_portal"

#: Action names built at run time, by the f-string's fixed part: what they expand to.
DYNAMIC = {
    "review.": lambda: {t.name for t in TRANSITIONS.values()},
    "appeal.": lambda: {t.name for t in APPEAL_TRANSITIONS.values()},
    "import.": lambda: set(IMPORT_KINDS),
}


def _constants(tree: ast.Module) -> dict[str, str]:
    return {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name) and isinstance(node.value.value, str)
    }


def written_actions() -> set[str]:
    """Every action name passed to ``record_event`` or ``apply_audited_changes`` in the
    source; a form this reader does not know fails, so a new way of naming is noticed."""
    found: set[str] = set()
    unknown = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = _constants(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name not in ("record_event", "apply_audited_changes"):
                continue
            arg = node.args[0] if name == "record_event" and node.args else None
            for keyword in node.keywords:
                if keyword.arg == "action":
                    arg = keyword.value
            where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
            if path.name == "services.py" and path.parent.name == "audit":
                continue  # apply_audited_changes passes its caller's action on
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
            elif isinstance(arg, ast.Name) and arg.id in constants:
                found.add(constants[arg.id])
            elif (
                isinstance(arg, ast.JoinedStr)
                and isinstance(arg.values[0], ast.Constant)
                and arg.values[0].value in DYNAMIC
                and len(arg.values) == 2
            ):
                prefix = arg.values[0].value
                found |= {prefix + suffix for suffix in DYNAMIC[prefix]()}
            else:
                unknown.append(f"{where}: {ast.unparse(arg) if arg else None}")
    assert not unknown, "action names this test cannot read:\n" + "\n".join(unknown)
    return found


def test_every_action_the_code_writes_is_described():
    written = written_actions()
    assert {"account.login", "review.decide", "review.admit", "appeal.refuse"} <= written
    missing = sorted(written - KINDS.keys())
    assert not missing, f"describe these in review_portal/audit/describe.py: {missing}"
    stale = sorted(KINDS.keys() - written)
    assert not stale, f"no longer written, delete from describe.KINDS: {stale}"
    assert {kind.group for kind in KINDS.values()} <= GROUPS.keys()


def test_short_names():
    assert short_name("Ковалёва Ирина Петровна") == "Ковалёва И. П."
    assert short_name("Иванов Пётр") == "Иванов П."
    assert short_name("Администратор") == "Администратор"
    assert short_name("") == ""
    assert short_name("Пользователь 2") == "Пользователь 2"


# --- the page ------------------------------------------------------------------------------


def audit_page(client, query: str = "", status: int = 200):
    response = client.get(f"/audit/{query}")
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return lxml.html.fromstring(response.get_data(as_text=True))


def row(page, event) -> lxml.html.HtmlElement:
    found = page.xpath(f'//tr[@id="event-{event.id}"]')
    assert found, f"record {event.id} ({event.action}) is not on the page"
    return found[0]


def sentence(tr) -> str:
    return " ".join(tr.xpath('.//p[contains(@class, "audit-sentence")]')[0].text_content().split())


def hrefs(tr) -> list[str]:
    return tr.xpath('.//p[contains(@class, "audit-sentence")]//a/@href')


def changes(tr) -> list[str]:
    return [" ".join(li.text_content().split()) for li in tr.xpath(".//ul/li")]


def event_of(action: str, **where) -> AuditEvent:
    stmt = sa.select(AuditEvent).where(AuditEvent.action == action)
    for name, value in where.items():
        stmt = stmt.where(getattr(AuditEvent, name) == value)
    return db.session.execute(stmt.order_by(AuditEvent.id.desc()).limit(1)).scalar_one()


def test_representative_records_read_as_sentences_with_links(client, auth, session):
    viewer = CoordinatorFactory(full_name="Смирнова Ольга Андреевна")
    coordinator = CoordinatorFactory(full_name="Ковалёва Ирина Петровна")
    # Login, through the page.
    auth.login(coordinator)
    auth.logout()
    # A decision, its conclusion, an appeal refused.
    review, conclusion, _, provider = decided(8, coordinator=coordinator)
    appeal = appeals.file_appeal(conclusion, provider, REASONS)
    appeals.refuse_appeal(appeal, coordinator, RefusalGround.UNFOUNDED, "Доводы не подтверждены.")
    # A setting and a change of roles.
    set_setting("deadline_working_days", 12, coordinator)
    admin = AdminFactory(full_name="Петров Сергей Иванович")
    user = UserFactory(full_name="Орлова Анна Викторовна", roles=[Role.EXPERT])
    update_user(
        user,
        admin,
        full_name=user.full_name,
        roles=[Role.EXPERT, Role.COORDINATOR],
        active=True,
        municipality_id=None,
        organization_id=None,
    )
    db.session.flush()
    program = review.program
    title = program.title

    auth.login(viewer)
    page = audit_page(client)

    login = row(page, event_of("account.login", actor_id=coordinator.id))
    assert sentence(login) == "Ковалёва И. П. — вход в портал"
    assert hrefs(login) == [f"/audit/?user={coordinator.email}"]

    decide = row(page, event_of("review.decide"))
    assert sentence(decide) == (
        f"Ковалёва И. П. — решение по программе «{title}»: не рекомендована"
    )
    assert f"/programs/{program.id}" in hrefs(decide)
    assert "Рассчитанное решение: Не рекомендована" in changes(decide)
    assert "computed_decision" in decide.text_content()  # the raw record, under "Подробности"

    issue = row(page, event_of("conclusion.issue"))
    assert sentence(issue) == (
        f"Ковалёва И. П. — выдача заключения № {conclusion.number} по программе «{title}»"
    )
    assert f"/verify/{conclusion.number}" in hrefs(issue)
    assert f"/programs/{program.id}" in hrefs(issue)
    assert not any("sha256" in line.lower() for line in changes(issue))

    setting = row(page, event_of("settings.change"))
    assert (
        sentence(setting) == "Ковалёва И. П. — изменение настройки «Срок экспертизы, рабочих дней»"
    )
    assert "/settings" in hrefs(setting)
    assert any(line.endswith("→ 12") for line in changes(setting)), changes(setting)

    roles = row(page, event_of("account.update"))
    assert sentence(roles) == "Петров С. И. — изменение учётной записи: Орлова А. В."
    assert f"/experts/{user.id}" not in hrefs(roles)  # no expert profile: the account page
    assert f"/registrations/{user.id}" in hrefs(roles)
    assert "Роли: Эксперт → Координатор РМЦ, Эксперт" in changes(roles)

    refused = row(page, event_of("appeal.refuse"))
    assert sentence(refused) == (
        f"Ковалёва И. П. — отказ в рассмотрении апелляции № {appeal.id} по программе «{title}»"
    )
    assert f"/appeals/{appeal.id}" in hrefs(refused)
    assert changes(refused) == [
        "Статус: Подана, ожидает решения центра → Отказано в рассмотрении",
        "Причина: Доводы не подтверждены.",
    ]

    filed = row(page, event_of("appeal.file"))
    assert sentence(filed).startswith(f"{short_name(provider.full_name)} — подача апелляции")

    # Every link of every sentence opens for the coordinator reading the log.
    links = {href for tr in page.xpath("//tr[@id]") for href in hrefs(tr)}
    assert len(links) > 8
    for href in sorted(links):
        assert client.get(href).status_code == 200, href


def test_an_appeal_is_linked_only_for_staff_who_may_open_it(client, auth, session):
    """A coordinator who sat on the appealed review (submitted: the record is in sight) may
    not open the appeal's page: its number is plain text for them."""
    review, conclusion, coordinator, provider = decided(8)
    appeal = appeals.file_appeal(conclusion, provider, REASONS)
    seated = review.assignments[0].expert
    seated.add_role(Role.COORDINATOR)
    db.session.flush()
    auth.login(seated)
    tr = row(audit_page(client), event_of("appeal.file"))
    assert f"/appeals/{appeal.id}" not in hrefs(tr)
    assert f"№ {appeal.id}" in sentence(tr)
    assert client.get(f"/appeals/{appeal.id}").status_code == 403


def test_unknown_and_malformed_records_still_read(client, auth, session):
    coordinator = CoordinatorFactory()
    odd = [
        record_event("legacy.thing", object_type="widget", object_id="7", after={"x": 1}),
        record_event("review.decide", object_type="review", object_id="999999", after=None),
        record_event(
            "settings.change",
            object_type="setting",
            object_id="gone_key",
            before={"value": [1, {"a": "б" * 500}]},
            after={"value": "<script>alert(1)</script>"},
        ),
        record_event("program.create", object_type="program", object_id="not-a-number"),
        record_event("expert.suspend", object_type="user", object_id="12345678"),
        record_event("account.update", object_type="user", object_id=None, after=[1, "2"]),
        record_event(
            "settings.change",
            object_type="setting",
            object_id="holidays",
            before={"value": []},
            after={"value": ["2026-01-09", "not a date"]},
        ),
    ]
    db.session.flush()
    auth.login(coordinator)
    response = client.get("/audit/")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in text
    page = lxml.html.fromstring(text)
    assert sentence(row(page, odd[0])) == "Портал — событие «legacy.thing»: widget 7"
    assert sentence(row(page, odd[1])) == "Портал — решение по программе review 999999: —"
    lines = changes(row(page, odd[2]))
    assert any(len(line) < 300 and "…" in line for line in lines), lines
    assert (
        sentence(row(page, odd[4]))
        == "Портал — приостановка работы эксперта пользователь № 12345678"
    )
    assert sentence(row(page, odd[5])) == (
        "Портал — изменение учётной записи: неизвестная учётная запись"
    )
    assert changes(row(page, odd[5])) == []
    assert changes(row(page, odd[6])) == [
        "Дополнительные выходные дни: — → 9 янв. 2026 г., not a date"
    ]


# --- filters -------------------------------------------------------------------------------


def shown(page) -> set[int]:
    return {int(tr.get("id").removeprefix("event-")) for tr in page.xpath("//tr[@id]")}


def test_filters_by_person_object_and_kind(client, auth, session):
    coordinator = CoordinatorFactory()
    ivanova = CoordinatorFactory(full_name="Иванова Мария Сергеевна")
    petrov = CoordinatorFactory(full_name="Петров Олег Ильич")
    program, other = ProgramFactory(), ProgramFactory()
    organization = OrganizationFactory()
    a = record_event("program.update", actor=ivanova, object_type="program", object_id=program.id)
    b = record_event("program.update", actor=petrov, object_type="program", object_id=other.id)
    c = record_event("account.login", actor=ivanova, object_type="user", object_id=ivanova.id)
    d = record_event(
        "organization.approve", actor=petrov, object_type="organization", object_id=organization.id
    )
    db.session.flush()
    auth.login(coordinator)
    mine = {a.id, b.id, c.id, d.id}

    assert shown(audit_page(client, "?user=Иванова")) & mine == {a.id, c.id}
    assert shown(audit_page(client, f"?user={petrov.email}")) & mine == {b.id, d.id}
    assert shown(audit_page(client, f"?object_type=program&object_id={program.id}")) == {a.id}
    assert shown(audit_page(client, "?object_type=organization")) & mine == {d.id}
    assert shown(audit_page(client, "?group=accounts")) & mine == {c.id}
    assert shown(audit_page(client, "?group=programs&user=Петров")) & mine == {b.id}
    # The action code (links, exports) still filters by its beginning.
    assert shown(audit_page(client, "?action=program.")) & mine == {a.id, b.id}
    # A name with LIKE's wildcards matches literally.
    assert shown(audit_page(client, "?user=%25")) & mine == set()


@pytest.mark.parametrize(
    "query",
    [
        "?group=nonsense",
        "?object_type=users;drop",
        "?object_id=" + "9" * 65,
        "?object_id=1%20or%201=1",
        "?user=" + "a" * 256,
        "?date_from=2026-13-45",
        "?date_from=2026-05-02&date_to=2026-05-01",
        "?action=" + "x" * 81,
    ],
)
def test_hostile_filter_values_are_refused_in_russian(client, auth, session, query):
    auth.login(CoordinatorFactory())
    response = client.get(f"/audit/{query}")
    assert response.status_code == 400
    page = lxml.html.fromstring(response.get_data(as_text=True))
    errors = " ".join(
        e.text_content()
        for e in page.xpath(
            '//*[contains(@class, "invalid-feedback") or contains(@class, "text-danger")]'
        )
    )
    assert errors.strip()
    assert not any(word in errors for word in ("Not a valid", "Invalid", "Field"))
    assert client.get(f"/audit/export.csv{query}").status_code == 400


# --- statements ------------------------------------------------------------------------------


def count_statements(client, query: str = "") -> int:
    statements = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        response = client.get(f"/audit/{query}")
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert response.status_code == 200
    return len(statements)


def varied_events(n: int) -> None:
    """``n`` records of every kind of object, each about its own objects and actor."""
    for i in range(n):
        actor = expert(full_name=f"Экспертова Вера {i}")
        program = ProgramFactory()
        organization = program.organization
        user = ApplicantFactory(organization=organization)
        kind = i % 5
        if kind == 0:
            record_event(
                "program.update",
                actor=actor,
                object_type="program",
                object_id=program.id,
                before={"title": "x"},
                after={"title": program.title},
            )
        elif kind == 1:
            record_event(
                "review.decide",
                actor=actor,
                object_type="review",
                object_id=program.current_review.id,
                after={"decision": "admitted"},
            )
        elif kind == 2:
            record_event(
                "account.update",
                actor=actor,
                object_type="user",
                object_id=user.id,
                after={"organization_id": organization.id},
            )
        elif kind == 3:
            record_event(
                "organization.update",
                actor=actor,
                object_type="organization",
                object_id=organization.id,
                after={"short_name": "x"},
            )
        else:
            record_event(
                "expert.conflict_declare",
                actor=actor,
                object_type="expert_conflict",
                object_id=i + 1,
                after={"expert_id": actor.id, "organization_id": organization.id},
            )
    db.session.flush()


def test_a_page_costs_the_same_statements_for_10_and_50_records(client, auth, session):
    auth.login(CoordinatorFactory())
    client.get("/audit/")  # anything done once per process is done now
    varied_events(10)
    with_10 = count_statements(client)
    varied_events(40)
    with_50 = count_statements(client)
    assert len(audit_page(client).xpath("//tr[@id]")) == 50
    assert with_10 == with_50


def test_a_program_change_names_its_fields_as_the_form_does(client, auth, session):
    program = ProgramFactory()
    event = record_event(
        "program.update",
        actor=ApplicantFactory(organization=program.organization, full_name="Иванов Пётр"),
        object_type="program",
        object_id=program.id,
        before={"age_min": 7, "study_form": "full_time", "uses_distance_learning": False},
        after={"age_min": 8, "study_form": "distance", "uses_distance_learning": True},
    )
    db.session.flush()
    auth.login(CoordinatorFactory())
    tr = row(audit_page(client), event)
    assert sentence(tr) == f"Иванов П. — изменение программы «{program.title}»"
    assert changes(tr) == [
        "Возраст от (лет): 7 → 8",
        "Форма обучения: Очная → Заочная",
        "С применением дистанционных образовательных технологий и электронного обучения"
        " (ДОТ/ЭО): нет → да",
    ]
