"""Bulk import of organizations and programs from CSV files: encodings and delimiters, the
documented Navigator columns, all-or-nothing with a per-row report, the page and templates."""

from __future__ import annotations

import csv
import html
import io
import re

import pytest
import sqlalchemy as sa
from flask_babel import force_locale
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from review_portal.audit.models import AuditEvent
from review_portal.enums import (
    AccountStatus,
    Direction,
    Level,
    OrganizationType,
    ProgramType,
    RegistryKind,
    Role,
    StudyForm,
)
from review_portal.extensions import db
from review_portal.imports.services import import_organizations, import_programs, template_csv
from review_portal.jobs.models import Job, JobStatus
from review_portal.jobs.services import run_job
from review_portal.organizations.models import Organization
from review_portal.programs.models import Program
from review_portal.reviews.models import Review
from review_portal.workflow import ReviewState
from tests.factories import (
    AdminFactory,
    ApplicantFactory,
    CoordinatorFactory,
    ExpertUserFactory,
    MunicipalityFactory,
    MunicipalViewerFactory,
    OrganizationFactory,
    ProgramFactory,
    make_inn,
)

ORGANIZATION_HEADER = [
    "Полное наименование",
    "Краткое наименование",
    "ИНН",
    "ОГРН/ОГРНИП",
    "Тип поставщика",
    "Муниципальное образование",
    "Адрес",
    "Телефон",
    "Электронная почта",
    "Сайт",
]
PROGRAM_HEADER = [
    "Наименование программы",
    "ИНН организации",
    "Направленность",
    "Уровень",
    "Вид программы",
    "Возраст от",
    "Возраст до",
    "Объём (часов)",
    "Продолжительность (месяцев)",
    "Форма обучения",
    "ДОТ/ЭО",
    "Сетевая форма",
    "Наполняемость группы от",
    "Наполняемость группы до",
    "Муниципальное образование реализации",
    "Адаптирована для детей с ОВЗ",
    "Разноуровневая программа",
    "Аннотация",
    "Вид реестра",
    "Другие реестры",
]


def make_ogrn() -> str:
    body = "1026700" + make_inn()[:5]
    return body + str(int(body) % 11 % 10)


def broken_inn(inn: str) -> str:
    return inn[:-1] + str((int(inn[-1]) + 1) % 10)


def csv_file(header, rows, delimiter=";", encoding="utf-8-sig") -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


@pytest.fixture
def places(session):
    return {
        "smolensk": MunicipalityFactory(name="Город Смоленск"),
        "vyazma": MunicipalityFactory(name="Вяземский район"),
    }


@pytest.fixture
def organization_rows(places):
    """Three valid rows: a municipal organization, an individual entrepreneur, a company."""
    return [
        [
            "Муниципальное бюджетное учреждение дополнительного образования "
            "«Дом детского творчества»",
            "МБУ ДО «ДДТ»",
            make_inn(),
            make_ogrn(),
            "Муниципальная",
            "Город Смоленск",
            "г. Смоленск, ул. Ленина, д. 1",
            "+7 4812 38-00-00",
            "ddt@example.org",
            "https://ddt.example.org",
        ],
        [
            "Индивидуальный предприниматель Иванова Мария Петровна",
            "ИП Иванова М. П.",
            make_inn(12),
            "",
            "ИП",
            "Вяземский район",
            "",
            "",
            "",
            "",
        ],
        [
            "Общество с ограниченной ответственностью «Робокласс»",
            "ООО «Робокласс»",
            make_inn(),
            "",
            "частная",
            "город  смоленск",
            "",
            "",
            "robo@example.org",
            "",
        ],
    ]


def program_rows(first_inn: str, second_inn: str) -> list[list[str]]:
    return [
        [
            "Робототехника: первые шаги",
            first_inn,
            "техническая",
            "стартовый",
            "общеразвивающая",
            "7",
            "11",
            "72",
            "9",
            "очная",
            "нет",
            "да",
            "8",
            "15",
            "Город Смоленск",
            "нет",
            "",
            "Конструирование и программирование роботов.",
            "",
            "",
        ],
        [
            "Юный турист-краевед",
            second_inn,
            "Туристско-краеведческая",
            "продвинутый/углублённый",
            "предпрофессиональная",
            "12",
            "17",
            "144",
            "12",
            "очно-заочная",
            "да",
            "нет",
            "10",
            "20",
            "Вяземский район",
            "да",
            "Да",
            "Походы выходного дня\nи краеведческие исследования.",
            "значимые",
            "сертифицированные; предпрофессиональные, значимые",
        ],
    ]


def upload(auth, kind: str, content: bytes, filename: str = "import.csv"):
    return auth.post(
        "/import",
        {"kind": kind, "file": (io.BytesIO(content), filename)},
        token_from="/import",
        content_type="multipart/form-data",
    )


IMPORT_PAGE_RE = re.compile(r"/import/(\d+)$")


def import_page(auth, response):
    """The page of the import job an accepted upload redirected to (under the tests' eager
    runner the job has run when the upload answers)."""
    assert response.status_code == 302, response.status_code
    assert IMPORT_PAGE_RE.search(response.headers["Location"]), response.headers["Location"]
    page = auth.client.get(response.headers["Location"])
    assert page.status_code == 200
    return page


def imported(auth, kind: str, content: bytes, filename: str = "import.csv"):
    """Upload a file and read its import's page."""
    return import_page(auth, upload(auth, kind, content, filename))


ROW_ERROR_RE = re.compile(
    r'<tr class="row-error"><td>(\d+)</td><td>(.*?)</td><td>(.*?)</td></tr>', re.S
)
FILE_ERROR_RE = re.compile(r'<div class="alert alert-danger file-error" role="alert">(.*?)</div>')


