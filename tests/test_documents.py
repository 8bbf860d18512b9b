"""Program documents: recognition by content, safe storage and names, who may upload, remove
and download them, and the frozen files of submitted versions."""

from __future__ import annotations

import html
import io
import re
import zipfile
from functools import cache
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.http import parse_options_header
from werkzeug.test import encode_multipart

from review_portal.enums import DocumentKind
from review_portal.programs import documents
from review_portal.programs.models import ProgramDocument, StoredFile
from review_portal.programs.services import submit_program
from review_portal.workflow import ReviewState, advance
from tests.factories import (
    AdminFactory,
    ApplicantFactory,
    CoordinatorFactory,
    ExpertUserFactory,
    MunicipalViewerFactory,
    ProgramFactory,
)

# --- sample files ------------------------------------------------------------------------


@cache
def make_pdf(title: str = "Программа") -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    writer.add_metadata({"/Title": title})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@cache
def make_docx() -> bytes:
    import docx

    document = docx.Document()
    document.add_paragraph("Дополнительная общеразвивающая программа «Роботы»")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


@cache
def make_odt() -> bytes:
    from odf.opendocument import OpenDocumentText
    from odf.text import P

    document = OpenDocumentText()
    document.text.addElement(P(text="Дополнительная общеразвивающая программа"))
    out = io.BytesIO()
    document.write(out)
    return out.getvalue()


def make_zip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


EXECUTABLE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200 + b"PE\x00\x00"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64


# --- helpers -----------------------------------------------------------------------------


def stored_paths(app) -> set[Path]:
    """Every file under the storage's ``files/`` (``incoming/`` included)."""
    root = Path(app.config["STORAGE_DIR"]) / "files"
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def upload(auth, program, content: bytes, name: str = "program.pdf", kind: str = "program"):
    # The body is encoded here, in memory: the test client spools a big one to a temporary
    # file it never closes (an unclosed-file warning, an error under "warnings are errors").
    boundary, body = encode_multipart(
        {"csrf_token": auth.token("/"), "kind": kind, "file": _file_storage(content, name)}
    )
    return auth.client.post(
        f"/programs/{program.id}/documents",
        data=body,
        content_type=f'multipart/form-data; boundary="{boundary}"',
    )


def get(client, url: str):
    """A GET whose streamed file is read and closed (open files would warn)."""
    response = client.get(url)
    response.get_data()
    response.close()
    return response


def upload_error(response) -> str:
    """The message at the upload form of the program's page, shown again after a refusal."""
    match = re.search(r'id="document-upload-error"[^>]*>([^<]*)<', response.get_data(as_text=True))
    assert match, "the page shows no upload error"
    return html.unescape(match.group(1))


def flashes(client) -> list[str]:
    with client.session_transaction() as browser_session:
        return [message for _category, message in browser_session.get("_flashes", [])]


def working_documents(session, program) -> list[ProgramDocument]:
    session.expire_all()
    return list(
        session.execute(
            select(ProgramDocument)
            .where(ProgramDocument.program_id == program.id)
            .order_by(ProgramDocument.id)
        ).scalars()
    )


@pytest.fixture
def program(session):
    return ProgramFactory()


@pytest.fixture
def provider(program):
    return ApplicantFactory(organization=program.organization)


@pytest.fixture
def as_provider(auth, english, provider):
    auth.login(provider)
    return auth


# --- recognition -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (make_pdf(), documents.PDF),
        (make_docx(), documents.DOCX),
        (make_odt(), documents.ODT),
        (EXECUTABLE, None),
        (PNG, None),
        (b"%PDF-1.7\n truncated, no end marker", None),
        (make_zip({"word/document.xml": b"<w/>"}), None),
        (
            make_zip(
                {
                    "mimetype": b"application/vnd.oasis.opendocument.spreadsheet",
                    "content.xml": b"<x/>",
                }
            ),
            None,
        ),
        (make_zip({"content.xml": b"<x/>", "mimetype": documents.ODT.encode()}), None),
        (b"PK\x03\x04 not really a zip", None),
    ],
    ids=[
        "pdf",
        "docx",
        "odt",
        "exe",
        "png",
        "pdf-truncated",
        "zip-without-content-types",
        "ods",
        "odt-mimetype-not-first",
        "broken-zip",
    ],
)
def test_detect_media_type_recognises_content(tmp_path, content, expected):
    path = tmp_path / "file"
    path.write_bytes(content)
    assert documents.detect_media_type(path) == expected


