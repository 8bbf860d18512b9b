"""Imports of Excel workbooks and of files with other column titles: the sample
Navigator-style XLSX (``docs/samples/``) imported through the mapping page with its words
mapped, the mapping saved for the next file of the layout, all-or-nothing with the report
naming the file's row and column, and the bounds of reading a workbook."""

from __future__ import annotations

import html
import importlib.util
import io
import re
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
import sqlalchemy as sa
from openpyxl import Workbook

from review_portal.enums import Direction, Level, StudyForm
from review_portal.extensions import db
from review_portal.imports.mapping import suggest_field, suggest_value
from review_portal.imports.models import ImportMapping
from review_portal.imports.services import COLUMNS, PROGRAM_COLUMNS, PROGRAMS
from review_portal.programs.models import Program
from tests.factories import MunicipalityFactory, OrganizationFactory
from tests.test_import import (
    PROGRAM_HEADER,
    csv_file,
    file_errors,
    import_page,
    program_rows,
    row_errors,
    upload,
)

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "docs" / "samples" / "navigator_programs.xlsx"
_spec = importlib.util.spec_from_file_location(
    "navigator_sample", ROOT / "scripts" / "navigator_sample.py"
)
navigator = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(navigator)

MAPPING_RE = re.compile(r"/import/mapping/([^/?#]+)$")