def row_errors(response) -> list[tuple[int, str, str]]:
    page = response.get_data(as_text=True)
    return [
        (int(row), html.unescape(column), html.unescape(message))
        for row, column, message in ROW_ERROR_RE.findall(page)
    ]


def file_errors(response) -> list[str]:
    return [html.unescape(m) for m in FILE_ERROR_RE.findall(response.get_data(as_text=True))]


def english_errors(report) -> list[tuple[int, str | None, str]]:
    """The report's row problems as an English reader sees them (for service-level tests)."""
    with force_locale("en"):
        return [(e.row, e.column, str(e.message)) for e in report.errors]


def english_file_errors(report) -> list[str]:
    with force_locale("en"):
        return [str(message) for message in report.file_errors]


def counts() -> dict[str, int]:
    """Rows of what an import writes; audit records too, but the upload's own ``job.create``
    (an accepted file is a job, whatever its rows)."""
    found = {
        model.__name__: db.session.execute(sa.select(sa.func.count()).select_from(model)).scalar()
        for model in (Organization, Program, Review)
    }
    found["AuditEvent"] = db.session.execute(
        sa.select(sa.func.count()).where(AuditEvent.action != "job.create")
    ).scalar()
    return found


def organizations_by_inn() -> dict[str, Organization]:
    return {o.inn: o for o in db.session.execute(sa.select(Organization)).scalars()}


@pytest.fixture
def coordinator(auth, session):
    user = CoordinatorFactory()
    assert auth.login(user).status_code == 302
    return user


# --- organizations ---------------------------------------------------------------------


def test_organizations_file_utf8_bom_semicolon_creates_approved_organizations(
    auth, english, coordinator, places, organization_rows
):
    before = counts()
    response = upload(auth, "organizations", csv_file(ORGANIZATION_HEADER, organization_rows))

    page = import_page(auth, response).get_data(as_text=True)
    assert "Imported 3 organizations." in page
    assert "Rows checked: 3 of 3. Rows written: 3." in page

    assert counts()["Organization"] == before["Organization"] + 3
    found = organizations_by_inn()
    municipal, entrepreneur, company = (found[row[2]] for row in organization_rows)
    assert municipal.full_name == organization_rows[0][0]
    assert municipal.short_name == "МБУ ДО «ДДТ»"
    assert municipal.kind == OrganizationType.MUNICIPAL
    assert municipal.ogrn == organization_rows[0][3]
    assert municipal.municipality_id == places["smolensk"].id
    assert (municipal.address, municipal.phone, municipal.email, municipal.website) == (
        "г. Смоленск, ул. Ленина, д. 1",
        "+7 4812 38-00-00",
        "ddt@example.org",
        "https://ddt.example.org",
    )
    assert entrepreneur.kind == OrganizationType.INDIVIDUAL_ENTREPRENEUR
    assert entrepreneur.municipality_id == places["vyazma"].id
    assert (entrepreneur.ogrn, entrepreneur.address, entrepreneur.email) == (None, None, None)
    assert company.kind == OrganizationType.PRIVATE
    assert company.municipality_id == places["smolensk"].id
    for organization in (municipal, entrepreneur, company):
        assert organization.status == AccountStatus.APPROVED
        assert organization.approved_at is not None

    event = db.session.execute(
        sa.select(AuditEvent).where(AuditEvent.action == "import.organizations")
    ).scalar_one()
    assert event.actor_id == coordinator.id
    assert event.after == {"file": "import.csv", "rows": 3, "created": 3}
    created_events = db.session.execute(
        sa.select(sa.func.count()).where(AuditEvent.action == "organization.create")
    ).scalar()
    assert created_events == 3


def test_organizations_file_cp1251_comma_is_read(session, places, organization_rows):
    # What Russian Excel saves as "CSV (разделители — запятые)": no BOM. A header in other
    # letter case is recognised too.
    header = [name.upper() if name == "Сайт" else name for name in ORGANIZATION_HEADER]
    content = csv_file(header, organization_rows, delimiter=",", encoding="cp1251")
    assert not content.startswith(b"\xef\xbb\xbf")

    report = import_organizations(io.BytesIO(content), CoordinatorFactory(), "orgs.csv")

    assert report.ok, (report.file_errors, report.errors)
    assert (report.rows, report.created) == (3, 3)
    found = organizations_by_inn()
    assert found[organization_rows[0][2]].full_name == organization_rows[0][0]
    assert found[organization_rows[1][2]].short_name == "ИП Иванова М. П."


def test_organizations_file_utf8_without_bom_and_optional_columns_left_out(session, places):
    inn = make_inn()
    content = csv_file(
        ["Полное наименование", "Краткое наименование", "ИНН", "Тип поставщика",
         "Муниципальное образование"],
        [["Государственное автономное учреждение «Центр»", "ГАУ «Центр»", inn,
          "государственная", "Вяземский район"]],
        encoding="utf-8",
    )  # fmt: skip

    report = import_organizations(io.BytesIO(content), CoordinatorFactory())

    assert report.ok, (report.file_errors, report.errors)
    organization = organizations_by_inn()[inn]
    assert organization.kind == OrganizationType.STATE
    assert organization.municipality_id == places["vyazma"].id


def _put(row: int, column: str, value):
    """A spoiler setting the cell of data row ``row`` (0-based) in ``column``."""
    index = ORGANIZATION_HEADER.index(column)
    return lambda rows: rows[row].__setitem__(index, value(rows) if callable(value) else value)