def test_detect_media_type_refuses_macro_enabled_docx(tmp_path):
    content_types = make_docx_content_types(
        "application/vnd.ms-word.document.macroEnabled.main+xml"
    )
    path = tmp_path / "file"
    path.write_bytes(make_zip({"[Content_Types].xml": content_types, "word/document.xml": b"<w/>"}))
    assert documents.detect_media_type(path) is None


def make_docx_content_types(main_type: str) -> bytes:
    return (
        '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
        f'content-types"><Override PartName="/word/document.xml" ContentType="{main_type}"/>'
        "</Types>"
    ).encode()


@pytest.mark.parametrize(
    ("name", "media_type", "expected"),
    [
        ("../../etc/passwd.pdf", documents.PDF, "passwd.pdf"),
        ("C:\\Users\\Иван\\Программа.docx", documents.DOCX, "Программа.docx"),
        ("Программа «Роботы».pdf", documents.PDF, "Программа «Роботы».pdf"),
        ("program.pdf", documents.DOCX, "program.docx"),
        ("setup.exe", documents.PDF, "setup.exe.pdf"),
        ("report\u202efdp.exe", documents.PDF, "reportfdp.exe.pdf"),
        ("a\x00b\nc.odt", documents.ODT, "ab c.odt"),
        ('what?<is>:"this"|*.pdf', documents.PDF, "what__is___this___.pdf"),
        ("..", documents.PDF, "document.pdf"),
        ("", documents.ODT, "document.odt"),
        (None, documents.DOCX, "document.docx"),
        ("я" * 400 + ".pdf", documents.PDF, "я" * 251 + ".pdf"),
    ],
)
def test_safe_display_name_keeps_a_harmless_base_name(name, media_type, expected):
    assert documents.safe_display_name(name, media_type) == expected


def test_ascii_name_transliterates_russian():
    assert documents.ascii_name("Программа «Роботы».pdf") == "Programma Roboty.pdf"
    assert documents.ascii_name("Щука и ёж.docx") == "Shchuka i ezh.docx"
    assert documents.ascii_name("«».pdf") == "document.pdf"


# --- uploads -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "name", "media_type"),
    [
        (make_pdf(), "Программа.pdf", documents.PDF),
        (make_docx(), "Программа.docx", documents.DOCX),
        (make_odt(), "Программа.odt", documents.ODT),
    ],
    ids=["pdf", "docx", "odt"],
)
def test_upload_valid_document_is_stored(
    app, session, as_provider, program, content, name, media_type
):
    response = upload(as_provider, program, content, name)

    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/programs/{program.id}")
    [document] = working_documents(session, program)
    assert document.kind == DocumentKind.PROGRAM
    assert document.original_name == name
    assert document.file.media_type == media_type
    assert document.file.size == len(content)
    path = Path(app.config["STORAGE_DIR"]) / "files" / document.file.sha256[:2]
    path = path / document.file.sha256[2:4] / document.file.sha256
    assert path.read_bytes() == content


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (EXECUTABLE, "program.pdf", "Only PDF, DOCX and ODT documents are accepted"),
        (PNG, "scan.pdf", "Only PDF, DOCX and ODT documents are accepted"),
        (b"", "program.pdf", "The file is empty."),
        (
            make_zip({"word/document.xml": b"<w/>"}),
            "program.docx",
            "Only PDF, DOCX and ODT documents are accepted",
        ),
    ],
    ids=["renamed-executable", "png", "empty", "plain-zip"],
)
def test_upload_refused_content_leaves_nothing(
    app, session, as_provider, client, program, content, name, message
):
    before = stored_paths(app)

    response = upload(as_provider, program, content, name)

    assert response.status_code == 422
    assert message in upload_error(response)
    assert working_documents(session, program) == []
    assert session.scalar(select(func.count()).select_from(StoredFile)) == 0
    assert stored_paths(app) == before


