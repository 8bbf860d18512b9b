"""A program's modules: edited on the card (totals derived), frozen into the submitted version,
and shown on the score sheet, in the conclusion's PDF, on the registry page, in the CSV, the
XLSX and the API (validated against the OpenAPI document)."""

from __future__ import annotations

import io
import re
from types import SimpleNamespace

import pypdf
import pytest
from sqlalchemy import select

from review_portal.audit.models import AuditEvent
from review_portal.conclusions.services import stored_pdf
from review_portal.enums import RegistryKind
from review_portal.extensions import db
from review_portal.programs.compare import metadata_changes
from review_portal.programs.models import Program, ProgramVersion
from review_portal.programs.modules import module_errors, with_module_totals
from review_portal.programs.services import update_program
from review_portal.programs.validation import program_data_errors
from review_portal.registry.models import RegistryEntry
from review_portal.registry.services import publish_registry
from review_portal.reviews.services import decide_review
from tests import factories
from tests.test_conclusion_archival import assert_archival
from tests.test_conclusion_pdf import center  # noqa: F401 - a fixture
from tests.test_programs import card, create_via_web, program_count
from tests.test_registry_api import Contract, openapi_document
from tests.test_registry_exports import read_csv, read_xlsx

#: WTForms' own message (its Russian catalog) for a number it cannot read.
NOT_A_NUMBER = "Неверное целое число."

MODULES = [
    {
        "title": "Основы конструирования",
        "hours": 36,
        "months": 3,
        "group_min": 8,
        "group_max": 12,
        "teacher_requirements": "Высшее техническое образование",
    },
    {
        "title": "Программирование роботов",
        "hours": 72,
        "months": 6,
        "group_min": 6,
        "group_max": 10,
        "teacher_requirements": "",
    },
    {
        "title": "Соревновательная робототехника",
        "hours": 48,
        "months": 4,
        "group_min": 5,
        "group_max": 8,
        "teacher_requirements": "Опыт подготовки команд",
    },
]


def module_rows(modules) -> dict:
    """The card's form fields of ``modules`` (rows 0, 1, …)."""
    data = {}
    for index, module in enumerate(modules):
        for key, value in module.items():
            data[f"modules-{index}-{key}"] = str(value)
    return data


@pytest.fixture
def provider(session):
    return factories.ApplicantFactory()


def test_a_card_with_three_modules_derives_the_hours_and_the_duration(english, auth, provider):
    auth.login(provider)
    response = create_via_web(
        auth, provider, total_hours="", duration_months="", **module_rows(MODULES)
    )
    assert response.status_code == 302
    program = db.session.execute(select(Program)).scalar_one()
    assert program.modules == MODULES
    assert (program.total_hours, program.duration_months) == (36 + 72 + 48, 6)
    page = auth.client.get(f"/programs/{program.id}/edit").get_data(as_text=True)
    assert 'value="Программирование роботов"' in page  # the rows come back for editing
    assert "Module 8" in page and "Module 9" not in page  # a fixed, bounded set of rows


def test_totals_typed_beside_modules_are_replaced_by_the_derived_ones(english, auth, provider):
    auth.login(provider)
    create_via_web(auth, provider, total_hours="999", **module_rows(MODULES[:2]))
    program = db.session.execute(select(Program)).scalar_one()
    assert (program.total_hours, program.duration_months) == (108, 6)


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ({"hours": "0"}, "hours", "От 1 до 10000 часов."),
        ({"months": "121"}, "months", "От 1 до 120 месяцев."),
        ({"hours": "много"}, "hours", "NOT_A_NUMBER"),
        ({"title": ""}, "title", "Это поле обязательно для заполнения."),
        ({"group_min": "9", "group_max": "3"}, "group_max", "не может быть меньше минимальной"),
        ({"teacher_requirements": "я" * 2001}, "teacher_requirements", "более 2000 символов"),
    ],
)
def test_a_bad_module_row_is_refused_in_russian_next_to_its_field(
    client, auth, provider, row, field, message
):
    auth.login(provider)
    module = {**MODULES[0], **row}
    response = create_via_web(
        auth, provider, total_hours="", duration_months="", **module_rows([MODULES[1], module])
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    error = page.split(f'id="modules-1-{field}-error"', 1)[1].split("</div>", 1)[0]
    assert message.replace("NOT_A_NUMBER", NOT_A_NUMBER) in error
    # The totals are the modules' to derive: no error of their own while a row is wrong.
    assert 'id="total_hours-error"' not in page
    assert program_count() == 0


def test_without_modules_the_hours_and_the_duration_are_required(english, auth, provider):
    auth.login(provider)
    response = create_via_web(auth, provider, total_hours="", duration_months="")
    page = response.get_data(as_text=True)
    assert 'id="total_hours-error"' in page and 'id="duration_months-error"' in page
    assert program_count() == 0


def test_rows_past_the_limit_are_not_read(english, auth, provider):
    auth.login(provider)
    many = {}
    for index in range(12):
        many |= {f"modules-{index}-{key}": str(value) for key, value in MODULES[0].items()}
    create_via_web(auth, provider, **many)
    program = db.session.execute(select(Program)).scalar_one()
    assert len(program.modules) == 8  # MODULES_MAX
    assert program.total_hours == 8 * 36


def test_the_rules_refuse_modules_that_did_not_come_through_the_form():
    assert module_errors([{**MODULES[0], "hours": True}])  # a boolean is no number
    assert module_errors([{**MODULES[0], "extra": 1}])
    assert module_errors([MODULES[0]] * 9)
    assert module_errors(MODULES) is None
    data = card() | {"modules": MODULES, "municipality_id": 1}
    data = {k: int(v) if isinstance(v, str) and v.isdigit() else v for k, v in data.items()}
    errors = program_data_errors(data)
    assert "sum of the modules' hours (156)" in str(errors["total_hours"])
    assert program_data_errors(with_module_totals(data)).get("total_hours") is None


def test_the_submitted_version_keeps_the_modules_as_they_were(session):
    program = factories.program_in_review(modules=MODULES, total_hours=156, duration_months=6)
    version = program.current_review.version
    assert version.modules == MODULES
    program.modules[0]["title"] = "Изменено на месте"  # even a change in place
    assert version.modules[0]["title"] == "Основы конструирования"


def test_editing_the_modules_rederives_the_totals_and_audits_the_change(client, auth, session):
    program = factories.ProgramFactory()
    applicant = factories.ApplicantFactory(organization=program.organization)
    changes = update_program(program, applicant, modules=MODULES[1:])
    assert (program.total_hours, program.duration_months) == (120, 6)
    assert set(changes) == {"modules", "total_hours", "duration_months"}
    event = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "program.update")
    ).scalar_one()
    assert event.after["modules"] == MODULES[1:] and event.before["modules"] == []
    # The log names the modules by their titles.
    auth.login(factories.AdminFactory())
    page = client.get("/audit/").get_data(as_text=True)
    assert "Программирование роботов, Соревновательная робототехника" in page