#: case → (spoil the three good rows, spreadsheet row, column, message)
ORGANIZATION_BAD_ROWS = {
    "bad_inn_checksum": (
        _put(1, "ИНН", lambda rows: broken_inn(rows[1][2])),
        3,
        "ИНН",
        "The INN control digits do not match: check the number.",
    ),
    "inn_of_wrong_length": (
        _put(1, "ИНН", make_inn()),
        3,
        "ИНН",
        "The INN must have 12 digits for this type of provider.",
    ),
    "unknown_municipality": (
        _put(1, "Муниципальное образование", "Нарния"),
        3,
        "Муниципальное образование",
        "Unknown municipality “Нарния”: write it as in the list of municipalities.",
    ),
    "unknown_type": (
        _put(1, "Тип поставщика", "казённая"),
        3,
        "Тип поставщика",
        "Unknown value “казённая”; allowed: государственная, муниципальная, частная, "
        "индивидуальный предприниматель, ИП.",
    ),
    "missing_required_value": (
        _put(1, "Краткое наименование", "  "),
        3,
        "Краткое наименование",
        "This field is required.",
    ),
    "duplicate_inn_in_file": (
        _put(2, "ИНН", lambda rows: rows[0][2]),
        4,
        "ИНН",
        "This INN is already in row 2 of the file.",
    ),
    "inn_already_registered": (
        lambda rows: OrganizationFactory(inn=rows[1][2]),
        3,
        "ИНН",
        "An organization with this INN is already registered.",
    ),
    "bad_email": (
        _put(1, "Электронная почта", "не почта"),
        3,
        "Электронная почта",
        "Enter a valid e-mail address.",
    ),
    "bad_ogrn": (
        _put(0, "ОГРН/ОГРНИП", lambda rows: rows[0][3][:-1]),
        2,
        "ОГРН/ОГРНИП",
        "The OGRN must have 13 digits for this type of provider.",
    ),
}


@pytest.mark.parametrize("case", sorted(ORGANIZATION_BAD_ROWS))
def test_organizations_file_with_one_bad_row_writes_nothing(
    auth, english, coordinator, organization_rows, case
):
    spoil, row, column, message = ORGANIZATION_BAD_ROWS[case]
    spoil(organization_rows)
    before = counts()

    response = imported(auth, "organizations", csv_file(ORGANIZATION_HEADER, organization_rows))

    assert counts() == before
    assert row_errors(response) == [(row, column, message)]
    assert "Nothing was imported" in response.get_data(as_text=True)


def test_organizations_registered_during_the_import_leave_nothing_written(
    session, places, organization_rows, monkeypatch
):
    """An INN registered by someone else after the check: the rows created before are undone."""
    from review_portal.imports import services

    OrganizationFactory(inn=organization_rows[1][2])
    monkeypatch.setattr(services, "organizations_by_inn", lambda inns: {})
    before = counts()

    report = import_organizations(
        io.BytesIO(csv_file(ORGANIZATION_HEADER, organization_rows)), CoordinatorFactory()
    )

    assert not report.ok and report.created == 0
    assert english_errors(report) == [
        (3, "ИНН", "An organization with this INN is already registered.")
    ]
    assert counts() == before


def test_organizations_report_lists_every_problem_by_spreadsheet_row(
    auth, english, coordinator, organization_rows
):
    organization_rows[0][2] = broken_inn(organization_rows[0][2])
    organization_rows[0][5] = "Нарния"
    organization_rows[2][0] = ""
    rows = [organization_rows[0], [""] * 10, organization_rows[1], organization_rows[2]]
    rows[2] = [*rows[2], "лишнее"]
    before = counts()

    response = imported(auth, "organizations", csv_file(ORGANIZATION_HEADER, rows))

    assert counts() == before
    assert row_errors(response) == [
        (2, "ИНН", "The INN control digits do not match: check the number."),
        (
            2,
            "Муниципальное образование",
            "Unknown municipality “Нарния”: write it as in the list of municipalities.",
        ),
        (4, "—", "A value in column 11, which has no known header."),
        (5, "Полное наименование", "This field is required."),
    ]
    assert "Problems found: 4 in 3 of 3 rows." in response.get_data(as_text=True)


def test_organizations_file_missing_headers_is_one_file_error(
    auth, english, coordinator, organization_rows
):
    header = [name for name in ORGANIZATION_HEADER if name not in ("ИНН", "Тип поставщика")]
    header.append("Директор")
    rows = [[*row[:2], *row[3:4], *row[5:], "Петров П. П."] for row in organization_rows]
    before = counts()

    response = upload(auth, "organizations", csv_file(header, rows))
    # A title that is not the portal's: the columns are mapped first (Директор ignored).
    assert response.status_code == 302
    assert "/import/mapping/" in response.headers["Location"]
    location = response.headers["Location"]
    page = auth.client.get(location).get_data(as_text=True)
    shown = re.search(r'name="shown" type="hidden" value="([0-9a-f]+)"', page).group(1)
    response = auth.post(location, {"shown": shown}, token_from=location)

    assert response.status_code == 422
    assert counts() == before
    assert file_errors(response) == ["Missing columns: «ИНН», «Тип поставщика»."]
    assert row_errors(response) == []


def test_programs_file_uploaded_as_organizations_names_the_columns(session, places):
    content = csv_file(PROGRAM_HEADER, program_rows(make_inn(), make_inn()))
    report = import_organizations(io.BytesIO(content), CoordinatorFactory())
    missing, unknown = english_file_errors(report)
    assert missing.startswith("Missing columns: «Полное наименование», «Краткое наименование»")
    assert unknown.startswith("Unknown columns: «Наименование программы», «ИНН организации»")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "The file is empty."),
        (
            ("\ufeff" + ";".join(ORGANIZATION_HEADER) + "\r\n;;;\r\n").encode(),
            "The file has no rows below the header.",
        ),
        (
            b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 40,
            "The file is neither a CSV table nor an Excel workbook (.xlsx).",
        ),
    ],
    ids=["empty", "header_only", "xlsx"],
)
def test_unreadable_file_is_a_file_error(auth, english, coordinator, content, problem):
    before = counts()
    response = upload(auth, "organizations", content)
    assert response.status_code == 422
    assert counts() == before
    assert file_errors(response) == [problem]