def test_upload_over_size_is_refused_and_leaves_nothing(
    app, session, as_provider, client, program, monkeypatch
):
    monkeypatch.setitem(app.config, "MAX_UPLOAD_MB", 1)
    big = make_pdf()[:-6] + b"%" + b"x" * (1024 * 1024) + b"\n%%EOF\n"
    before = stored_paths(app)

    response = upload(as_provider, program, big)

    assert response.status_code == 413
    assert "larger than 1 MB" in upload_error(response)
    assert working_documents(session, program) == []
    assert stored_paths(app) == before


def test_upload_over_request_limit_is_refused_with_a_message(
    app, session, as_provider, client, program, monkeypatch
):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1024)
    before = stored_paths(app)

    response = upload(as_provider, program, make_pdf() + b"%" + b"x" * 4096 + b"\n%%EOF\n")

    assert response.status_code == 413
    assert "The file is larger than 20 MB." in upload_error(response)
    assert working_documents(session, program) == []
    assert stored_paths(app) == before


def test_upload_without_file_is_refused(session, as_provider, client, program):
    response = as_provider.post(f"/programs/{program.id}/documents", {"kind": "program"})

    assert response.status_code == 422
    assert upload_error(response) == "Choose a file to upload."
    assert working_documents(session, program) == []


def test_upload_unknown_kind_is_refused(session, as_provider, client, program):
    response = upload(as_provider, program, make_pdf(), kind="secret")

    assert response.status_code == 422
    assert upload_error(response) == (
        "Choose whether the file is the program document or an attachment."
    )
    assert working_documents(session, program) == []


def test_upload_path_in_name_is_stored_under_base_name(app, session, as_provider, program):
    upload(as_provider, program, make_pdf(), "../../etc/passwd.pdf")

    [document] = working_documents(session, program)
    assert document.original_name == "passwd.pdf"
    assert not (Path(app.config["STORAGE_DIR"]) / "etc").exists()
    response = get(as_provider.client, f"/programs/{program.id}/documents/{document.id}")
    assert response.headers["Content-Disposition"] == 'attachment; filename="passwd.pdf"'


def test_upload_wrong_extension_takes_the_detected_one(session, as_provider, program):
    upload(as_provider, program, make_docx(), "program.pdf")

    [document] = working_documents(session, program)
    assert document.original_name == "program.docx"
    assert document.file.media_type == documents.DOCX


def test_upload_identical_content_is_stored_once(app, session, as_provider, provider, program):
    other = ProgramFactory(organization=program.organization)
    content = make_pdf("Одинаковое содержимое")

    upload(as_provider, program, content, "first.pdf")
    upload(as_provider, other, content, "second.pdf")

    [first] = working_documents(session, program)
    [second] = working_documents(session, other)
    assert first.file_id == second.file_id
    sha256 = first.file.sha256
    assert session.scalar(select(func.count()).where(StoredFile.sha256 == sha256)) == 1
    assert [p for p in stored_paths(app) if p.name == sha256] == [
        Path(app.config["STORAGE_DIR"]) / "files" / sha256[:2] / sha256[2:4] / sha256
    ]


def test_upload_program_document_replaces_the_previous_one(session, as_provider, program):
    upload(as_provider, program, make_pdf("Старая"), "old.pdf")
    upload(as_provider, program, make_pdf("Приложение"), "annex.pdf", kind="attachment")
    upload(as_provider, program, make_odt(), "new.odt")

    names = {(d.kind, d.original_name) for d in working_documents(session, program)}
    assert names == {(DocumentKind.PROGRAM, "new.odt"), (DocumentKind.ATTACHMENT, "annex.pdf")}


def test_upload_attachments_are_capped(session, as_provider, client, provider, program):
    for n in range(documents.MAX_ATTACHMENTS):
        documents.add_document(
            program,
            provider,
            _file_storage(make_pdf(f"Приложение {n}"), f"{n}.pdf"),
            DocumentKind.ATTACHMENT,
        )
    session.commit()  # the refused request rolls back; the setup must survive it
    before = len(working_documents(session, program))

    response = upload(as_provider, program, make_pdf("Лишнее"), "extra.pdf", kind="attachment")

    assert response.status_code == 422
    assert "at most 10 attachments" in upload_error(response)
    assert len(working_documents(session, program)) == before == documents.MAX_ATTACHMENTS


