"""The comparison of two versions of a program: changed metadata, the diff of the program
document's text (PDF, DOCX, ODT), and who may open the page.

Versions are made the way providers make them: submit, a coordinator returns the program,
the provider changes it and submits again.
"""

from __future__ import annotations

import html
import io
import re
import zipfile
from datetime import date

import docx
import docx.shared
import pytest
import weasyprint
from odf import text as odf_text
from odf.opendocument import OpenDocumentText
from sqlalchemy import select

from review_portal import storage
from review_portal.assignment.models import Assignment
from review_portal.enums import DocumentKind, Level
from review_portal.extensions import db
from review_portal.programs import compare
from review_portal.programs.compare import (
    ADDED,
    CONTEXT,
    REMOVED,
    document_text,
    metadata_changes,
    text_diff,
)
from review_portal.programs.labels import FIELD_LABELS
from review_portal.programs.models import ProgramData, ProgramDocument, StoredFile
from review_portal.programs.services import submit_program
from review_portal.workflow import ReviewState, advance
from tests import factories

PDF_TYPE = "application/pdf"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ODT_TYPE = "application/vnd.oasis.opendocument.text"

OLD_LINES = [
    "Пояснительная записка",
    "Цель: познакомить детей с основами робототехники.",
    "Учебный план рассчитан на 72 часа.",
    "Формы аттестации: выставка работ.",
]
NEW_LINES = [
    "Пояснительная записка",
    "Цель: познакомить детей с основами программирования роботов.",
    "Формы аттестации: выставка работ.",
    "Раздел <script>alert(1)</script> добавлен",
]


@pytest.fixture(autouse=True)
def _forget_extracted_texts():
    """Each test extracts its documents itself (the module keeps texts per process)."""
    compare._extracted_text.cache_clear()
    yield
    compare._extracted_text.cache_clear()


# --- Documents -----------------------------------------------------------------------------


def make_pdf(lines: list[str]) -> bytes:
    body = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    return weasyprint.HTML(string=f"<html><body>{body}</body></html>").write_pdf()


def make_docx(lines: list[str], table: list[list[str]] | None = None) -> bytes:
    document = docx.Document()
    for line in lines:
        document.add_paragraph(line)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for row, values in zip(grid.rows, table, strict=True):
            for cell, value in zip(row.cells, values, strict=True):
                cell.text = value
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def make_odt(lines: list[str]) -> bytes:
    document = OpenDocumentText()
    heading, *paragraphs = lines
    document.text.addElement(odf_text.H(outlinelevel=1, text=heading))
    for line in paragraphs:
        document.text.addElement(odf_text.P(text=line))
    buffer = io.BytesIO()
    document.write(buffer)
    return buffer.getvalue()


MAKERS = {
    "pdf": (make_pdf, PDF_TYPE),
    "docx": (make_docx, DOCX_TYPE),
    "odt": (make_odt, ODT_TYPE),
}