# --- programs --------------------------------------------------------------------------


def test_programs_file_creates_drafts_of_imported_organizations(
    auth, english, coordinator, places, organization_rows
):
    first = imported(auth, "organizations", csv_file(ORGANIZATION_HEADER, organization_rows))
    assert "Imported 3 organizations." in first.get_data(as_text=True)
    first_inn, second_inn = organization_rows[0][2], organization_rows[1][2]
    before = counts()

    response = imported(
        auth,
        "programs",
        csv_file(PROGRAM_HEADER, program_rows(first_inn, second_inn)),
        filename="programs.csv",
    )

    assert "Imported 2 programs as drafts." in response.get_data(as_text=True)
    assert counts()["Program"] == before["Program"] + 2
    found = organizations_by_inn()
    robots = db.session.execute(
        sa.select(Program).where(Program.title == "Робототехника: первые шаги")
    ).scalar_one()
    assert robots.organization_id == found[first_inn].id
    assert (robots.direction, robots.level, robots.program_type, robots.study_form) == (
        Direction.TECHNICAL,
        Level.INTRODUCTORY,
        ProgramType.GENERAL_DEVELOPMENTAL,
        StudyForm.FULL_TIME,
    )
    assert (robots.age_min, robots.age_max, robots.total_hours, robots.duration_months) == (
        7,
        11,
        72,
        9,
    )
    assert (robots.group_min, robots.group_max) == (8, 15)
    assert (
        robots.uses_distance_learning,
        robots.network_form,
        robots.adapted_for_disabilities,
        robots.multi_level,
    ) == (False, True, False, False)
    assert robots.municipality_id == places["smolensk"].id
    assert robots.annotation == "Конструирование и программирование роботов."
    assert robots.requested_registry_kind == RegistryKind.CERTIFIED
    assert robots.created_by_id == coordinator.id
    assert robots.state == ReviewState.DRAFT
    assert robots.current_review.round == 1

    hiking = db.session.execute(
        sa.select(Program).where(Program.title == "Юный турист-краевед")
    ).scalar_one()
    assert hiking.organization_id == found[second_inn].id
    assert (hiking.direction, hiking.level, hiking.program_type, hiking.study_form) == (
        Direction.TOURISM_LOCAL_HISTORY,
        Level.ADVANCED,
        ProgramType.PRE_PROFESSIONAL,
        StudyForm.PART_TIME,
    )
    assert (hiking.age_min, hiking.age_max, hiking.total_hours, hiking.duration_months) == (
        12,
        17,
        144,
        12,
    )
    assert (
        hiking.uses_distance_learning,
        hiking.network_form,
        hiking.adapted_for_disabilities,
        hiking.multi_level,
    ) == (True, False, True, True)
    assert hiking.municipality_id == places["vyazma"].id
    assert hiking.annotation == "Походы выходного дня\nи краеведческие исследования."
    assert hiking.requested_registry_kind == RegistryKind.SIGNIFICANT
    # The main kind is not repeated among the others, which keep the enum's order.
    assert hiking.additional_registry_kinds == ["certified", "pre_professional"]
    assert hiking.state == ReviewState.DRAFT

    event = db.session.execute(
        sa.select(AuditEvent).where(AuditEvent.action == "import.programs")
    ).scalar_one()
    assert event.after == {"file": "programs.csv", "rows": 2, "created": 2}


@pytest.fixture
def providers(places):
    return (
        OrganizationFactory(municipality=places["smolensk"]),
        OrganizationFactory(municipality=places["vyazma"]),
    )


def test_programs_file_cp1251_optional_columns_left_out_take_defaults(session, providers):
    keep = [
        i
        for i, name in enumerate(PROGRAM_HEADER)
        if name not in ("Вид программы", "ДОТ/ЭО", "Аннотация", "Вид реестра", "Другие реестры")
    ]
    rows = program_rows(providers[0].inn, providers[1].inn)
    # Headers as people retype them: "е" for "ё", other letter case.
    header = [PROGRAM_HEADER[i].replace("Объём", "объем") for i in keep]
    content = csv_file(header, [[row[i] for i in keep] for row in rows], encoding="cp1251")

    report = import_programs(io.BytesIO(content), CoordinatorFactory())

    assert report.ok, (report.file_errors, report.errors)
    program = db.session.execute(
        sa.select(Program).where(Program.organization_id == providers[1].id)
    ).scalar_one()
    assert program.program_type == ProgramType.GENERAL_DEVELOPMENTAL
    assert program.uses_distance_learning is False
    assert program.annotation == ""
    assert program.requested_registry_kind == RegistryKind.CERTIFIED


def _set(row: int, column: str, value: str):
    """A spoiler setting the cell of data row ``row`` (0-based) in ``column``."""
    index = PROGRAM_HEADER.index(column)
    return lambda rows: rows[row].__setitem__(index, value)