def test_upload_same_attachment_twice_is_refused(app, session, as_provider, client, program):
    upload(as_provider, program, make_pdf("Приложение"), "annex.pdf", kind="attachment")
    files = stored_paths(app)

    response = upload(as_provider, program, make_pdf("Приложение"), "again.pdf", kind="attachment")

    assert response.status_code == 422
    assert upload_error(response) == "This file is already attached to the program."
    assert [d.original_name for d in working_documents(session, program)] == ["annex.pdf"]
    assert stored_paths(app) == files  # the file of the first upload stays


def _file_storage(content: bytes, name: str) -> FileStorage:
    return FileStorage(stream=io.BytesIO(content), filename=name)


def test_add_document_writes_an_audit_event(session, provider, program):
    from review_portal.audit.models import AuditEvent

    document = documents.add_document(
        program, provider, _file_storage(make_pdf(), "p.pdf"), "program"
    )

    event = session.execute(select(AuditEvent).order_by(AuditEvent.id.desc())).scalars().first()
    assert event.action == "document.add"
    assert event.object_id == str(program.id)
    assert event.after["document_id"] == document.id
    assert event.after["sha256"] == document.file.sha256


def test_delete_removes_the_working_document(session, as_provider, client, program):
    upload(as_provider, program, make_pdf(), "p.pdf")
    [document] = working_documents(session, program)

    response = as_provider.post(f"/programs/{program.id}/documents/{document.id}/delete")

    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/programs/{program.id}")
    assert working_documents(session, program) == []
    assert "The file “p.pdf” has been removed." in flashes(client)


# --- downloads ---------------------------------------------------------------------------


def test_download_cyrillic_name_has_utf8_filename(session, as_provider, program):
    name = "Программа «Роботы».pdf"
    upload(as_provider, program, make_pdf(), name)
    [document] = working_documents(session, program)

    response = get(as_provider.client, f"/programs/{program.id}/documents/{document.id}")

    assert response.status_code == 200
    assert response.data == make_pdf()
    assert response.mimetype == "application/pdf"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="Programma Roboty.pdf"; ')
    assert f"filename*=UTF-8''{quote(name, safe='')}" in disposition
    assert parse_options_header(disposition) == ("attachment", {"filename": name})


def test_download_docx_has_its_media_type(session, as_provider, program):
    upload(as_provider, program, make_docx(), "p.docx")
    [document] = working_documents(session, program)

    response = get(as_provider.client, f"/programs/{program.id}/documents/{document.id}")

    assert response.mimetype == documents.DOCX
    assert response.data == make_docx()
    assert response.headers["Content-Disposition"] == 'attachment; filename="p.docx"'


def test_download_document_of_another_program_url_is_404(session, as_provider, program):
    other = ProgramFactory(organization=program.organization)
    upload(as_provider, program, make_pdf(), "p.pdf")
    [document] = working_documents(session, program)

    response = get(as_provider.client, f"/programs/{other.id}/documents/{document.id}")

    assert response.status_code == 404
    assert make_pdf() not in response.data


@pytest.mark.parametrize("actor", ["coordinator", "admin"])
def test_download_working_document_allowed_to_staff(session, auth, provider, program, actor):
    document = documents.add_document(
        program, provider, _file_storage(make_pdf(), "p.pdf"), DocumentKind.PROGRAM
    )
    user = CoordinatorFactory() if actor == "coordinator" else AdminFactory()
    auth.login(user)

    response = get(auth.client, f"/programs/{program.id}/documents/{document.id}")

    assert response.status_code == 200
    assert response.data == make_pdf()


@pytest.fixture
def outsiders(program):
    """Users who must never reach the program's working files, with a program of their own."""
    applicant_other = ApplicantFactory()
    own_program = ProgramFactory(organization=applicant_other.organization)
    return {
        "applicant_other": (applicant_other, own_program),
        "expert": (ExpertUserFactory(), None),
        "municipal": (MunicipalViewerFactory(), None),
        "municipal_same": (MunicipalViewerFactory(municipality=program.municipality), None),
    }


