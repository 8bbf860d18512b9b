"""The registry's exports: CSV and XLSX of the public selection (the same entries, in the same
order, as the page and the API), past snapshots, conditional requests, the municipal exports
and the pending changes."""

from __future__ import annotations

import codecs
import csv
import io
import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from dateutil.relativedelta import relativedelta
from openpyxl import load_workbook

from review_portal.conclusions.models import Conclusion
from review_portal.enums import (
    AccountStatus,
    Direction,
    Level,
    RegistryKind,
    Role,
    StudyForm,
)
from review_portal.extensions import db
from review_portal.i18n import local_date
from review_portal.registry import export_routes
from review_portal.registry.exports import HEADER_ROW
from review_portal.registry.queries import RegistryFilters, page_items
from review_portal.registry.services import leave_registry, publish_registry
from tests.factories import (
    AdminFactory,
    ApplicantFactory,
    CoordinatorFactory,
    MunicipalityFactory,
    MunicipalViewerFactory,
    OrganizationFactory,
    UserFactory,
    admitted_program,
    cheap_conclusion,
)

D, L, F = Direction, Level, StudyForm

#: title, municipality ("north"/"south"), direction, level, ages, form, ОВЗ, percent
PROGRAMS = [
    ("Робототехника для малышей", "north", D.TECHNICAL, L.INTRODUCTORY, 5, 9, F.FULL_TIME, False, "71.50"),
    ("Робототехника для школьников", "north", D.TECHNICAL, L.BASIC, 10, 14, F.FULL_TIME, True, "90.00"),
    ("Юный эколог", "south", D.NATURAL_SCIENCE, L.BASIC, 7, 12, F.PART_TIME, True, "80.25"),
    ("Шахматная школа", "south", D.SOCIAL_HUMANITARIAN, L.ADVANCED, 9, 18, F.DISTANCE, False, "95.00"),
    ("Хор «Ёлочка»", "north", D.ARTS, L.INTRODUCTORY, 3, 7, F.FULL_TIME, True, "85.00"),
]  # fmt: skip

#: A selection as query arguments ("north" stands for that municipality's id), the same
#: selection as filters, and the titles it finds in page order.
SELECTIONS = [
    ({}, {}, [p[0] for p in PROGRAMS]),
    (
        {"q": "РОБОТОТЕХНИКА", "municipality": "north", "age": "7"},
        {"q": "РОБОТОТЕХНИКА", "municipality_id": "north", "age": 7},
        ["Робототехника для малышей"],
    ),
    # Both ends of an age range are inclusive.
    ({"age": "5"}, {"age": 5}, ["Робототехника для малышей", "Хор «Ёлочка»"]),
    (
        {"age": "9"},
        {"age": 9},
        ["Робототехника для малышей", "Юный эколог", "Шахматная школа"],
    ),
    ({"age": "18", "sort": "title"}, {"age": 18, "sort": "title"}, ["Шахматная школа"]),
    (
        {"ovz": "1", "sort": "percent"},
        {"ovz": True, "sort": "percent"},
        ["Робототехника для школьников", "Хор «Ёлочка»", "Юный эколог"],
    ),
    (
        {"ovz": "0", "direction": "technical"},
        {"ovz": False, "direction": D.TECHNICAL},
        ["Робототехника для малышей"],
    ),
    (
        {"level": "basic", "form": "part_time"},
        {"level": L.BASIC, "study_form": F.PART_TIME},
        ["Юный эколог"],
    ),
    ({"q": "елочка"}, {"q": "елочка"}, ["Хор «Ёлочка»"]),
    ({"q": "нет такой программы"}, {"q": "нет такой программы"}, []),
]
TITLE, NUMBER = 1, 0  # column positions in the exports


def make_programs(coordinator, municipalities, specs=PROGRAMS):
    programs = []
    for title, where, direction, level, age_min, age_max, form, ovz, percent in specs:
        program, _, _ = admitted_program(
            percent=percent,
            coordinator=coordinator,
            title=title,
            organization=OrganizationFactory(municipality=municipalities[where]),
            direction=direction,
            level=level,
            age_min=age_min,
            age_max=age_max,
            study_form=form,
            adapted_for_disabilities=ovz,
        )
        programs.append(program)
    return programs


@pytest.fixture
def registry(session):
    """The five programs above, published as the first certified snapshot."""
    coordinator = CoordinatorFactory()
    municipalities = {
        "north": MunicipalityFactory(name="Северный округ"),
        "south": MunicipalityFactory(name="Южный округ"),
    }
    programs = make_programs(coordinator, municipalities)
    snapshot = publish_registry(RegistryKind.CERTIFIED, coordinator)
    return SimpleNamespace(
        coordinator=coordinator,
        municipalities=municipalities,
        programs=programs,
        snapshot=snapshot,
    )