PROGRAM_BAD_ROWS = {
    "age_below_3": (
        _set(1, "Возраст от", "2"),
        "Возраст от",
        "The age must be from 3 to 18 years.",
    ),
    "ages_reversed": (
        _set(1, "Возраст до", "10"),
        "Возраст до",
        "The maximum age cannot be less than the minimum age.",
    ),
    "group_min_above_max": (
        _set(1, "Наполняемость группы от", "25"),
        "Наполняемость группы до",
        "The maximum group size cannot be less than the minimum.",
    ),
    "zero_hours": (
        _set(1, "Объём (часов)", "0"),
        "Объём (часов)",
        "The number of hours must be greater than zero.",
    ),
    "hours_not_a_number": (
        _set(1, "Объём (часов)", "много"),
        "Объём (часов)",
        "Enter a whole number.",
    ),
    "unknown_direction": (
        _set(1, "Направленность", "космическая"),
        "Направленность",
        "Unknown value “космическая”; allowed: техническая, естественнонаучная, "
        "естественно-научная, физкультурно-спортивная, художественная, "
        "туристско-краеведческая, социально-гуманитарная.",
    ),
    "unknown_level": (
        _set(1, "Уровень", "высший"),
        "Уровень",
        "Unknown value “высший”; allowed: стартовый, ознакомительный, базовый, продвинутый, "
        "углублённый.",
    ),
    "bad_yes_no": (
        _set(1, "Адаптирована для детей с ОВЗ", "возможно"),
        "Адаптирована для детей с ОВЗ",
        "Unknown value “возможно”; allowed: да, нет.",
    ),
    "unknown_municipality": (
        _set(1, "Муниципальное образование реализации", "Нарния"),
        "Муниципальное образование реализации",
        "Unknown municipality “Нарния”: write it as in the list of municipalities.",
    ),
    "missing_title": (
        _set(1, "Наименование программы", ""),
        "Наименование программы",
        "This field is required.",
    ),
    "missing_study_form": (
        _set(1, "Форма обучения", ""),
        "Форма обучения",
        "This field is required.",
    ),
    "unknown_organization_inn": (
        _set(1, "ИНН организации", make_inn()),
        "ИНН организации",
        "No organization with this INN is registered.",
    ),
    "duplicate_title_in_file": (
        lambda rows: (
            rows[1].__setitem__(0, rows[0][0].upper()),
            rows[1].__setitem__(1, rows[0][1]),
        ),
        "Наименование программы",
        "The same organization's program with this title is already in row 2 of the file.",
    ),
}


@pytest.mark.parametrize("case", sorted(PROGRAM_BAD_ROWS))
def test_programs_file_with_one_bad_row_writes_nothing(auth, english, coordinator, providers, case):
    spoil, column, message = PROGRAM_BAD_ROWS[case]
    rows = program_rows(providers[0].inn, providers[1].inn)
    rows.append(program_rows(providers[1].inn, providers[0].inn)[0])
    spoil(rows)
    before = counts()

    response = imported(auth, "programs", csv_file(PROGRAM_HEADER, rows))

    assert counts() == before
    assert row_errors(response) == [(3, column, message)]


def test_programs_file_title_already_registered_is_an_error(session, providers):
    ProgramFactory(organization=providers[0], title="Робототехника: первые шаги")
    before = counts()

    report = import_programs(
        io.BytesIO(csv_file(PROGRAM_HEADER, program_rows(providers[0].inn, providers[1].inn))),
        CoordinatorFactory(),
    )

    assert counts() == before
    assert english_errors(report) == [
        (
            2,
            "Наименование программы",
            "The organization already has a program with this title.",
        )
    ]


def test_programs_rows_are_numbered_as_in_the_spreadsheet(auth, english, coordinator, providers):
    """A cell with a line break is still one spreadsheet row; blank rows keep their number."""
    rows = program_rows(providers[0].inn, providers[1].inn)
    rows[0][PROGRAM_HEADER.index("Аннотация")] = "Первая строка\nвторая строка"
    rows.insert(1, [""] * len(PROGRAM_HEADER))
    rows[2][PROGRAM_HEADER.index("Возраст от")] = "2"
    rows[2][PROGRAM_HEADER.index("Наполняемость группы от")] = "0"

    response = imported(auth, "programs", csv_file(PROGRAM_HEADER, rows))

    assert row_errors(response) == [
        (4, "Возраст от", "The age must be from 3 to 18 years."),
        (4, "Наполняемость группы от", "A group has at least one child."),
    ]


# --- the page and the templates --------------------------------------------------------


def test_import_page_shows_the_documented_columns(english, coordinator, auth):
    response = auth.client.get("/import")
    page = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 200
    for name in ORGANIZATION_HEADER + PROGRAM_HEADER:
        assert f'<th scope="row" lang="ru">{name}</th>' in page
    assert "государственная, муниципальная, частная, индивидуальный предприниматель, ИП" in page
    assert "If empty: сертифицированные." in page
    assert 'href="/import/template/organizations.csv"' in page
    assert 'href="/import/template/programs.csv"' in page