def stored(data: bytes, media_type: str) -> StoredFile:
    """The stored file of ``data`` (content-addressed: the same bytes are one row)."""
    sha256, size = storage.save_bytes(data)
    existing = db.session.execute(
        select(StoredFile).where(StoredFile.sha256 == sha256)
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    file = StoredFile(sha256=sha256, size=size, media_type=media_type)
    db.session.add(file)
    db.session.flush()
    return file


def set_program_document(program, user, data: bytes, media_type: str, name: str) -> None:
    for document in [d for d in program.documents if d.kind == DocumentKind.PROGRAM]:
        program.documents.remove(document)
    program.documents.append(
        ProgramDocument(
            kind=DocumentKind.PROGRAM,
            original_name=name,
            file=stored(data, media_type),
            uploaded_by_id=user.id,
        )
    )
    db.session.flush()


# --- Programs with versions ----------------------------------------------------------------


class Story:
    """A program, its provider user and a coordinator, moving through submissions."""

    def __init__(self, document=(b"", "", ""), **fields):
        self.program = factories.ProgramFactory(**fields)
        self.applicant = factories.ApplicantFactory(organization=self.program.organization)
        self.coordinator = factories.CoordinatorFactory()
        self.set_document(*document)

    def set_document(self, data: bytes, media_type: str, name: str) -> None:
        if data:
            set_program_document(self.program, self.applicant, data, media_type, name)

    def submit(self):
        return submit_program(self.program, self.applicant)

    def resubmit(self, document=(b"", "", ""), **fields):
        """A coordinator returns the program; the provider changes it and submits again."""
        advance(
            self.program.current_review,
            ReviewState.RETURNED,
            self.coordinator,
            reason="Нет учебного плана",
        )
        for name, value in fields.items():
            setattr(self.program, name, value)
        self.set_document(*document)
        return self.submit()

    @property
    def url(self) -> str:
        return f"/programs/{self.program.id}/compare"


def two_versions(kind: str = "pdf", old=OLD_LINES, new=NEW_LINES, **changes) -> Story:
    make, media_type = MAKERS[kind]
    story = Story(document=(make(old), media_type, f"программа-v1.{kind}"))
    story.submit()
    story.resubmit(document=(make(new), media_type, f"программа-v2.{kind}"), **changes)
    return story


# --- Reading the page ----------------------------------------------------------------------

ROW_RE = re.compile(
    r'<tr data-field="(?P<field>\w+)">\s*<th scope="row">(?P<label>.*?)</th>\s*'
    r'<td class="change-old[^"]*"[^>]*>(?P<old>.*?)</td>\s*<td class="change-new[^"]*"[^>]*>(?P<new>.*?)</td>',
    re.S,
)
DIFF_ROW_RE = re.compile(r'<tr class="diff-(?P<kind>\w+)[^"]*">(?P<cells>.*?)</tr>', re.S)
TEXT_CELL_RE = re.compile(r'<td class="text-break">(.*?)</td>', re.S)
TAG_RE = re.compile(r"<[^>]+>")


def plain(fragment: str) -> str:
    return html.unescape(TAG_RE.sub("", fragment)).strip()


def changed_fields(page: str) -> dict[str, tuple[str, str, str]]:
    return {
        m["field"]: (plain(m["label"]), plain(m["old"]), plain(m["new"]))
        for m in ROW_RE.finditer(page)
    }


def diff_lines(page: str, kind: str) -> list[str]:
    return [
        plain(TEXT_CELL_RE.search(m["cells"]).group(1))
        for m in DIFF_ROW_RE.finditer(page)
        if m["kind"] == kind
    ]


def open_page(auth, client, user, url: str):
    assert auth.login(user).status_code == 302
    response = client.get(url)
    return response, response.get_data(as_text=True)


# --- The page ------------------------------------------------------------------------------


def test_compare_lists_exactly_the_changed_fields_with_old_and_new_values(client, auth, english):
    new_municipality = factories.MunicipalityFactory(name="Город Смоленск")
    story = two_versions(
        "pdf",
        title="Программирование роботов",
        level=Level.BASIC,
        total_hours=144,
        adapted_for_disabilities=True,
        municipality=new_municipality,
    )
    old_municipality = story.program.versions[0].municipality.name

    response, page = open_page(auth, client, story.coordinator, story.url)

    assert response.status_code == 200
    assert changed_fields(page) == {
        "title": (
            "Title of the program",
            story.program.versions[0].title,
            "Программирование роботов",
        ),
        "level": ("Level", "Introductory", "Basic"),
        "total_hours": ("Total hours", "72", "144"),
        "adapted_for_disabilities": ("Adapted for children with disabilities (OVZ)", "no", "yes"),
        "municipality_id": ("Municipality where it runs", old_municipality, "Город Смоленск"),
    }
    assert "Version 1" in page and "Version 2" in page


def test_compare_says_nothing_changed_when_the_data_is_the_same(client, auth, english):
    story = two_versions("pdf")

    _, page = open_page(auth, client, story.coordinator, story.url)

    assert changed_fields(page) == {}
    assert "The program data did not change." in page


@pytest.mark.parametrize("kind", ["pdf", "docx", "odt"])
def test_compare_shows_removed_and_added_lines_of_the_document(client, auth, english, kind):
    story = two_versions(kind)

    response, page = open_page(auth, client, story.coordinator, story.url)

    assert response.status_code == 200
    old_version, new_version = story.program.versions
    for version in (old_version, new_version):
        document = version.documents[0]
        link = f'href="/versions/{version.id}/documents/{document.id}">{document.original_name}</a>'
        assert link in page
    assert diff_lines(page, REMOVED) == [
        "Цель: познакомить детей с основами робототехники.",
        "Учебный план рассчитан на 72 часа.",
    ]
    assert diff_lines(page, ADDED) == [
        "Цель: познакомить детей с основами программирования роботов.",
        "Раздел <script>alert(1)</script> добавлен",
    ]
    assert "Пояснительная записка" in diff_lines(page, CONTEXT)
    # The changed words of a rewritten line are marked.
    assert '<del class="fw-semibold">робототехники</del>' in page
    assert '<ins class="fw-semibold">программирования роботов</ins>' in page
    assert "Lines removed: 2. Lines added: 2." in page


def test_compare_escapes_user_text_in_data_and_document(client, auth):
    story = two_versions("docx", title="Кружок <script>alert('x')</script>")

    _, page = open_page(auth, client, story.coordinator, story.url)

    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Кружок &lt;script&gt;alert(" in page


def test_compare_explains_when_text_cannot_be_extracted_from_a_corrupt_pdf(client, auth, english):
    story = Story(document=(make_pdf(OLD_LINES), PDF_TYPE, "программа.pdf"))
    story.submit()
    story.resubmit(document=(b"%PDF-1.7\n\x00garbage, not a PDF", PDF_TYPE, "испорчен.pdf"))

    response, page = open_page(auth, client, story.coordinator, story.url)

    assert response.status_code == 200
    assert "The text could not be extracted from the file испорчен.pdf of version 2" in page
    assert 'id="text-diff"' not in page


def test_compare_says_the_document_is_the_same_file_when_it_did_not_change(client, auth, english):
    story = Story(document=(make_docx(OLD_LINES), DOCX_TYPE, "программа.docx"))
    story.submit()
    story.resubmit(total_hours=36)

    _, page = open_page(auth, client, story.coordinator, story.url)

    assert "The program document is the same file in both versions." in page
    assert set(changed_fields(page)) == {"total_hours"}


def test_compare_with_one_version_says_there_is_nothing_to_compare(client, auth, english):
    story = Story(document=(make_docx(OLD_LINES), DOCX_TYPE, "программа.docx"))
    story.submit()

    response, page = open_page(auth, client, story.applicant, story.url)

    assert response.status_code == 200
    assert "fewer than two submitted versions" in page


def test_compare_defaults_to_the_previous_and_the_latest_version(client, auth, english):
    story = Story(document=(make_docx(OLD_LINES), DOCX_TYPE, "программа.docx"))
    story.submit()
    story.resubmit(total_hours=36)
    story.resubmit(total_hours=48)

    _, latest = open_page(auth, client, story.coordinator, story.url)
    _, chosen = open_page(auth, client, story.coordinator, f"{story.url}?from=1&to=3")
    _, from_only = open_page(auth, client, story.coordinator, f"{story.url}?from=1")

    assert changed_fields(latest)["total_hours"][1:] == ("36", "48")
    assert changed_fields(chosen)["total_hours"][1:] == ("72", "48")
    assert changed_fields(from_only)["total_hours"][1:] == ("72", "48")


@pytest.mark.parametrize("query", ["?from=1&to=2", "?to=2", "?from=abc", "?from=1&to=9"])
def test_compare_with_version_numbers_not_of_this_program_is_not_found(client, auth, query):
    lonely = Story(document=(make_docx(OLD_LINES), DOCX_TYPE, "программа.docx"))
    lonely.submit()
    two_versions("docx")  # another program that does have versions 1 and 2

    response, _ = open_page(auth, client, lonely.coordinator, lonely.url + query)

    assert response.status_code == 404


def test_compare_of_an_unknown_program_is_not_found(client, auth):
    coordinator = factories.CoordinatorFactory()

    response, _ = open_page(auth, client, coordinator, "/programs/987654/compare")

    assert response.status_code == 404


# --- Who may open it -----------------------------------------------------------------------


def actor(story: Story, who: str):
    program = story.program
    if who == "applicant_own":
        return story.applicant
    if who == "applicant_other":
        return factories.ApplicantFactory()
    if who == "expert_unassigned":
        return factories.ExpertUserFactory()
    if who == "expert_assigned":
        expert = factories.ExpertUserFactory()
        db.session.add(
            Assignment(
                review=program.current_review,
                expert_id=expert.id,
                seat=1,
                due_on=date(2030, 1, 31),
            )
        )
        db.session.flush()
        return expert
    if who == "municipal_own":
        return factories.MunicipalViewerFactory(municipality=program.municipality)
    if who == "municipal_other":
        return factories.MunicipalViewerFactory()
    if who == "coordinator":
        return story.coordinator
    if who == "admin":
        return factories.AdminFactory()
    raise AssertionError(who)


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("applicant_own", 200),
        ("applicant_other", 403),
        ("expert_unassigned", 403),
        ("expert_assigned", 200),
        ("municipal_own", 200),
        ("municipal_other", 403),
        ("coordinator", 200),
        ("admin", 200),
    ],
)
def test_compare_answers_each_actor(client, auth, english, who, status):
    story = two_versions("docx", total_hours=36)

    response, page = open_page(auth, client, actor(story, who), story.url)

    assert response.status_code == status
    if status == 200:
        assert changed_fields(page)["total_hours"][1:] == ("72", "36")
    else:
        assert "Total hours" not in page