def later(snapshot, seconds=5):
    """Date a snapshot later than its predecessor: Last-Modified has whole seconds, and a
    test publishes twice within one."""
    snapshot.published_at = snapshot.published_at + timedelta(seconds=seconds)
    db.session.flush()
    return snapshot


def read_csv(response) -> list[list[str]]:
    data = response.get_data()
    assert data.startswith(codecs.BOM_UTF8)
    text = data.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))


def read_xlsx(response):
    """The sheet's header, rows and formatting, read back with openpyxl (the header is row
    3, below the title and the region)."""
    workbook = load_workbook(io.BytesIO(response.get_data()))
    try:
        sheet = workbook.worksheets[0]
        rows = [list(r) for r in sheet.iter_rows(min_row=HEADER_ROW, values_only=True)]
        return SimpleNamespace(
            title=sheet.cell(1, 1).value,
            header=rows[0],
            rows=rows[1:],
            bold=[cell.font.b for cell in sheet[HEADER_ROW]],
            freeze_panes=sheet.freeze_panes,
            autofilter=sheet.auto_filter.ref,
            widths={k: d.width for k, d in sheet.column_dimensions.items()},
            sheet=sheet,
            workbook=workbook,
            cells=[list(r) for r in sheet.iter_rows(min_row=HEADER_ROW + 1)],
        )
    finally:
        workbook.close()


def resolve(params: dict, municipalities) -> dict:
    return {k: str(municipalities[v].id) if v in municipalities else v for k, v in params.items()}


# --- the public exports ---------------------------------------------------------------------