def test_import_without_a_file_shows_the_field_error(english, coordinator, auth):
    response = auth.post("/import", {"kind": "programs"}, token_from="/import")
    assert response.status_code == 422
    assert 'id="file-error"' in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("kind", "header"), [("organizations", ORGANIZATION_HEADER), ("programs", PROGRAM_HEADER)]
)
def test_template_download_has_bom_and_headers(coordinator, auth, kind, header):
    response = auth.client.get(f"/import/template/{kind}.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert f"filename={kind}.csv" in response.headers["Content-Disposition"]
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf")
    assert body.decode("utf-8-sig") == ";".join(header) + "\r\n"


def test_template_of_unknown_kind_is_not_found(coordinator, auth):
    assert auth.client.get("/import/template/experts.csv").status_code == 404


def test_downloaded_template_is_accepted_as_a_header(session):
    report = import_organizations(
        io.BytesIO(template_csv("organizations").encode("utf-8")), CoordinatorFactory()
    )
    assert english_file_errors(report) == ["The file has no rows below the header."]


@pytest.mark.parametrize("factory", [ApplicantFactory, ExpertUserFactory, MunicipalViewerFactory])
@pytest.mark.parametrize("path", ["/import", "/import/template/programs.csv"])
def test_import_pages_are_forbidden_to_non_staff(auth, session, factory, path):
    auth.login(factory())
    assert auth.client.get(path).status_code == 403


def test_import_post_is_forbidden_to_applicants(auth, session, places, organization_rows):
    auth.login(ApplicantFactory())
    before = counts()
    response = upload(auth, "organizations", csv_file(ORGANIZATION_HEADER, organization_rows))
    assert response.status_code == 403
    assert counts() == before


@pytest.mark.parametrize("path", ["/import", "/import/template/organizations.csv"])
def test_import_pages_send_anonymous_to_login(client, session, path):
    response = client.get(path)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_import_page_is_open_to_admins(auth, session):
    auth.login(AdminFactory())
    assert auth.client.get("/import").status_code == 200


def test_large_programs_file_with_a_bad_last_row_writes_nothing(
    auth, english, coordinator, providers
):
    """A file of thousands of rows (spooled to disk on upload) is read through to its end."""
    good = program_rows(providers[0].inn, providers[1].inn)[0]
    annotation = PROGRAM_HEADER.index("Аннотация")
    rows = []
    for n in range(3000):
        row = list(good)
        row[0] = f"Робототехника, группа {n}"
        row[annotation] = "Конструирование и программирование роботов. " * 4
        rows.append(row)
    rows[-1][PROGRAM_HEADER.index("Возраст до")] = "19"
    content = csv_file(PROGRAM_HEADER, rows)
    assert len(content) > 1024 * 1024
    # Encoded here: the test client would spool a body this large to a temporary file it
    # never closes. The portal still receives it through a spooled file, as in production.
    boundary, body = encode_multipart(
        {
            "csrf_token": auth.token("/import"),
            "kind": "programs",
            "file": FileStorage(io.BytesIO(content), "programs.csv"),
        }
    )
    before = counts()

    response = import_page(
        auth,
        auth.client.post(
            "/import", data=body, content_type=f"multipart/form-data; boundary={boundary}"
        ),
    )

    assert counts() == before
    assert row_errors(response) == [(3001, "Возраст до", "The age must be from 3 to 18 years.")]
    assert "Problems found: 1 in 1 of 3000 rows." in response.get_data(as_text=True)


# --- imports as background jobs --------------------------------------------------------


def numbered_program_rows(providers, n: int, start: int = 0) -> list[list[str]]:
    """``n`` valid program rows of the two providers, titled apart by their number."""
    good = program_rows(providers[0].inn, providers[1].inn)
    rows = []
    for number in range(start, start + n):
        row = list(good[number % 2])
        row[0] = f"{row[0]}, группа {number}"
        rows.append(row)
    return rows


def post_file(auth, kind: str, content: bytes, filename: str, token: str | None = None):
    """Upload ``content`` encoded here (the test client would spool a large body to a
    temporary file it never closes; the portal still receives it through a spooled file)."""
    boundary, body = encode_multipart(
        {
            "csrf_token": token or auth.token("/import"),
            "kind": kind,
            "file": FileStorage(io.BytesIO(content), filename),
        }
    )
    return auth.client.post(
        "/import", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )


def statements_of(action) -> tuple[object, int]:
    """What ``action()`` returns and the SQL statements it executed (transaction control
    left out)."""
    count = [0]

    def before(conn, cursor, statement, *args):
        if not statement.lstrip().upper().startswith(("BEGIN", "SAVEPOINT", "RELEASE")):
            count[0] += 1

    engine = db.session.get_bind().engine
    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        result = action()
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)
    return result, count[0]


def job_of(response) -> Job:
    assert response.status_code == 302, response.status_code
    found = IMPORT_PAGE_RE.search(response.headers["Location"])
    assert found, response.headers["Location"]
    return db.session.get(Job, int(found.group(1)), populate_existing=True)


@pytest.fixture
def queued_jobs(app, monkeypatch):
    """Jobs are left queued, as with a worker that has not taken them yet."""
    monkeypatch.setitem(app.config, "JOBS_RUNNER", "none")


@pytest.fixture
def job_updates():
    """Every state of an import job written (done, total, phase), in order."""
    seen: list[tuple[int, int, str | None]] = []

    def record(mapper, connection, job):
        seen.append((job.done, job.total, (job.result or {}).get("phase")))

    sa.event.listen(Job, "after_update", record)
    yield seen
    sa.event.remove(Job, "after_update", record)


def test_import_of_6000_programs_is_a_job_and_its_upload_does_not_grow_with_the_rows(
    auth, english, coordinator, providers, queued_jobs, job_updates, backend
):
    """The upload request does the same few statements for 10 rows and for 6,000 (it stores
    the file and queues the job); the job checks the rows with its progress recorded, then
    writes all 6,000. The full 6,000 on PostgreSQL, where a region that size runs; 1,500 on
    SQLite, which shows the same (the write costs about 10 ms a program, and the suite's
    time counts)."""
    rows = 6000 if backend == "postgresql" else 1500
    before = counts()
    token = auth.token("/import")
    content = csv_file(PROGRAM_HEADER, numbered_program_rows(providers, 10))
    small, small_statements = statements_of(
        lambda: post_file(auth, "programs", content, "10.csv", token)
    )
    content = csv_file(PROGRAM_HEADER, numbered_program_rows(providers, rows, start=10))
    large, large_statements = statements_of(
        lambda: post_file(auth, "programs", content, f"{rows}.csv", token)
    )

    # The user and their roles (twice: after the hand-over's commit too), the job and its
    # audit record with the chaining step after the commit.
    assert large_statements == small_statements <= 20
    job = job_of(large)
    assert job.kind == "import_file" and job.status == JobStatus.QUEUED
    assert counts()["Program"] == before["Program"]
    waiting = auth.client.get(large.headers["Location"])
    assert waiting.status_code == 200
    assert waiting.headers["Refresh"] == "2"
    assert "Waiting to start." in waiting.get_data(as_text=True)

    run_job(job.id)  # what the worker does

    assert counts()["Program"] == before["Program"] + rows
    assert [update for update in job_updates if update[2] == "checking"] == [
        (done, rows, "checking") for done in range(0, rows, 500)
    ]
    # The writing is announced once every row is checked; nothing is recorded while it runs.
    after_checking = job_updates[job_updates.index((rows - 500, rows, "checking")) + 1 :]
    assert after_checking[0] == (rows, rows, "writing")
    assert set(after_checking[1:]) == {(rows, rows, "done")}
    page = auth.client.get(large.headers["Location"])
    text = page.get_data(as_text=True)
    assert "Refresh" not in page.headers
    assert f"Imported {rows} programs as drafts." in text
    assert f"Rows checked: {rows} of {rows}. Rows written: {rows}." in text
    event = db.session.execute(
        sa.select(AuditEvent).where(AuditEvent.action == "import.programs")
    ).scalar_one()
    assert event.after == {"file": f"{rows}.csv", "rows": rows, "created": rows}
    assert job_of(small).status == JobStatus.QUEUED