def test_compare_sends_anonymous_users_to_login(client):
    story = two_versions("docx")

    response = client.get(story.url)

    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


# --- The pieces ----------------------------------------------------------------------------


def test_field_labels_name_every_data_field():
    assert set(FIELD_LABELS) == set(ProgramData.DATA_FIELDS)


def test_metadata_changes_follow_the_order_of_the_data_fields(session):
    story = two_versions("docx", total_hours=36, title="Новое название", network_form=True)
    old, new = story.program.versions

    changes = metadata_changes(old, new)

    assert [c.field for c in changes] == ["title", "total_hours", "network_form"]
    assert [str(c.label) for c in changes] == [
        str(FIELD_LABELS[name]) for name in ("title", "total_hours", "network_form")
    ]


def test_document_text_reads_docx_paragraphs_and_table_cells(session):
    data = make_docx(["Учебный план"], table=[["Тема", "Часы"], ["Сборка робота", "12"]])

    text = document_text(stored(data, DOCX_TYPE))

    assert text == "Учебный план\nТема | Часы\nСборка робота | 12"


def test_document_text_reads_merged_cells_and_breaks_as_python_docx_does(session):
    document = docx.Document()
    paragraph = document.add_paragraph("Тема\tчасы")
    paragraph.paragraph_format.tab_stops.add_tab_stop(docx.shared.Cm(5))  # no text
    paragraph.add_run().add_break()
    paragraph.add_run("итого")
    grid = document.add_table(rows=3, cols=3)
    grid.cell(0, 0).merge(grid.cell(0, 1)).text = "Раздел"
    grid.cell(0, 2).text = "Часы"
    grid.cell(1, 0).merge(grid.cell(2, 0)).text = "Сборка"
    grid.cell(1, 1).text = "теория"
    grid.cell(2, 2).text = "12"
    buffer = io.BytesIO()
    document.save(buffer)

    text = document_text(stored(buffer.getvalue(), DOCX_TYPE))

    assert text == "Тема часы\nитого\nРаздел | Часы\nСборка | теория |\nСборка | | 12"