@pytest.mark.parametrize("actor", ["applicant_other", "expert", "municipal", "municipal_same"])
def test_working_documents_are_refused_to_outsiders(
    app, session, auth, provider, program, outsiders, actor
):
    secret = make_pdf("Чужая программа")
    document = documents.add_document(
        program, provider, _file_storage(secret, "secret.pdf"), DocumentKind.PROGRAM
    )
    user, own_program = outsiders[actor]
    own_document = None
    if own_program is not None:
        own_document = documents.add_document(
            own_program, user, _file_storage(make_pdf("Своя"), "own.pdf"), DocumentKind.PROGRAM
        )
    session.commit()
    auth.login(user)

    # Guessing: the document's own URL, neighbouring ids, and the id through the user's
    # own program.
    guesses = range(max(1, document.id - 3), document.id + 3)
    urls = [f"/programs/{program.id}/documents/{i}" for i in guesses]
    if own_program is not None:
        urls += [
            f"/programs/{own_program.id}/documents/{i}" for i in guesses if i != own_document.id
        ]
    for url in urls:
        response = get(auth.client, url)
        assert response.status_code in (403, 404), url
        assert secret not in response.data
    own_url = f"/programs/{program.id}/documents/{document.id}"
    assert get(auth.client, own_url).status_code == 403

    before = stored_paths(app)
    response = upload(auth, program, make_pdf("Подмена"), "evil.pdf")
    assert response.status_code == 403
    response = auth.post(f"/programs/{program.id}/documents/{document.id}/delete")
    assert response.status_code == 403
    if own_program is not None:
        response = auth.post(f"/programs/{own_program.id}/documents/{document.id}/delete")
        assert response.status_code == 404
    assert [d.id for d in working_documents(session, program)] == [document.id]
    assert stored_paths(app) == before


def test_documents_are_locked_after_submission(session, as_provider, provider, program):
    documents.add_document(program, provider, _file_storage(make_pdf(), "p.pdf"), "program")
    submit_program(program, provider)
    [document] = working_documents(session, program)

    assert upload(as_provider, program, make_odt(), "new.odt").status_code == 403
    delete = f"/programs/{program.id}/documents/{document.id}/delete"
    assert as_provider.post(delete).status_code == 403
    assert [d.original_name for d in working_documents(session, program)] == ["p.pdf"]


def test_anonymous_is_sent_to_login(session, client, provider, program):
    document = documents.add_document(
        program, provider, _file_storage(make_pdf(), "p.pdf"), "program"
    )
    submit_program(program, provider)
    [version_document] = program.versions[0].documents

    for url in (
        f"/programs/{program.id}/documents/{document.id}",
        f"/versions/{program.versions[0].id}/documents/{version_document.id}",
    ):
        response = get(client, url)
        assert response.status_code == 302
        assert "/login" in response.headers["Location"]


# --- versions ----------------------------------------------------------------------------


@pytest.fixture
def submitted(session, provider, program):
    """The program submitted with a PDF program document and a DOCX attachment."""
    documents.add_document(program, provider, _file_storage(make_pdf(), "Программа.pdf"), "program")
    documents.add_document(
        program, provider, _file_storage(make_docx(), "annex.docx"), "attachment"
    )
    submit_program(program, provider)
    session.commit()
    version = program.versions[-1]
    by_kind = {d.kind: d for d in version.documents}
    return version, by_kind[DocumentKind.PROGRAM], by_kind[DocumentKind.ATTACHMENT]


def test_version_document_inline_pdf_has_restrictive_headers(auth, provider, submitted):
    version, pdf, _docx = submitted
    auth.login(provider)

    response = get(auth.client, f"/versions/{version.id}/documents/{pdf.id}?inline=1")

    assert response.status_code == 200
    assert response.data == make_pdf()
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"].startswith("inline; ")
    assert parse_options_header(response.headers["Content-Disposition"])[1] == {
        "filename": "Программа.pdf"
    }
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_version_document_inline_docx_is_still_an_attachment(auth, provider, submitted):
    version, _pdf, docx = submitted
    auth.login(provider)

    response = get(auth.client, f"/versions/{version.id}/documents/{docx.id}?inline=1")

    assert response.headers["Content-Disposition"] == 'attachment; filename="annex.docx"'
    assert response.data == make_docx()