def test_import_page_shows_the_rows_checked_while_the_job_runs(
    auth, english, coordinator, providers, queued_jobs
):
    response = upload(
        auth, "programs", csv_file(PROGRAM_HEADER, numbered_program_rows(providers, 3))
    )
    job = job_of(response)
    job.status = JobStatus.RUNNING
    db.session.commit()
    text = auth.client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Reading the file." in text

    job.done, job.total, job.result = 500, 6000, {"phase": "checking"}
    db.session.commit()

    page = auth.client.get(response.headers["Location"])

    assert page.headers["Refresh"] == "2"
    text = page.get_data(as_text=True)
    assert "Rows checked: 500 of 6000." in text
    assert '<progress id="import-progress-bar" value="500" max="6000"' in text
    assert 'enctype="multipart/form-data"' not in text  # no form to lose on the refresh

    job.done, job.result = 6000, {"phase": "writing"}
    db.session.commit()
    text = auth.client.get(response.headers["Location"]).get_data(as_text=True)
    assert (
        "Rows checked: 6000 of 6000. Writing them, all in one transaction: all rows or none."
        in text
    )


def test_import_resumed_after_its_rows_were_committed_writes_nothing_again(
    auth, english, coordinator, providers, queued_jobs
):
    """A worker that dies after the import's transaction committed and before the job was
    marked done: the job is run again and finds the outcome recorded with the rows."""
    from review_portal.imports.background import import_file_job
    from review_portal.unit_of_work import unit_of_work

    response = upload(
        auth, "programs", csv_file(PROGRAM_HEADER, numbered_program_rows(providers, 4))
    )
    job = job_of(response)
    before = counts()
    with unit_of_work():  # the handler's run, committed, as run_job does before "done"
        job.status = JobStatus.RUNNING
        import_file_job(job.id)
    assert counts()["Program"] == before["Program"] + 4
    assert job_of(response).status == JobStatus.RUNNING

    run_job(job.id)

    job = job_of(response)
    assert job.status == JobStatus.DONE
    assert counts()["Program"] == before["Program"] + 4
    assert counts()["AuditEvent"] == before["AuditEvent"] + 5  # 4 programs, 1 import
    text = auth.client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Imported 4 programs as drafts." in text


def test_import_checks_again_under_its_lock_before_writing(
    auth, english, coordinator, providers, queued_jobs, monkeypatch
):
    """The check and the writing are two transactions (the progress between them commits):
    the same file uploaded twice, the other import writes its programs in between. The
    writing transaction checks again under the programs-import lock, finds them and writes
    nothing, with the report by row."""
    from review_portal.imports import background

    rows = numbered_program_rows(providers, 3)
    response = upload(auth, "programs", csv_file(PROGRAM_HEADER, rows))
    job = job_of(response)
    before = counts()
    recorder = background._recorder

    def other_import_writes_meanwhile(job_id):
        record = recorder(job_id)

        def progress(phase, done, total):
            record(phase, done, total)
            if phase == "writing":  # as the same file's other import, committed just now
                ProgramFactory(organization=providers[0], title=rows[0][0])
                db.session.flush()

        return progress

    monkeypatch.setattr(background, "_recorder", other_import_writes_meanwhile)
    run_job(job.id)

    assert job_of(response).status == JobStatus.DONE
    assert counts()["Program"] == before["Program"] + 1  # the other import's only
    text = html.unescape(auth.client.get(response.headers["Location"]).get_data(as_text=True))
    assert "The organization already has a program with this title." in text


def test_import_crashing_while_writing_leaves_nothing_and_runs_again(
    auth, english, coordinator, providers, queued_jobs, monkeypatch
):
    from review_portal.programs import services as programs

    response = upload(
        auth, "programs", csv_file(PROGRAM_HEADER, numbered_program_rows(providers, 5))
    )
    job = job_of(response)
    before = counts()
    create_program, created = programs.create_program, []

    def failing_on_the_fourth(*args, **kwargs):
        if len(created) == 3:
            raise RuntimeError("the database went away")
        created.append(create_program(*args, **kwargs))
        return created[-1]

    monkeypatch.setattr("review_portal.imports.services.create_program", failing_on_the_fourth)
    run_job(job.id)

    assert job_of(response).status == JobStatus.FAILED
    assert counts() == before
    text = html.unescape(auth.client.get(response.headers["Location"]).get_data(as_text=True))
    assert "The import stopped: RuntimeError: the database went away" in text
    assert "Nothing was imported: upload the file again." in text

    monkeypatch.setattr("review_portal.imports.services.create_program", create_program)
    run_job(job.id)  # a copy of its task, delivered later: the failed import stays failed
    assert job_of(response).status == JobStatus.FAILED
    assert counts() == before
    run_job(job.id, retry_failed=True)  # ``flask run-job``

    assert job_of(response).status == JobStatus.DONE
    assert counts()["Program"] == before["Program"] + 5