class _FormReader(HTMLParser):
    """What a browser posts of a page's form, nothing changed: each select's selected
    option (or its first) and each hidden input."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, str] = {}
        self.labels: dict[str, str] = {}
        self._select: str | None = None
        self._first: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("type") == "hidden":
            self.data[attrs["name"]] = attrs.get("value", "")
        elif tag == "select":
            self._select, self._first = attrs["name"], None
        elif tag == "option" and self._select:
            if self._first is None:
                self._first = attrs.get("value", "")
                self.data.setdefault(self._select, self._first)
            if "selected" in attrs:
                self.data[self._select] = attrs.get("value", "")

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None


def form_of(page) -> dict[str, str]:
    reader = _FormReader()
    reader.feed(page.get_data(as_text=True))
    return reader.data


def select_named(page, label: str) -> str:
    """The name of the select labelled ``label`` (a column's title or a word of the file)."""
    text = page.get_data(as_text=True)
    found = re.search(r'<label[^>]*for="([^"]+)"[^>]*>' + re.escape(html.escape(label)), text)
    assert found, f"no select labelled {label!r}"
    return found.group(1)


def workbook(rows: list[list]) -> bytes:
    buffer = io.BytesIO()
    navigator.write(buffer, rows)
    return buffer.getvalue()


@pytest.fixture
def navigator_providers(session):
    smolensk = MunicipalityFactory(name="Город Смоленск")
    vyazma = MunicipalityFactory(name="Вяземский район")
    return (
        OrganizationFactory(inn=navigator.FIRST_INN, municipality=smolensk),
        OrganizationFactory(inn=navigator.SECOND_INN, municipality=vyazma),
    )


@pytest.fixture
def coordinator(auth, session):
    from tests.factories import CoordinatorFactory

    user = CoordinatorFactory()
    assert auth.login(user).status_code == 302
    return user


def mapping_page(auth, response):
    assert response.status_code == 302, response.status_code
    location = response.headers["Location"]
    assert MAPPING_RE.search(location), location
    page = auth.client.get(location)
    assert page.status_code == 200
    return location, page


def programs() -> dict[str, Program]:
    return {p.title: p for p in db.session.scalars(sa.select(Program)).all()}


def test_the_committed_sample_is_what_the_script_writes(tmp_path):
    fresh = navigator.write(tmp_path / "sample.xlsx")
    with zipfile.ZipFile(SAMPLE) as committed, zipfile.ZipFile(fresh) as written:
        name = "xl/worksheets/sheet1.xml"
        assert committed.read(name) == written.read(name)


def test_sample_xlsx_imports_through_the_mapping_page_and_the_layout_is_kept(
    auth, english, coordinator, navigator_providers
):
    response = upload(auth, PROGRAMS, SAMPLE.read_bytes(), "navigator_programs.xlsx")
    location, page = mapping_page(auth, response)
    form = form_of(page)

    # The titles are suggested: by synonym, and ignored when nothing matches.
    assert form[select_named(page, "Название")] == "title"
    assert form[select_named(page, "Часов в год")] == "total_hours"
    assert form[select_named(page, "Продолжительность, мес.")] == "duration_months"
    assert form[select_named(page, "ОВЗ")] == "adapted_for_disabilities"
    assert form[select_named(page, "№ п/п")] == ""
    assert form[select_named(page, "Дата обновления")] == ""
    # The words: suggested where the portal's word shows through, else left to choose.
    assert form[select_named(page, "Техническое")] == "техническая"
    assert form[select_named(page, "Очно-заочно")] == "очно-заочная"
    assert form[select_named(page, "Нарушения слуха")] == "да"
    assert form[select_named(page, "Научно-техническое")] == ""
    assert not programs()

    form[select_named(page, "Научно-техническое")] = "естественнонаучная"
    page = import_page(auth, auth.client.post(location, data=form))
    assert row_errors(page) == []
    assert "Imported 3 programs as drafts." in page.get_data(as_text=True)
    found = programs()
    assert set(found) == {row[1] for row in navigator.rows()}
    robots = found["Робототехника: первые шаги"]
    assert (robots.direction, robots.level, robots.study_form) == (
        Direction.TECHNICAL,
        Level.INTRODUCTORY,
        StudyForm.FULL_TIME,
    )
    assert (robots.age_min, robots.age_max, robots.total_hours) == (7, 11, 72)
    nature = found["Юные исследователи природы"]
    assert nature.direction == Direction.NATURAL_SCIENCE
    assert nature.study_form == StudyForm.PART_TIME
    assert nature.adapted_for_disabilities is True
    assert found["Театральная студия «Маска»"].organization == navigator_providers[1]
    saved = db.session.scalars(sa.select(ImportMapping)).one()
    assert saved.mapping["values"]["direction"]["научно-техническое"] == "естественнонаучная"

    # A second file of the same layout (other rows, columns in another order) needs no
    # mapping: it is imported at once.
    titles = list(reversed(navigator.TITLES))
    rows = [list(reversed(row)) for row in navigator.rows()]
    for row in rows:
        row[-2] += " (вторая группа)"
    buffer = io.BytesIO()
    book = Workbook()
    book.active.append(titles)
    for row in rows:
        book.active.append(row)
    book.save(buffer)
    page = import_page(auth, upload(auth, PROGRAMS, buffer.getvalue(), "second.xlsx"))
    assert "Imported 3 programs as drafts." in page.get_data(as_text=True)
    assert "read with the mapping saved for files with these columns" in page.get_data(as_text=True)
    assert programs()["Юные исследователи природы (вторая группа)"].direction == (
        Direction.NATURAL_SCIENCE
    )


def test_file_of_a_saved_layout_with_one_bad_row_writes_nothing_and_names_row_and_column(
    auth, english, coordinator, navigator_providers
):
    location, page = mapping_page(auth, upload(auth, PROGRAMS, SAMPLE.read_bytes(), "a.xlsx"))
    form = form_of(page)
    form[select_named(page, "Научно-техническое")] = "техническая"
    import_page(auth, auth.client.post(location, data=form))
    before = len(programs())

    rows = navigator.rows()
    for row in rows:
        row[1] += " (новый набор)"
    rows[2][5] = "восемь"  # the third data row: spreadsheet row 4
    rows[1][9] = "Экстернат"  # a word nobody mapped: spreadsheet row 3
    page = import_page(auth, upload(auth, PROGRAMS, workbook(rows), "bad.xlsx"))
    assert row_errors(page) == [
        (3, "Форма обучения", "Unknown value “Экстернат”; allowed: очная, очно-заочная, заочная."),
        (4, "Минимальный возраст", "Enter a whole number."),
    ]
    assert len(programs()) == before


def test_mapping_page_refuses_a_mapping_without_a_required_field(
    auth, english, coordinator, navigator_providers
):
    location, page = mapping_page(auth, upload(auth, PROGRAMS, SAMPLE.read_bytes(), "a.xlsx"))
    form = form_of(page)
    form[select_named(page, "ИНН поставщика")] = ""
    response = auth.client.post(location, data=form)
    assert response.status_code == 422
    assert file_errors(response) == ["Missing columns: «ИНН организации»."]
    assert not programs()
    assert db.session.scalars(sa.select(ImportMapping)).all() == []


def test_mapping_page_asks_again_when_the_columns_posted_find_other_words(
    auth, english, coordinator, navigator_providers
):
    location, page = mapping_page(auth, upload(auth, PROGRAMS, SAMPLE.read_bytes(), "a.xlsx"))
    form = form_of(page)
    # Map "Описание" as the program type: its sentences are words to map now.
    form[select_named(page, "Описание")] = "program_type"
    response = auth.client.post(location, data=form)
    assert response.status_code == 200
    assert 'id="words-asked"' in response.get_data(as_text=True)
    assert select_named(response, "Наблюдения и опыты в природе.")
    assert not programs()


def test_mapping_page_of_a_forged_or_foreign_token_is_not_found(
    auth, english, coordinator, navigator_providers
):
    assert auth.client.get("/import/mapping/forged").status_code == 404
    response = upload(auth, PROGRAMS, SAMPLE.read_bytes(), "a.xlsx")
    location = response.headers["Location"]
    from tests.factories import CoordinatorFactory

    other = CoordinatorFactory()
    auth.logout()
    assert auth.login(other).status_code == 302
    assert auth.client.get(location).status_code == 404


def test_portal_titles_in_an_xlsx_need_no_mapping(auth, english, coordinator, navigator_providers):
    providers = navigator_providers
    book = Workbook()
    book.active.append(PROGRAM_HEADER)
    for row in program_rows(providers[0].inn, providers[1].inn):
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    page = import_page(auth, upload(auth, PROGRAMS, buffer.getvalue(), "portal.xlsx"))
    assert "Imported 2 programs as drafts." in page.get_data(as_text=True)


def test_csv_with_other_titles_goes_to_the_mapping_page_too(
    auth, english, coordinator, navigator_providers
):
    providers = navigator_providers
    header = ["Название", *PROGRAM_HEADER[1:]]
    content = csv_file(header, program_rows(providers[0].inn, providers[1].inn))
    location, page = mapping_page(auth, upload(auth, PROGRAMS, content, "other.csv"))
    assert form_of(page)[select_named(page, "Название")] == "title"
    page = import_page(auth, auth.client.post(location, data=form_of(page)))
    assert "Imported 2 programs as drafts." in page.get_data(as_text=True)


def _wide() -> bytes:
    book = Workbook()
    book.active.append([f"Столбец {n}" for n in range(101)])
    book.active.append(["x"] * 101)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _xlsx_with(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(SAMPLE) as sample, zipfile.ZipFile(buffer, "w") as out:
        for info in sample.infolist():
            out.writestr(info, sample.read(info.filename))
        for name, data in entries.items():
            out.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (
            lambda: _xlsx_with({"xl/vbaProject.bin": b"macro"}),
            "The workbook contains macros: save it as “Excel workbook (.xlsx)”.",
        ),
        (
            lambda: _xlsx_with({"xl/media/bomb.bin": b"\0" * (2 * 1024 * 1024)}),
            "The workbook unpacks to too much data: split it.",
        ),
        (
            lambda: b"PK\x03\x04" + b"\0" * 100,
            "The file is neither a CSV table nor an Excel workbook (.xlsx).",
        ),
        (
            lambda: _wide(),
            "The table has more than 100 columns.",
        ),
    ],
    ids=["macros", "zip-bomb", "damaged", "too-wide"],
)
def test_refused_workbooks_write_nothing(
    app, monkeypatch, auth, english, coordinator, content, problem
):
    # The document limits bound a workbook too (1 MB unpacked here, 100 MB by default).
    monkeypatch.setitem(app.config, "DOCUMENT_MAX_UNPACKED_MB", 1)
    response = upload(auth, PROGRAMS, content(), "refused.xlsx")
    if response.status_code == 302:  # the head passed: the job found it
        response = import_page(auth, response)
    else:
        assert response.status_code == 422
    assert file_errors(response) == [problem]
    assert not programs()


