"""Decompression bombs and other documents past the reading limits (issue 19, item 4).

The bomb is the one seen in the adversarial pass: a valid DOCX of well under a megabyte whose
``word/document.xml`` inflates to about 180 MB of repeated paragraphs. It is built here,
streamed into the archive, so the test file stays small. Reading it must be bounded: the
comparison page answers quickly, says the document is too large to compare and the process
does not grow; an upload of it is refused with a message and leaves nothing behind.
"""

from __future__ import annotations

import gc
import hashlib
import io
import resource
import time
import zipfile

import pytest
from sqlalchemy import func, select

from review_portal import storage
from review_portal.programs import compare
from review_portal.programs.models import StoredFile
from tests.factories import ApplicantFactory, ProgramFactory
from tests.test_compare import (
    DOCX_TYPE,
    NEW_LINES,
    ODT_TYPE,
    OLD_LINES,
    PDF_TYPE,
    REMOVED,
    Story,
    diff_lines,
    make_docx,
    make_odt,
    make_pdf,
    open_page,
    two_versions,
)
from tests.test_documents import stored_paths, upload, upload_error, working_documents

MB = 1024 * 1024
TOO_LARGE_RU = "Документ слишком большой для сравнения."
PARAGRAPH = (
    "<w:p><w:r><w:t>Учебный план рассчитан на 72 часа: теория, практика, "
    "аттестация.</w:t></w:r></w:p>"
).encode()
DOCUMENT_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    b"<w:body>"
)
DOCUMENT_TAIL = b"<w:sectPr/></w:body></w:document>"


def make_docx_bomb(inflated: int = 180 * MB) -> bytes:
    """A valid DOCX whose ``word/document.xml`` inflates to about ``inflated`` bytes.

    The other parts come from an ordinary DOCX; the document part is written in chunks
    straight into the deflate stream, so neither it nor its text is ever held whole.
    """
    base = make_docx(["Пояснительная записка"])
    chunk = PARAGRAPH * (MB // len(PARAGRAPH))
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(base)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bomb,
    ):
        for info in source.infolist():
            if info.filename != "word/document.xml":
                bomb.writestr(info.filename, source.read(info))
        with bomb.open("word/document.xml", "w") as part:
            part.write(DOCUMENT_HEAD)
            written = len(DOCUMENT_HEAD)
            while written < inflated:
                part.write(chunk)
                written += len(chunk)
            part.write(DOCUMENT_TAIL)
    return out.getvalue()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return make_docx_bomb()


@pytest.fixture
def program(session):
    return ProgramFactory()


@pytest.fixture
def as_provider(auth, english, program):
    auth.login(ApplicantFactory(organization=program.organization))
    return auth


@pytest.fixture(autouse=True)
def _forget_extracted_texts():
    compare._extracted_text.cache_clear()
    yield
    compare._extracted_text.cache_clear()


def _status_kb(name: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    raise LookupError(name)


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) of this process; False where refused."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def measured(call):
    """``call()``'s result, its duration in seconds and the process's growth in MB (peak
    resident memory during the call over resident memory before it)."""
    gc.collect()
    before_kb = _status_kb("VmRSS")
    peak_reset = _reset_peak()
    max_before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    result = call()
    elapsed = time.perf_counter() - started
    if peak_reset:
        growth_kb = _status_kb("VmHWM") - before_kb
    else:
        growth_kb = max(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - max_before_kb,
            _status_kb("VmRSS") - before_kb,
        )
    return result, elapsed, growth_kb / 1024


def test_the_bomb_is_small_and_inflates_to_180_mb(bomb):
    with zipfile.ZipFile(io.BytesIO(bomb)) as archive:
        inflated = archive.getinfo("word/document.xml").file_size
    assert len(bomb) < 2 * MB
    assert inflated >= 180 * MB


def test_compare_page_refuses_a_docx_bomb_quickly_and_without_growing(client, auth, bomb, capsys):
    story = Story(document=(make_docx(OLD_LINES), DOCX_TYPE, "программа.docx"))
    story.submit()
    story.resubmit(document=(bomb, DOCX_TYPE, "бомба.docx"))
    assert auth.login(story.coordinator).status_code == 302

    response, seconds, growth_mb = measured(lambda: client.get(story.url))

    with capsys.disabled():
        print(f"\ncompare page with the DOCX bomb: {seconds:.2f} s, +{growth_mb:.0f} MB")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert TOO_LARGE_RU in page
    assert "бомба.docx (версия 2)" in page
    assert 'id="text-diff"' not in page
    assert seconds < 5
    assert growth_mb < 100


def test_an_ordinary_docx_still_compares(client, auth, english):
    story = two_versions("docx")

    response, page = open_page(auth, client, story.coordinator, story.url)

    assert response.status_code == 200
    assert "The document is too large to compare." not in page
    assert diff_lines(page, REMOVED) == [
        "Цель: познакомить детей с основами робототехники.",
        "Учебный план рассчитан на 72 часа.",
    ]