def test_version_document_allowed_to_municipal_viewer_of_its_municipality(auth, program, submitted):
    version, pdf, _docx = submitted
    auth.login(MunicipalViewerFactory(municipality=program.municipality))

    response = get(auth.client, f"/versions/{version.id}/documents/{pdf.id}")

    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment; ")


@pytest.mark.parametrize("actor", ["applicant_other", "expert", "municipal"])
def test_version_document_refused_to_outsiders(auth, submitted, actor):
    version, pdf, _docx = submitted
    user = {
        "applicant_other": ApplicantFactory,
        "expert": ExpertUserFactory,
        "municipal": MunicipalViewerFactory,
    }[actor]()
    auth.login(user)

    for url in (
        f"/versions/{version.id}/documents/{pdf.id}",
        f"/versions/{version.id}/documents/{pdf.id}?inline=1",
    ):
        response = get(auth.client, url)
        assert response.status_code == 403
        assert make_pdf() not in response.data


def test_version_document_with_another_version_id_is_404(session, auth, provider, submitted):
    version, pdf, _docx = submitted
    other = ProgramFactory(organization=version.program.organization)
    documents.add_document(other, provider, _file_storage(make_odt(), "o.odt"), "program")
    submit_program(other, provider)
    auth.login(provider)

    response = get(auth.client, f"/versions/{other.versions[0].id}/documents/{pdf.id}")

    assert response.status_code == 404
    assert make_pdf() not in response.data


def test_version_files_stay_after_the_working_copy_is_replaced(
    session, as_provider, provider, program, submitted
):
    version, pdf, _docx = submitted
    advance(program.current_review, ReviewState.RETURNED, CoordinatorFactory(), reason="Нет плана")
    session.flush()
    [working] = [d for d in working_documents(session, program) if d.kind == DocumentKind.PROGRAM]

    upload(as_provider, program, make_odt(), "Новая.odt")
    # The replaced working document is gone; its version copy is not touched.
    delete = as_provider.post(f"/programs/{program.id}/documents/{working.id}/delete")
    assert delete.status_code == 404

    names = sorted(d.original_name for d in working_documents(session, program))
    assert names == ["annex.docx", "Новая.odt"]
    response = get(as_provider.client, f"/versions/{version.id}/documents/{pdf.id}")
    assert response.status_code == 200
    assert response.data == make_pdf()
    assert parse_options_header(response.headers["Content-Disposition"])[1] == {
        "filename": "Программа.pdf"
    }


# --- pages -------------------------------------------------------------------------------


def test_documents_partial_shows_files_and_forms_to_the_provider(app, session, provider, program):
    from flask import render_template
    from flask_login import login_user

    document = documents.add_document(
        program, provider, _file_storage(make_pdf(), "Программа.pdf"), "program"
    )
    with app.test_request_context():
        login_user(provider)
        html = render_template("programs/_documents.html", program=program)

    assert "Программа.pdf" in html
    assert f'href="/programs/{program.id}/documents/{document.id}"' in html
    assert f'action="/programs/{program.id}/documents/{document.id}/delete"' in html
    assert 'enctype="multipart/form-data"' in html
    assert 'name="csrf_token"' in html


def test_documents_partial_hides_links_and_forms_from_a_municipal_viewer(
    app, session, provider, program
):
    from flask import render_template
    from flask_login import login_user

    documents.add_document(program, provider, _file_storage(make_pdf(), "Программа.pdf"), "program")
    with app.test_request_context():
        login_user(MunicipalViewerFactory(municipality=program.municipality))
        html = render_template("programs/_documents.html", program=program)

    assert "Программа.pdf" in html
    assert "/documents/" not in html
    assert "<form" not in html


def test_version_documents_partial_offers_open_for_pdf_only(app, session, provider, submitted):
    from flask import render_template
    from flask_login import login_user

    version, pdf, docx = submitted
    with app.test_request_context():
        login_user(provider)
        html = render_template("programs/_version_documents.html", version=version)

    assert f"/versions/{version.id}/documents/{pdf.id}?inline=1" in html
    assert f"/versions/{version.id}/documents/{docx.id}?inline=1" not in html
    assert f'href="/versions/{version.id}/documents/{docx.id}"' in html