def test_suggestions_compare_loosely_and_by_synonym():
    assert suggest_field("НАИМЕНОВАНИЕ  ПРОГРАММЫ:", PROGRAM_COLUMNS) == "title"
    assert suggest_field("Объем (часов)", PROGRAM_COLUMNS) == "total_hours"
    assert suggest_field("Количество часов", PROGRAM_COLUMNS) == "total_hours"
    assert suggest_field("Возраст от", PROGRAM_COLUMNS) == "age_min"
    assert suggest_field("Направленность", PROGRAM_COLUMNS) == "direction"
    assert suggest_field("Что-то ещё", PROGRAM_COLUMNS) == ""
    by_field = {column.field: column for column in COLUMNS[PROGRAMS]}
    assert suggest_value(by_field["study_form"], "Очная форма") == "очная"
    assert suggest_value(by_field["study_form"], "Очно-заочная форма") == "очно-заочная"
    assert suggest_value(by_field["level"], "Углубленный") == "продвинутый"
    assert suggest_value(by_field["adapted_for_disabilities"], "Нарушения зрения") == "да"
    assert suggest_value(by_field["network_form"], "Отсутствует") == "нет"


def test_words_of_a_column_of_several_registries_are_mapped_one_by_one(
    auth, english, coordinator, navigator_providers
):
    providers = navigator_providers
    header = ["Название", *PROGRAM_HEADER[1:-1], "Дополнительные реестры"]
    rows = program_rows(providers[0].inn, providers[1].inn)
    rows[0][-1] = "Сертифицированные программы, Предпрофессиональные программы"
    content = csv_file(header, rows)
    location, page = mapping_page(auth, upload(auth, PROGRAMS, content, "kinds.csv"))
    form = form_of(page)
    assert form[select_named(page, "Дополнительные реестры")] == "additional_registry_kinds"
    # Each unknown word of the cell is offered on its own, with the portal's word suggested.
    assert form[select_named(page, "Сертифицированные программы")] == "сертифицированные"
    assert form[select_named(page, "Предпрофессиональные программы")] == "предпрофессиональные"
    page = import_page(auth, auth.client.post(location, data=form))
    assert "Imported 2 programs as drafts." in page.get_data(as_text=True)
    robots = programs()["Робототехника: первые шаги"]
    assert robots.additional_registry_kinds == ["pre_professional"]  # main: certified
    # The second row's cell, in the portal's words, needed no mapping.
    hiking = programs()["Юный турист-краевед"]
    assert hiking.additional_registry_kinds == ["certified", "pre_professional"]