def test_csv_is_utf8_with_bom_semicolons_crlf_and_a_header(english, registry):
    response = english.get("/registry.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.mimetype_params["charset"] == "utf-8"
    data = response.get_data()
    assert data[:3] == codecs.BOM_UTF8
    assert data.count(b"\r\n") == len(PROGRAMS) + 1
    assert b"\n" not in data.replace(b"\r\n", b"")
    rows = read_csv(response)
    assert rows[0][:4] == ["Registry number", "Program title", "Organization", "INN"]
    assert rows[0][-5:] == ["Final score, %", "Included on", "Valid until", "Status", "Modules"]
    assert all(len(row) == len(rows[0]) for row in rows)
    assert [r[TITLE] for r in rows[1:]] == [p[0] for p in PROGRAMS]
    first = rows[1]
    assert first[4] == "Северный округ"
    assert first[7:10] == ["5", "9", "72"]
    assert first[11] == "no"
    assert first[14] == "71,50"  # a decimal comma in every language (the CSV convention)
    # Dates as DD.MM.YYYY; a certified entry is valid 36 months from its publication.
    published = local_date(registry.snapshot.published_at)
    assert first[15] == published.strftime("%d.%m.%Y")
    ends = published + relativedelta(months=36) - timedelta(days=1)
    assert first[16] == ends.strftime("%d.%m.%Y")


def test_csv_in_russian_keeps_cyrillic_and_uses_russian_values(client, registry):
    rows = read_csv(client.get("/registry.csv"))
    first = rows[1]
    assert first[TITLE] == "Робототехника для малышей"
    assert first[11] == "нет"  # booleans да/нет
    assert rows[5][11] == "да"
    assert first[14] == "71,50"
    assert first[5] == str(Direction.TECHNICAL.label)


def test_csv_download_is_an_attachment_with_a_dated_file_name(client, registry):
    response = client.get("/registry.csv")
    date = registry.snapshot.published_at
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="registry-certified-1-')
    assert disposition.endswith('.csv"')
    assert str(date.year) in disposition
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    xlsx = client.get("/registry.xlsx").headers["Content-Disposition"]
    assert xlsx.startswith('attachment; filename="registry-certified-1-') and xlsx.endswith('xlsx"')


def test_xlsx_is_a_formatted_sheet(english, registry):
    response = english.get("/registry.xlsx")
    assert response.status_code == 200
    assert response.mimetype == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert int(response.headers["Content-Length"]) == len(response.get_data())
    sheet = read_xlsx(response)
    assert sheet.header[:2] == ["Registry number", "Program title"]
    assert all(sheet.bold)
    assert sheet.freeze_panes == "A4"
    assert sheet.autofilter == f"A3:S{len(PROGRAMS) + 3}"
    assert sheet.widths["B"] == 34
    assert sheet.widths["A"] == 13
    assert [r[TITLE] for r in sheet.rows] == [p[0] for p in PROGRAMS]
    first = sheet.cells[0]
    # Numbers stay numbers and dates dates (formatted DD.MM.YYYY), for sorting and sums.
    assert first[7].value == 5 and first[9].value == 72
    assert first[14].value == pytest.approx(71.5)
    assert first[14].number_format == "0.00"
    assert first[15].number_format == "DD.MM.YYYY"
    assert first[15].is_date


@pytest.mark.parametrize(("params", "filters", "titles"), SELECTIONS)
def test_csv_xlsx_and_api_return_the_page_selection_in_page_order(
    client, registry, params, filters, titles
):
    municipalities = registry.municipalities
    query = resolve(params, municipalities)
    filters = {
        k: municipalities[v].id if isinstance(v, str) and v in municipalities else v
        for k, v in filters.items()
    }
    page = page_items(registry.snapshot.id, RegistryFilters(**filters), 1, 500)
    expected = [row["registry_number"] for row in page.items]
    assert [row["title"] for row in page.items] == titles

    # The public page itself, through its route.
    html = client.get("/registry", query_string={**query, "per_page": "500"}).get_data(True)
    shown = re.findall(r'<th scope="row" class="text-nowrap registry-number">([^<]+)</th>', html)
    assert shown == expected

    csv_rows = read_csv(client.get("/registry.csv", query_string=query))[1:]
    assert [r[NUMBER] for r in csv_rows] == expected
    assert [r[TITLE] for r in csv_rows] == titles

    sheet = read_xlsx(client.get("/registry.xlsx", query_string=query))
    assert [r[NUMBER] for r in sheet.rows] == expected
    assert sheet.autofilter == f"A3:S{len(expected) + 3}"

    api = client.get("/api/v1/registry", query_string={**query, "per_page": "500"}).get_json()
    assert [item["registry_number"] for item in api["items"]] == expected
    assert api["total"] == len(expected)


def test_exports_of_an_unpublished_registry_are_the_header_alone(english, session):
    admitted_program(title="Ещё не опубликована")
    rows = read_csv(english.get("/registry.csv"))
    assert len(rows) == 1 and rows[0][TITLE] == "Program title"
    sheet = read_xlsx(english.get("/registry.xlsx"))
    assert sheet.rows == [] and sheet.header[TITLE] == "Program title"
    assert sheet.autofilter == "A3:S3"
    assert english.get("/api/v1/registry").get_json()["items"] == []


def test_pending_entries_never_reach_the_public(client, registry):
    admitted_program(title="Ожидает публикации", coordinator=registry.coordinator)
    csv_text = client.get("/registry.csv").get_data(as_text=True)
    assert "Ожидает публикации" not in csv_text
    sheet = read_xlsx(client.get("/registry.xlsx"))
    assert "Ожидает публикации" not in {r[TITLE] for r in sheet.rows}
    assert len(sheet.rows) == len(PROGRAMS)
    api = client.get("/api/v1/registry").get_json()
    assert api["total"] == len(PROGRAMS)
    assert "Ожидает публикации" not in {i["title"] for i in api["items"]}


def test_a_past_snapshot_stays_unchanged_after_later_publications(client, registry):
    first = {"snapshot": registry.snapshot.id}
    before_csv = client.get("/registry.csv", query_string=first).get_data()
    before_xlsx_rows = read_xlsx(client.get("/registry.xlsx", query_string=first)).rows
    more = [
        ("Лего-конструирование", "south", D.TECHNICAL, L.BASIC, 6, 8, F.FULL_TIME, False, "77.00")
    ]
    make_programs(registry.coordinator, registry.municipalities, more)
    leave_registry(registry.programs[0].id, registry.coordinator, "Программа закрыта")
    later(publish_registry(RegistryKind.CERTIFIED, registry.coordinator))

    assert client.get("/registry.csv", query_string=first).get_data() == before_csv
    assert read_xlsx(client.get("/registry.xlsx", query_string=first)).rows == before_xlsx_rows
    latest = [r[TITLE] for r in read_csv(client.get("/registry.csv"))[1:]]
    assert "Лего-конструирование" in latest
    assert "Робототехника для малышей" not in latest
    assert len(latest) == len(PROGRAMS)


def test_unknown_snapshot_is_404_and_bad_parameters_400(client, registry):
    assert client.get("/registry.csv?snapshot=999999").status_code == 404
    assert client.get("/registry.xlsx?snapshot=999999").status_code == 404
    # A snapshot of another kind than the one asked for does not exist.
    assert (
        client.get(f"/registry.csv?snapshot={registry.snapshot.id}&kind=general").status_code == 404
    )
    for query in ("age=2", "age=ten", "direction=magic", "ovz=maybe", "sort=random", "kind=x"):
        for path in ("/registry.csv", "/registry.xlsx"):
            response = client.get(f"{path}?{query}")
            assert response.status_code == 400, (path, query)
            assert response.mimetype == "text/plain"
            assert f"({query.split('=')[0]})" in response.get_data(as_text=True)
    text = client.get("/registry.csv?age=2").get_data(as_text=True)
    assert "3" in text and "18" in text  # the allowed range


# --- conditional requests -------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/registry.csv", "/registry.xlsx"])
def test_an_unchanged_export_is_304_before_any_row_is_read(client, registry, monkeypatch, path):
    response = client.get(path, query_string={"age": "9"})
    response.get_data()  # a streamed body must be read (or closed) within the test
    etag, modified = response.headers["ETag"], response.headers["Last-Modified"]
    assert response.headers["Cache-Control"] in ("no-cache, public", "public, no-cache")

    def no_rows(*args, **kwargs):
        raise AssertionError("rows read for a 304")

    monkeypatch.setattr(export_routes, "iter_items", no_rows)
    again = client.get(path, query_string={"age": "9"}, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    assert again.headers["ETag"] == etag
    since = client.get(path, query_string={"age": "9"}, headers={"If-Modified-Since": modified})
    assert since.status_code == 304
    monkeypatch.undo()
    # Another selection is another answer.
    other = client.get(path, query_string={"age": "10"}, headers={"If-None-Match": etag})
    assert other.status_code == 200 and other.get_data()

    later(publish_after_a_change(registry))
    fresh = client.get(path, query_string={"age": "9"}, headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["ETag"] != etag and fresh.get_data()
    fresh = client.get(path, query_string={"age": "9"}, headers={"If-Modified-Since": modified})
    assert fresh.status_code == 200 and fresh.get_data()


def test_csv_and_xlsx_have_different_validators(client, registry):
    tags = set()
    for path in ("/registry.csv", "/registry.xlsx", "/registry.csv?lang=en"):
        response = client.get(path)
        assert response.get_data()
        tags.add(response.headers["ETag"])
    assert len(tags) == 3


def publish_after_a_change(registry):
    leave_registry(registry.programs[-1].id, registry.coordinator, "Исключена")
    return publish_registry(RegistryKind.CERTIFIED, registry.coordinator)


# --- municipal exports ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/registry/municipal.csv", "/registry/municipal.xlsx"])
def test_municipal_export_is_the_viewers_municipality_only(client, auth, registry, path):
    viewer = MunicipalViewerFactory(municipality=registry.municipalities["south"])
    auth.login(viewer)
    north = registry.municipalities["north"].id
    response = client.get(path, query_string={"municipality": str(north)})
    assert response.status_code == 200
    assert "private" in response.headers["Cache-Control"]
    assert "municipality-" in response.headers["Content-Disposition"]
    if path.endswith(".csv"):
        titles = [r[TITLE] for r in read_csv(response)[1:]]
    else:
        titles = [r[TITLE] for r in read_xlsx(response).rows]
    assert titles == ["Юный эколог", "Шахматная школа"]
    filtered = client.get(path, query_string={"ovz": "1"})
    if path.endswith(".csv"):
        assert [r[TITLE] for r in read_csv(filtered)[1:]] == ["Юный эколог"]
    else:
        assert [r[TITLE] for r in read_xlsx(filtered).rows] == ["Юный эколог"]
    again = client.get(path, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 200 and again.get_data()  # the query string differs
    same = client.get(
        path,
        query_string={"municipality": str(north)},
        headers={"If-None-Match": response.headers["ETag"]},
    )
    assert same.status_code == 304
    assert "private" in same.headers["Cache-Control"]
    assert "public" not in same.headers["Cache-Control"]


def _users(registry):
    return {
        "applicant": ApplicantFactory(),
        "expert": UserFactory(roles=[Role.EXPERT]),
        "coordinator": registry.coordinator,
        "admin": AdminFactory(),
        "municipal_unattached": UserFactory(roles=[Role.MUNICIPAL]),
        "municipal_pending": MunicipalViewerFactory(status=AccountStatus.PENDING),
    }


@pytest.mark.parametrize("path", ["/registry/municipal.csv", "/registry/municipal.xlsx"])
def test_municipal_export_refused_to_everyone_else(client, auth, registry, path):
    response = client.get(path)
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    for name, user in _users(registry).items():
        auth.login(user)
        response = client.get(path)
        assert response.status_code == 403, name
        assert b"\xef\xbb\xbf" not in response.get_data()
        auth.logout()


# --- pending changes ------------------------------------------------------------------------


def reissue(program, coordinator, percent: str) -> Conclusion:
    """Revoke the program's entry and admit it again with a new conclusion (as a revoked
    and re-decided review does): the next snapshot shows the entry as changed."""
    leave_registry(program.id, coordinator, "Заключение отозвано")
    return cheap_conclusion(program.current_review, coordinator, percent)[0]


@pytest.fixture
def changes(registry):
    """Pending: one addition (north), one removal (south), one change (north)."""
    more = [
        ("Лего-конструирование", "north", D.TECHNICAL, L.BASIC, 6, 8, F.FULL_TIME, False, "77.00")
    ]
    make_programs(registry.coordinator, registry.municipalities, more)
    leave_registry(registry.programs[3].id, registry.coordinator, "Программа закрыта")
    conclusion = reissue(registry.programs[0], registry.coordinator, "88.00")
    return SimpleNamespace(conclusion=conclusion)


def test_pending_csv_lists_additions_removals_and_changes(english, auth, registry, changes):
    auth.login(registry.coordinator)
    response = english.get("/registry/pending.csv")
    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]
    assert response.headers["Content-Disposition"].startswith(
        'attachment; filename="registry-certified-pending-'
    )
    rows = read_csv(response)
    assert rows[0][0] == "Change" and rows[0][-1] == "Changed fields"
    assert "Status" not in rows[0]
    body = [(r[0], r[2], r[-1]) for r in rows[1:]]
    assert body[0] == ("addition", "Лего-конструирование", "")
    assert rows[1][1] == ""  # no registry number before the publication
    assert body[1] == ("removal", "Шахматная школа", "")
    change, title, fields = body[2]
    assert (change, title) == ("modification", "Робототехника для малышей")
    assert "Final score, %: 71.50 → 88.00" in fields
    assert f"→ {changes.conclusion.number}" in fields
    assert len(rows) == 4


def test_pending_csv_in_russian(client, auth, registry, changes):
    auth.login(registry.coordinator)
    rows = read_csv(client.get("/registry/pending.csv"))
    assert rows[3][2] == "Робототехника для малышей"
    assert "71,50 → 88,00" in rows[3][-1]


def test_pending_csv_of_a_municipal_viewer_is_their_municipality(client, auth, registry, changes):
    auth.login(MunicipalViewerFactory(municipality=registry.municipalities["north"]))
    response = client.get("/registry/pending.csv")
    assert response.status_code == 200
    assert "municipality-" in response.headers["Content-Disposition"]
    titles = [r[2] for r in read_csv(response)[1:]]
    assert titles == ["Лего-конструирование", "Робототехника для малышей"]


def test_pending_csv_refused_to_the_public_and_to_others(client, auth, registry, changes):
    response = client.get("/registry/pending.csv")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    users = _users(registry)
    admin = users.pop("admin")
    users.pop("coordinator")
    for name, user in users.items():
        auth.login(user)
        assert client.get("/registry/pending.csv").status_code == 403, name
        auth.logout()
    auth.login(admin)
    assert client.get("/registry/pending.csv").status_code == 200


def test_pending_csv_rejects_an_unknown_kind(client, auth, registry):
    auth.login(registry.coordinator)
    assert client.get("/registry/pending.csv?kind=nope").status_code == 400


# --- what providers type is data, never a formula ----------------------------------------


def test_formulas_and_control_characters_are_exported_as_text(client, session):
    coordinator = CoordinatorFactory()
    admitted_program(title='=HYPERLINK("http://evil")', coordinator=coordinator)
    admitted_program(title="+7 навыков\x01 юного техника", coordinator=coordinator)
    publish_registry(RegistryKind.CERTIFIED, coordinator)
    titles = [r[TITLE] for r in read_csv(client.get("/registry.csv"))[1:]]
    assert titles == ['\'=HYPERLINK("http://evil")', "'+7 навыков\x01 юного техника"]
    sheet = read_xlsx(client.get("/registry.xlsx"))
    cell = sheet.cells[0][TITLE]
    assert cell.data_type == "s" and cell.value == '=HYPERLINK("http://evil")'
    assert sheet.cells[1][TITLE].value == "+7 навыков юного техника"