# --- the kind of an upload; an unchanged program document before a resubmission -----------


def kind_radios(page: str) -> dict[str, str]:
    """``{value: the radio's tag}`` of the upload form's kind."""
    return {
        value: tag
        for tag, value in re.findall(r'(<input[^>]*name="kind" [^>]*value="(\w+)"[^>]*>)', page)
    }


def test_upload_form_chooses_the_program_document_only_while_there_is_none(
    session, as_provider, provider, program
):
    page = as_provider.client.get(f"/programs/{program.id}").get_data(as_text=True)
    radios = kind_radios(page)
    assert set(radios) == {"program", "attachment"}
    assert " checked" in radios["program"] and " checked" not in radios["attachment"]

    assert upload(as_provider, program, make_pdf()).status_code == 302
    page = as_provider.client.get(f"/programs/{program.id}").get_data(as_text=True)
    radios = kind_radios(page)
    # Nothing preselected: the uploader says whether the file replaces the document.
    assert all(" checked" not in tag and " required" in tag for tag in radios.values())
    assert "It replaces the program document" in page
    assert "An attachment (the program document stays as it is)" in page


def test_upload_without_a_kind_replaces_nothing(session, as_provider, provider, program):
    upload(as_provider, program, make_pdf("Первая"), "first.pdf")

    response = upload(as_provider, program, make_pdf("Вторая"), "second.pdf", kind="")

    assert response.status_code == 422
    assert upload_error(response) == (
        "Choose whether the file is the program document or an attachment."
    )
    assert [d.original_name for d in working_documents(session, program)] == ["first.pdf"]


@pytest.fixture
def returned(session, provider, program):
    """The program submitted once (version 1) with a PDF, then returned for fixes."""
    documents.add_document(program, provider, _file_storage(make_pdf(), "Программа.pdf"), "program")
    submit_program(program, provider)
    advance(program.current_review, ReviewState.RETURNED, CoordinatorFactory(), reason="Исправьте")
    session.commit()
    return program


def test_program_page_warns_that_the_document_has_not_changed(session, as_provider, returned):
    program = returned
    page = as_provider.client.get(f"/programs/{program.id}").get_data(as_text=True)
    warning = re.search(r'id="unchanged-document">\s*([^<]*)<', page)
    assert warning
    assert html.unescape(warning.group(1)).startswith(
        "The program document is the same file as in version 1, submitted "
    )
    # The confirmation of the submission says it too (and still lets the provider submit).
    response = as_provider.post(f"/programs/{program.id}/submit", {"step": "preview"})
    confirm = html.unescape(response.get_data(as_text=True))
    assert (
        "Attention: the program document is the same file as in version 1. If you have "
        "corrected the text, go back and upload it as the program document first." in confirm
    )

    # The same content uploaded again as a new file is still the same file.
    upload(as_provider, program, make_pdf(), "Программа-исправленная.pdf")
    page = as_provider.client.get(f"/programs/{program.id}").get_data(as_text=True)
    assert 'id="unchanged-document"' in page


def test_program_page_has_no_warning_once_the_document_is_replaced(session, as_provider, returned):
    program = returned
    # An attachment leaves the program document as it was: still warned.
    upload(as_provider, program, make_docx(), "annex.docx", kind="attachment")
    assert 'id="unchanged-document"' in as_provider.client.get(f"/programs/{program.id}").get_data(
        as_text=True
    )

    upload(as_provider, program, make_pdf("Исправленная"), "v2.pdf", kind="program")

    page = as_provider.client.get(f"/programs/{program.id}").get_data(as_text=True)
    assert 'id="unchanged-document"' not in page
    response = as_provider.post(f"/programs/{program.id}/submit", {"step": "preview"})
    assert "Attention:" not in response.get_data(as_text=True)


def test_a_first_submission_has_no_warning(session, as_provider, provider, program):
    upload(as_provider, program, make_pdf())
    page = as_provider.client.get(f"/programs/{program.id}").get_data(as_text=True)
    assert 'id="unchanged-document"' not in page