@pytest.mark.parametrize(
    "change",
    [
        lambda user: setattr(user, "active", False),
        lambda user: (user.remove_role(Role.COORDINATOR), user.add_role(Role.EXPERT)),
    ],
    ids=["deactivated", "now_an_expert"],
)
def test_import_of_an_author_no_longer_staff_stops_writing_nothing(
    auth, english, coordinator, providers, queued_jobs, change
):
    response = upload(
        auth, "programs", csv_file(PROGRAM_HEADER, numbered_program_rows(providers, 2))
    )
    job = job_of(response)
    before = counts()
    change(coordinator)
    db.session.commit()

    with force_locale("en"):
        run_job(job.id)

    job = job_of(response)
    assert job.status == JobStatus.FAILED
    assert job.error == "The author of this import may no longer import files."
    assert counts() == before


def test_import_report_reads_in_the_language_of_its_reader(
    auth, coordinator, providers, queued_jobs, client
):
    """The job ran with no reader (in Russian, the portal's language); its report keeps the
    messages, not their text."""
    rows = program_rows(providers[0].inn, providers[1].inn)
    rows[1][PROGRAM_HEADER.index("Возраст от")] = "2"
    rows[0][PROGRAM_HEADER.index("ИНН организации")] = broken_inn(providers[0].inn)
    response = upload(auth, "programs", csv_file(PROGRAM_HEADER, rows))
    run_job(job_of(response).id)

    russian = auth.client.get(response.headers["Location"])
    assert row_errors(russian) == [
        (2, "ИНН организации", "Организация с таким ИНН не зарегистрирована."),
        (3, "Возраст от", "Возраст должен быть от 3 до 18 лет."),
    ]
    with client.session_transaction() as browser_session:
        browser_session["locale"] = "en"
    english = auth.client.get(response.headers["Location"])
    assert row_errors(english) == [
        (2, "ИНН организации", "No organization with this INN is registered."),
        (3, "Возраст от", "The age must be from 3 to 18 years."),
    ]
    assert "Problems found: 2 in 2 of 2 rows." in english.get_data(as_text=True)


def test_organizations_report_of_bad_registration_numbers_reads_in_english(
    auth, english, coordinator, organization_rows, queued_jobs
):
    organization_rows[0][2] = broken_inn(organization_rows[0][2])
    response = upload(auth, "organizations", csv_file(ORGANIZATION_HEADER, organization_rows))
    with force_locale("ru"):
        run_job(job_of(response).id)
    assert row_errors(auth.client.get(response.headers["Location"])) == [
        (2, "ИНН", "The INN control digits do not match: check the number.")
    ]


def test_cells_with_nul_are_row_errors_and_nothing_is_written(
    auth, english, coordinator, providers
):
    rows = program_rows(providers[0].inn, providers[1].inn)
    rows[1][0] = "Юный\x00турист"
    rows[0][PROGRAM_HEADER.index("Аннотация")] = "Звонок\x07"
    before = counts()

    response = imported(auth, "programs", csv_file(PROGRAM_HEADER, rows))

    assert counts() == before
    message = "The value contains characters that are not allowed (such as NUL)."
    assert row_errors(response) == [
        (2, "Аннотация", message),
        (3, "Наименование программы", message),
    ]


def test_utf16_without_its_mark_is_refused_at_once(auth, english, coordinator, providers):
    content = csv_file(
        PROGRAM_HEADER, program_rows(providers[0].inn, providers[1].inn), encoding="utf-16-le"
    )
    before = counts()

    response = upload(auth, "programs", content)

    assert response.status_code == 422
    assert file_errors(response) == [
        "The file's encoding is not recognised: save it as “CSV UTF-8”."
    ]
    assert counts() == before
    assert db.session.execute(sa.select(sa.func.count()).select_from(Job)).scalar() == 0


def test_file_refused_at_once_stores_nothing_and_queues_no_job(
    app, auth, english, coordinator, organization_rows
):
    from pathlib import Path

    files = Path(app.config["STORAGE_DIR"]) / "files"
    stored = set(files.rglob("*")) if files.exists() else set()
    header = [name for name in ORGANIZATION_HEADER if name != "ИНН"]

    response = upload(
        auth, "organizations", csv_file(header, [r[:2] + r[3:] for r in organization_rows])
    )

    assert response.status_code == 422
    assert file_errors(response) == ["Missing columns: «ИНН»."]
    assert db.session.execute(sa.select(sa.func.count()).select_from(Job)).scalar() == 0
    assert (set(files.rglob("*")) if files.exists() else set()) == stored


def test_import_page_of_another_kind_of_job_is_not_found(auth, coordinator):
    job = Job(kind="issue_conclusions", payload={}, total=1)
    db.session.add(job)
    db.session.commit()
    assert auth.client.get(f"/import/{job.id}").status_code == 404
    assert auth.client.get("/import/2147483647").status_code == 404


def test_job_page_of_an_import_links_to_its_report(auth, english, coordinator, providers):
    response = upload(
        auth, "programs", csv_file(PROGRAM_HEADER, numbered_program_rows(providers, 1))
    )
    job = job_of(response)
    text = auth.client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert f"Job {job.id}: Import from a CSV or XLSX file" in text
    assert f'href="/import/{job.id}" id="import-page"' in text


def test_uploaded_file_is_stored_and_kept_by_the_storage_clean_up(
    app, auth, english, coordinator, providers, queued_jobs
):
    from review_portal import storage
    from review_portal.storage_cleanup import referenced_keys

    content = csv_file(PROGRAM_HEADER, numbered_program_rows(providers, 2))
    job = job_of(upload(auth, "programs", content))

    key = job.payload["storage_key"]
    assert storage.path_for(key).read_bytes() == content
    assert key in referenced_keys()
