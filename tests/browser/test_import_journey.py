"""The Navigator's XLSX export imported in a real browser: a coordinator uploads the sample
workbook (``docs/samples/``), lands on the mapping page with the columns and words
suggested, chooses the one word nobody could guess, and the programs are imported; the same
layout uploaded again goes straight to its import (no mapping page), whose report names the
row and the file's column of each problem and writes nothing. axe-core finds no serious or
critical violation on the mapping page."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import sqlalchemy as sa

from review_portal.extensions import db
from review_portal.programs.models import Program
from tests import factories
from tests.browser.helpers import (
    Portal,
    Windows,
    audit,
    describe_violations,
    expect,
    flash,
    log_in,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "docs" / "samples" / "navigator_programs.xlsx"
_spec = importlib.util.spec_from_file_location(
    "navigator_sample", ROOT / "scripts" / "navigator_sample.py"
)
navigator = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(navigator)

EMAIL = "importer@rmc67.example"


def prepare(portal: Portal) -> None:
    with portal.app.app_context():
        factories.CoordinatorFactory(full_name="Смирнова Ольга Андреевна", email=EMAIL)
        smolensk = factories.MunicipalityFactory(name="Город Смоленск")
        vyazma = factories.MunicipalityFactory(name="Вяземский район")
        factories.OrganizationFactory(inn=navigator.FIRST_INN, municipality=smolensk)
        factories.OrganizationFactory(inn=navigator.SECOND_INN, municipality=vyazma)
        db.session.commit()


def upload(page, path: Path) -> None:
    page.goto("/import")
    page.locator("#kind").select_option("programs")
    page.locator("#file").set_input_files(str(path))
    page.get_by_role("button", name="Проверить и импортировать").click()


def test_the_navigator_export_imports_through_the_mapping_page(portal: Portal, windows: Windows):
    prepare(portal)
    page = windows.open("coordinator")
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, EMAIL, factories.PASSWORD)

    upload(page, SAMPLE)
    expect(page.locator("h1")).to_have_text("Столбцы файла")
    expect(page.get_by_label("Название", exact=True)).to_have_value("title")
    expect(page.get_by_label("Часов в год", exact=True)).to_have_value("total_hours")
    expect(page.get_by_label("№ п/п", exact=True)).to_have_value("")
    expect(page.get_by_label("Очно-заочно", exact=True)).to_have_value("очно-заочная")
    expect(page.get_by_label("Нарушения слуха", exact=True)).to_have_value("да")
    unknown = page.get_by_label("Научно-техническое", exact=True)
    expect(unknown).to_have_value("")
    audited = audit(page)
    assert not audited.violations, describe_violations("mapping", audited)

    unknown.select_option("естественнонаучная")
    page.get_by_role("button", name="Сохранить сопоставление и загрузить").click()
    expect(page.locator("#import-success")).to_contain_text("3")
    with portal.app.app_context():
        titles = set(db.session.scalars(sa.select(Program.title)))
    assert titles == {row[1] for row in navigator.rows()}

    # The same layout again: no mapping page; the programs exist, so every row fails and
    # nothing more is written.
    upload(page, SAMPLE)
    expect(page).to_have_url(re.compile(r"/import/\d+$"))
    expect(flash(page)).to_contain_text("по сопоставлению, сохранённому для файлов")
    report = page.locator("#row-errors")
    expect(report).to_contain_text("Название")
    expect(report.locator("tr.row-error")).to_have_count(3)
    with portal.app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Program)) == 3