def test_document_text_recognises_the_format_by_content_when_the_type_is_unknown(session):
    text = document_text(stored(make_odt(OLD_LINES), "application/octet-stream"))

    assert text == "\n".join(OLD_LINES)


def test_document_text_is_none_for_a_file_without_text(session):
    assert document_text(stored(b"PK\x03\x04 not really a zip", DOCX_TYPE)) is None
    assert document_text(stored(make_pdf([]), PDF_TYPE)) is None
    assert document_text(stored(b"plain bytes", "application/octet-stream")) is None


def test_document_text_is_cut_at_the_limit(session):
    data = make_docx([f"Строка номер {n}" for n in range(200)])

    text = document_text(stored(data, DOCX_TYPE), limit=100)

    assert len(text) == 100
    assert text.startswith("Строка номер 0\nСтрока номер 1\n")


def test_text_diff_groups_unchanged_lines_around_changes():
    old = "\n".join(f"строка {n}" for n in range(1, 21))
    new = old.replace("строка 3\n", "").replace("строка 18", "строка восемнадцать")

    diff = text_diff(old, new, context=2)

    assert (diff.removed, diff.added) == (2, 1)
    first, second = diff.hunks
    assert [(line.kind, line.old_number, line.new_number, line.text) for line in first.lines] == [
        (CONTEXT, 1, 1, "строка 1"),
        (CONTEXT, 2, 2, "строка 2"),
        (REMOVED, 3, None, "строка 3"),
        (CONTEXT, 4, 3, "строка 4"),
        (CONTEXT, 5, 4, "строка 5"),
    ]
    assert [(line.kind, line.text) for line in second.lines] == [
        (CONTEXT, "строка 16"),
        (CONTEXT, "строка 17"),
        (REMOVED, "строка 18"),
        (ADDED, "строка восемнадцать"),
        (CONTEXT, "строка 19"),
        (CONTEXT, "строка 20"),
    ]


def test_text_diff_of_identical_texts_has_no_hunks():
    diff = text_diff("а\nб", "а\nб")

    assert not diff.changed and diff.hunks == ()


def test_text_diff_keeps_at_most_max_lines_for_display_but_counts_all():
    old = "\n".join(f"старая строка {n}" for n in range(100))
    new = "\n".join(f"новый текст {n}" for n in range(100))

    diff = text_diff(old, new, max_lines=10)

    assert diff.truncated
    assert sum(len(hunk.lines) for hunk in diff.hunks) == 10
    assert (diff.removed, diff.added) == (100, 100)


def test_document_text_refuses_an_archive_that_unpacks_beyond_the_limit(app, session, monkeypatch):
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(make_docx(OLD_LINES))) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            target.writestr(info.filename, source.read(info))
        target.writestr("word/media/image1.png", b"\x00" * (2 * 1024 * 1024))
    file = stored(out.getvalue(), DOCX_TYPE)
    assert document_text(file) == "\n".join(OLD_LINES)

    monkeypatch.setitem(app.config, "DOCUMENT_MAX_UNPACKED_MB", 1)

    assert document_text(file) is None