def test_a_docx_past_the_paragraph_limit_is_too_large_to_compare(client, auth, app, monkeypatch):
    monkeypatch.setitem(app.config, "DOCUMENT_MAX_PARAGRAPHS", 100)
    story = Story(document=(make_docx(OLD_LINES), DOCX_TYPE, "программа.docx"))
    story.submit()
    many = [f"Занятие {n}" for n in range(101)]
    story.resubmit(document=(make_docx(many), DOCX_TYPE, "длинная.docx"))

    response, page = open_page(auth, client, story.coordinator, story.url)

    assert response.status_code == 200
    assert TOO_LARGE_RU in page
    assert "длинная.docx (версия 2)" in page


def test_a_docx_within_the_paragraph_limit_compares(client, auth, app, monkeypatch, english):
    monkeypatch.setitem(app.config, "DOCUMENT_MAX_PARAGRAPHS", 100)
    story = two_versions("docx", new=[*NEW_LINES, *(f"Занятие {n}" for n in range(90))])

    _, page = open_page(auth, client, story.coordinator, story.url)

    assert "The document is too large to compare." not in page
    assert "Учебный план рассчитан на 72 часа." in diff_lines(page, REMOVED)


def test_an_odt_past_the_xml_limit_is_too_large_to_compare(client, auth, app, monkeypatch):
    monkeypatch.setitem(app.config, "DOCUMENT_MAX_XML_MB", 1)
    story = Story(document=(make_odt(OLD_LINES), ODT_TYPE, "программа.odt"))
    story.submit()
    big = ["Заголовок", *(f"Строка учебного плана номер {n}, тема и часы" for n in range(20_000))]
    story.resubmit(document=(make_odt(big), ODT_TYPE, "большая.odt"))

    response, page = open_page(auth, client, story.coordinator, story.url)

    assert response.status_code == 200
    assert TOO_LARGE_RU in page
    assert "большая.odt (версия 2)" in page


def test_a_pdf_past_the_page_limit_is_too_large_to_compare(client, auth, app, monkeypatch):
    monkeypatch.setitem(app.config, "DOCUMENT_MAX_PAGES", 1)
    story = Story(document=(make_pdf(OLD_LINES), PDF_TYPE, "программа.pdf"))
    story.submit()
    story.resubmit(document=(make_pdf(OLD_LINES * 60), PDF_TYPE, "толстая.pdf"))

    response, page = open_page(auth, client, story.coordinator, story.url)

    assert response.status_code == 200
    assert TOO_LARGE_RU in page
    # The first version has one page and is within the limit.
    assert "толстая.pdf (версия 2)" in page
    assert "программа.pdf (версия 1)" not in page


def test_an_uploaded_docx_bomb_is_refused_and_leaves_nothing(
    app, session, as_provider, client, program, bomb
):
    before = stored_paths(app)
    bomb_path = storage.path_for(hashlib.sha256(bomb).hexdigest())
    # An earlier test of this module may have stored the same bytes (its rows rolled back
    # by the test's transaction, its file left): a file that was there is another write's,
    # and the refused upload must neither delete it nor leave one of its own.
    was_there = bomb_path.exists()

    response, seconds, growth_mb = measured(
        lambda: upload(as_provider, program, bomb, "программа.docx")
    )

    assert response.status_code == 422
    assert "unpacks to more than the portal reads" in upload_error(response)
    assert working_documents(session, program) == []
    assert session.scalar(select(func.count()).select_from(StoredFile)) == 0
    # Nothing new on disk: not the bomb, unless it was there before.
    assert stored_paths(app) <= before
    assert bomb_path.exists() == was_there
    assert seconds < 5
    assert growth_mb < 100


def test_an_uploaded_zip_whose_entries_inflate_too_far_is_refused(
    app, session, as_provider, client, program, monkeypatch
):
    # Within the XML limit, past the limit for the whole archive (an embedded "image").
    monkeypatch.setitem(app.config, "DOCUMENT_MAX_UNPACKED_MB", 2)
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(make_docx(OLD_LINES))) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            target.writestr(info.filename, source.read(info))
        target.writestr("word/media/image1.png", b"\x00" * (3 * MB))
    before = stored_paths(app)

    response = upload(as_provider, program, out.getvalue(), "программа.docx")

    assert response.status_code == 422
    assert "unpacks to more than the portal reads" in upload_error(response)
    assert working_documents(session, program) == []
    assert stored_paths(app) <= before


def test_an_ordinary_docx_upload_is_still_stored(app, session, as_provider, client, program):
    response = upload(as_provider, program, make_docx(OLD_LINES), "программа.docx")

    assert response.status_code == 302
    assert [d.original_name for d in working_documents(session, program)] == ["программа.docx"]
