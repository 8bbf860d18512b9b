"""Every CSV the portal writes follows one convention (review_portal.spreadsheets), and the
XLSX files are ready to print.

The CSVs are downloaded through their real routes, from one world holding the hard cases: an
organization whose ИНН starts with a zero, a program title, an expert's qualification and an
audited object's id that a spreadsheet would run as formulas, and scores with decimals. A test also
checks that no CSV route of the application is left out of this list.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from decimal import Decimal
from fractions import Fraction
from types import SimpleNamespace

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from review_portal.accounts.models import User
from review_portal.analytics import services as analytics
from review_portal.audit.services import record_event
from review_portal.enums import RegistryKind
from review_portal.extensions import db
from review_portal.i18n import local_date
from review_portal.registry.exports import HEADER_ROW, LINE_HEIGHT, wrapped_lines
from review_portal.registry.services import publish_registry
from review_portal.settings.services import set_setting
from review_portal.spreadsheets import Code, CsvWriter, csv_cell, unwrap_code
from tests.factories import (
    CoordinatorFactory,
    MunicipalityFactory,
    MunicipalViewerFactory,
    OrganizationFactory,
    admitted_program,
    expert,
)
from tests.test_analytics import small_season

#: A valid ИНН of region 01: as a number it would lose its zero.
ZERO_INN = "0100000004"
FORMULA_TITLE = '=SUM(1;2)+HYPERLINK("http://evil")'
REGION, CENTER = "Смоленская область", "ГАУ ДО «Региональный модельный центр»"


@pytest.fixture
def world(session):
    set_setting("region_name", REGION)
    set_setting("center_name", CENTER)
    coordinator = CoordinatorFactory()
    north = small_season(coordinator)
    municipality = MunicipalityFactory(name="Заречный округ")
    admitted_program(
        percent="82.50",
        coordinator=coordinator,
        title=FORMULA_TITLE,
        organization=OrganizationFactory(inn=ZERO_INN, municipality=municipality),
    )
    snapshot = publish_registry(RegistryKind.CERTIFIED, coordinator)
    admitted_program(coordinator=coordinator, title="Ждёт публикации")  # pending
    profile = expert(full_name="Эксперт с нулём", municipality=north).expert_profile
    profile.home_organization_inn = ZERO_INN
    profile.qualification = "-Отрицательный опыт"
    record_event("test.csv", actor=coordinator, object_type="organization", object_id=ZERO_INN)
    record_event("test.csv", actor=coordinator, object_type="note", object_id="@SUM(1)")
    db.session.flush()
    return SimpleNamespace(
        coordinator=coordinator,
        municipality=municipality,
        snapshot=snapshot,
    )


def csv_routes(world) -> dict[str, tuple[str, object]]:
    """Every CSV download: its endpoint, its URL and who downloads it."""
    viewer = MunicipalViewerFactory(municipality=world.municipality)
    coordinator = world.coordinator
    routes = {
        "registry_exports.registry_csv": ("/registry.csv", None),
        "registry_exports.municipal_csv": ("/registry/municipal.csv", viewer),
        "registry_exports.pending_csv": ("/registry/pending.csv", coordinator),
        "audit.export": ("/audit/export.csv", coordinator),
        "experts.export": ("/experts/export.csv", coordinator),
        "experts.import_template": ("/experts/import/template.csv", coordinator),
        "imports.template": ("/import/template/organizations.csv", coordinator),
    }
    for name in analytics.TABLES:
        routes[f"analytics.export:{name}"] = (f"/analytics/{name}.csv", coordinator)
    return routes


def download(client, auth, url: str, user) -> bytes:
    auth.logout()
    if user is not None:
        auth.login(user)
    response = client.get(url)
    assert response.status_code == 200, url
    assert response.mimetype == "text/csv", url
    return response.get_data()


#: A cell a spreadsheet would run, unless it is a guarded text, a code or a negative number.
FORMULA_START = re.compile(r"^[=+\-@\t\r]")
ALLOWED_START = re.compile(r'^(="[0-9]+"|-[0-9]+(,[0-9]+)?)$')


def check_convention(url: str, data: bytes) -> list[list[str]]:
    assert data.startswith(codecs.BOM_UTF8), url
    assert data.endswith(b"\r\n"), url
    assert b"\n" not in data.replace(b"\r\n", b""), url  # CRLF line ends only
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=";"))
    assert rows and all(len(row) == len(rows[0]) for row in rows), url
    for row in rows[1:]:
        for cell in row:
            assert not re.fullmatch(r"-?\d+\.\d+", cell), (url, cell)  # decimal commas
            if FORMULA_START.match(cell):
                assert ALLOWED_START.match(cell), (url, cell)
    return rows


def test_every_csv_follows_the_convention(client, auth, world, app):
    routes = csv_routes(world)
    # No CSV route of the application is missing from the list above.
    csv_endpoints = {
        rule.endpoint for rule in app.url_map.iter_rules() if rule.rule.endswith(".csv")
    }
    assert csv_endpoints == {name.split(":")[0] for name in routes}

    files = {
        name: check_convention(url, download(client, auth, url, user))
        for name, (url, user) in routes.items()
    }

    registry = files["registry_exports.registry_csv"]
    ours = next(row for row in registry if row[1].endswith('HYPERLINK("http://evil")'))
    assert ours[1] == "'" + FORMULA_TITLE  # a provider's formula is text
    assert ours[3] == f'="{ZERO_INN}"'  # the ИНН keeps its zero
    assert ours[14] == "82,50"  # a number a Russian spreadsheet reads
    assert ours[15] == local_date(world.snapshot.published_at).strftime("%d.%m.%Y")
    municipal = files["registry_exports.municipal_csv"]
    assert [row[3] for row in municipal[1:]] == [f'="{ZERO_INN}"']
    pending = files["registry_exports.pending_csv"]
    assert any(row[2] == "Ждёт публикации" for row in pending[1:])

    experts = {row[0]: row for row in files["experts.export"][1:]}
    assert experts["Эксперт с нулём"][4] == f'="{ZERO_INN}"'
    assert experts["Эксперт с нулём"][7] == "'-Отрицательный опыт"

    object_ids = {row[6] for row in files["audit.export"][1:]}
    assert {f'="{ZERO_INN}"', "'@SUM(1)"} <= object_ids

    # The analytics write decimals with a comma, as the page shows them.
    rates = [row[-1] for row in files["analytics.export:programs_by_municipality"][1:]]
    assert rates and all(re.fullmatch(r"(\d+(,\d+)?)?", rate) for rate in rates)
    decimals = [
        cell
        for name, rows in files.items()
        if name.startswith("analytics")
        for row in rows[1:]
        for cell in row
        if re.fullmatch(r"-?\d+,\d+", cell)
    ]
    assert decimals  # some table holds a fraction, written with a comma


def test_a_downloaded_experts_file_can_be_uploaded_again(client, auth, world):
    """The wrapped ИНН of the export is read back as its digits by the importer."""
    from review_portal.experts.services import import_experts_csv

    auth.login(world.coordinator)
    data = client.get("/experts/export.csv").get_data()
    text = data.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
    ours = next(row for row in rows if row[0] == "Эксперт с нулём")
    # The same person under another address: the file goes through the import's checks.
    ours[1] = "another.expert@example.org"
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=";").writerows([rows[0][:9], ours[:9]])
    report = import_experts_csv(
        io.BytesIO(buffer.getvalue().encode("utf-8-sig")), world.coordinator
    )
    assert report.file_errors == [] and report.errors == [], report
    assert report.created == 1
    imported = db.session.execute(
        select(User).where(User.email == "another.expert@example.org")
    ).scalar_one()
    assert imported.expert_profile.home_organization_inn == ZERO_INN


# --- the writer itself ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "digits", "text"),
    [
        (Decimal("82.50"), None, "82,50"),
        (Decimal("82.5"), 2, "82,50"),
        (89.3, None, "89,3"),
        (100.0, None, "100"),
        (-3.5, None, "-3,5"),  # a negative number is a number, never guarded
        (-7, None, "-7"),
        (Fraction(1, 8), None, "0,125"),
        (Fraction(1, 3), 2, "0,33"),
        (1234567.25, 1, "1234567,2"),
        ("-3,5", None, "'-3,5"),  # the same characters typed as text are guarded
        ("=1+1", None, "'=1+1"),
        ("+7 900 000-00-00", None, "'+7 900 000-00-00"),
        ("@user", None, "'@user"),
        ("\tкод", None, "'\tкод"),
        (Code("0100000004"), None, '="0100000004"'),
        (Code("+7 (900) 000-00-00"), None, "'+7 (900) 000-00-00"),
        (Code('1" & CMD()'), None, '1" & CMD()'),  # never inside the quotes
        (None, None, ""),
        (True, None, "1"),
    ],
)
def test_cells(value, digits, text):
    assert csv_cell(value, digits) == text


def test_writer_streams_rows_in_chunks():
    writer = CsvWriter(["a", "=b"], digits=[None, 1])
    chunks = list(writer.stream(([n, n / 4] for n in range(5)), chunk_rows=2))
    assert chunks[0] == "\ufeffa;'=b\r\n"
    assert chunks[1:] == ["0;0,0\r\n1;0,2\r\n", "2;0,5\r\n3;0,8\r\n", "4;1,0\r\n"]


def test_unwrap_code():
    assert unwrap_code('="0100000004"') == "0100000004"
    assert unwrap_code("0100000004") == "0100000004"
    assert unwrap_code('="=1+1"') == '="=1+1"'


@pytest.mark.parametrize(
    ("text", "width", "lines"),
    [
        ("Шахматная школа", 34, 1),
        ("Робототехника и программирование микроконтроллеров", 34, 2),
        ("один два три четыре", 7, 4),
        ("Естественнонаучная", 10, 2),  # a word longer than the column is cut
    ],
)
def test_wrapped_lines(text, width, lines):
    assert wrapped_lines(text, width) == lines


# --- XLSX -----------------------------------------------------------------------------------


def test_registry_xlsx_is_ready_to_print(client, world):
    response = client.get("/registry.xlsx")
    assert response.status_code == 200
    workbook = load_workbook(io.BytesIO(response.get_data()))
    sheet = workbook.worksheets[0]
    assert sheet.page_setup.orientation == "landscape"
    assert sheet.sheet_properties.pageSetUpPr.fitToPage is True
    assert int(sheet.page_setup.fitToWidth) == 1
    assert int(sheet.page_setup.fitToHeight) == 0
    assert sheet.page_setup.paperSize in (9, "9")
    assert sheet.print_title_rows == f"${HEADER_ROW}:${HEADER_ROW}"  # repeated on each page
    assert sheet.freeze_panes == f"A{HEADER_ROW + 1}"
    title = sheet["A1"].value
    published = local_date(world.snapshot.published_at).strftime("%d.%m.%Y")
    assert "Сертифицированные программы" in title
    assert f"№ {world.snapshot.number}" in title and published in title
    assert sheet["A1"].font.b
    assert sheet["A2"].value == f"{REGION} · {CENTER}"
    assert sheet.cell(HEADER_ROW, 1).value == "Реестровый номер"
    assert sheet.cell(HEADER_ROW, 1).alignment.wrap_text
    rows = list(sheet.iter_rows(min_row=HEADER_ROW + 1))
    ours = next(row for row in rows if row[1].value == FORMULA_TITLE)
    assert ours[1].data_type == "s" and ours[1].alignment.wrap_text
    # The row is as tall as its wrapped texts (the title takes two lines, the organization's
    # name may take more).
    assert sheet.row_dimensions[ours[1].row].height >= 2 * LINE_HEIGHT
    assert ours[1].alignment.vertical == "top"
    assert ours[3].value == ZERO_INN and ours[3].data_type == "s"
    assert ours[14].value == pytest.approx(82.5)
    assert workbook.properties.creator == CENTER
    assert workbook.properties.title == title
    # Columns fit a landscape page at a readable scale (about 70 %), long titles wrap.
    assert sum(d.width for d in sheet.column_dimensions.values()) <= 260


def test_analytics_xlsx_has_the_csv_columns_and_numbers_as_numbers(client, auth, world):
    auth.login(world.coordinator)
    name = "programs_by_municipality"
    page = client.get("/analytics").get_data(as_text=True)
    assert f'href="/analytics/{name}.xlsx"' in page and "Скачать XLSX" in page
    response = client.get(f"/analytics/{name}.xlsx")
    assert response.status_code == 200
    assert response.mimetype.endswith("spreadsheetml.sheet")
    assert f"{name}_" in response.headers["Content-Disposition"]
    workbook = load_workbook(io.BytesIO(response.get_data()))
    sheet = workbook.active
    header, *rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    csv_rows = check_convention(name, client.get(f"/analytics/{name}.csv").get_data())
    assert header == csv_rows[0]
    assert len(rows) == len(csv_rows) - 1 and rows
    for row, line in zip(rows, csv_rows[1:], strict=True):
        assert row[0] == line[0]  # the municipality, as text
        for cell, text in zip(row[1:], line[1:], strict=True):
            if text == "":
                assert cell is None
                continue
            assert isinstance(cell, int | float), (cell, text)
            assert cell == pytest.approx(float(text.replace(",", ".")))
    assert sheet.page_setup.orientation == "landscape"
    assert sheet.print_title_rows == "$1:$1"
    assert workbook.properties.creator == CENTER
    # A municipal viewer may not download the center's tables in this format either.
    auth.logout()
    auth.login(MunicipalViewerFactory(municipality=world.municipality))
    assert client.get("/analytics/calibration.xlsx").status_code == 403
    assert client.get("/analytics/no_such_table.xlsx").status_code == 404


def test_registry_xlsx_names_row_is_text_and_in_the_entity_tag(client, world):
    """The region and center row is settings' text, never a formula; a new name changes
    the answer, so it changes the ETag too (a cached copy is not kept as unchanged)."""
    before = client.get("/registry.xlsx?municipality=" + str(world.municipality.id))
    set_setting("center_name", '=HYPERLINK("http://evil")')
    db.session.flush()
    after = client.get("/registry.xlsx?municipality=" + str(world.municipality.id))
    assert before.headers["ETag"] != after.headers["ETag"]
    sheet = load_workbook(io.BytesIO(after.get_data())).worksheets[0]
    assert sheet["A2"].data_type == "s"
    assert sheet["A2"].value == f'{REGION} · =HYPERLINK("http://evil")'