def test_the_comparison_of_versions_names_the_changed_modules(session):
    program = factories.ProgramFactory(modules=MODULES[:1], total_hours=36, duration_months=3)
    old = ProgramVersion(**program.data(), program=program, number=1)
    changed = [{**MODULES[0], "teacher_requirements": "Среднее профессиональное"}]
    new = ProgramVersion(**(program.data() | {"modules": changed}), program=program, number=2)
    [change] = metadata_changes(old, new)
    assert change.field == "modules"
    assert "(Высшее техническое образование)" in change.old
    assert "(Среднее профессиональное)" in change.new


# --- through review, conclusion and publication -----------------------------------------


@pytest.fixture
def published(session, center):  # noqa: F811 - the imported fixture
    """A program with three modules: submitted, reviewed by two experts, decided (its
    conclusion issued as a PDF) and published in the certified registry."""
    review, assignments = factories.scored_review(
        factories.with_total(16),
        factories.with_total(15),
        title="Робототехника по модулям",
        modules=MODULES,
        total_hours=156,
        duration_months=6,
    )
    coordinator = factories.CoordinatorFactory()
    decide_review(review, coordinator, review.computed_decision)
    db.session.expire(review, ["conclusions"])
    conclusion = review.conclusions[-1]
    publish_registry(RegistryKind.CERTIFIED, coordinator)
    number = db.session.execute(select(RegistryEntry.registry_number)).scalar_one()
    return SimpleNamespace(
        review=review,
        assignments=assignments,
        conclusion=conclusion,
        pdf=stored_pdf(conclusion),
        number=number,
    )


def test_the_score_sheet_shows_the_modules(client, auth, published):
    assignment = published.assignments[0]
    auth.login(assignment.expert)
    page = client.get(f"/sheets/{assignment.id}").get_data(as_text=True)
    for module in MODULES:
        assert module["title"] in page
    assert "Высшее техническое образование" in page


def test_the_conclusion_pdf_lists_the_modules(published):
    text = "".join(
        "".join(page.extract_text().split())
        for page in pypdf.PdfReader(io.BytesIO(published.pdf)).pages
    )
    assert "Модулипрограммы" in text
    for module in MODULES:
        assert "".join(module["title"].split()) in text
    assert "Опытподготовкикоманд" in text
    # The table of modules keeps the document archival (PDF/A-3b, tagged, fonts embedded).
    number = published.conclusion.number
    issued_on = re.search(r"Датавыдачи:(\d\d\.\d\d\.\d{4})", text).group(1)
    assert_archival(
        published.pdf,
        title=f"Экспертное заключение № {number}",
        number=number,
        issued_on=issued_on,
    )


def test_the_registry_page_csv_xlsx_and_api_carry_the_modules(english, client, published):
    page = client.get(f"/registry/{published.number}").get_data(as_text=True)
    assert 'id="entry-modules"' in page
    assert "Соревновательная робототехника" in page and "Опыт подготовки команд" in page

    rows = read_csv(client.get("/registry.csv"))
    assert rows[0][-1] == "Modules"
    assert rows[1][-1].startswith("Основы конструирования: 36 h, 3 mo., group 8–12; ")
    assert "Соревновательная робототехника: 48 h, 4 mo., group 5–8" in rows[1][-1]

    sheet = read_xlsx(client.get("/registry.xlsx"))
    assert sheet.header[-1] == "Modules"
    assert "Программирование роботов: 72 h, 6 mo." in sheet.rows[0][-1]

    contract = Contract(openapi_document())
    body = contract.check(client.get("/api/v1/registry"), "/registry", 200)
    assert body["items"][0]["modules"] == MODULES
    assert body["items"][0]["total_hours"] == 156
