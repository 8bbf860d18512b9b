"""Upload, removal and download of program documents.

The working files of a program are for its provider and the center's staff; the frozen
files of a submitted version for everyone who may see the program. A document is always
looked up through the program or version in the URL, so no file is ever served through
another program's address.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, abort, flash, redirect, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from review_portal import storage
from review_portal.confirmation import confirmation, previewing
from review_portal.extensions import db
from review_portal.forms import on_too_large
from review_portal.i18n import format_size
from review_portal.permissions import ensure, requires
from review_portal.programs import documents
from review_portal.programs.models import Program, ProgramDocument, ProgramVersion, VersionDocument
from review_portal.programs.permissions import (
    can_download_documents,
    can_download_working_documents,
    can_manage_documents,
)
from review_portal.programs.routes import render_view

bp = Blueprint("documents", __name__)

#: An inline PDF may show itself and nothing else: no scripts, no requests, no framing by
#: other sites. (``sandbox`` would be stricter still, but browsers then refuse to run their
#: PDF viewer and show an empty page.)
INLINE_PDF_POLICY = (
    "default-src 'none'; script-src 'none'; object-src 'self'; "
    "style-src 'unsafe-inline'; frame-ancestors 'self'; form-action 'none'; base-uri 'none'"
)


def _program_view(program_id: int):
    return redirect(url_for("programs.view", program_id=program_id))


def _upload_too_large():
    """A request over ``MAX_CONTENT_LENGTH`` (refused before the view): the program's page
    with the message at the upload form, for whoever may upload to it."""
    program = db.session.get(Program, (request.view_args or {}).get("program_id"))
    if program is None or not can_manage_documents(current_user, program):
        return None
    return render_view(program, 413, upload_error=_too_large_message())


def _too_large_message():
    return _(
        "The file is larger than %(mb)s MB. Reduce it (for example, compress the "
        "images) and upload it again.",
        mb=documents.max_upload_bytes() // (1024 * 1024),
    )


@bp.post("/programs/<int:program_id>/documents")
@on_too_large(_upload_too_large)
@requires(lambda user: True)
def upload(program_id: int):
    """Add a file; a refused one writes nothing and the page is shown again with the
    message at the upload form: 422, or 413 for a file over the size limit."""
    program = db.get_or_404(Program, program_id)
    ensure(can_manage_documents(current_user, program))
    try:
        with db.session.begin_nested():
            document = documents.add_document(
                program, current_user, request.files.get("file"), request.form.get("kind", "")
            )
    except documents.DocumentError as error:
        return render_view(program, error.status, upload_error=error.message)
    flash(_("The file “%(name)s” has been uploaded.", name=document.original_name), "success")
    return _program_view(program_id)


@bp.post("/programs/<int:program_id>/documents/<int:document_id>/delete")
@requires(lambda user: True)
def delete(program_id: int, document_id: int):
    program = db.get_or_404(Program, program_id)
    ensure(can_manage_documents(current_user, program))
    document = _working_document_or_404(program, document_id)
    name = document.original_name
    if previewing():
        lines = [
            _(
                "The file «%(name)s» (%(kind)s, %(size)s) is removed from the program's "
                "files; to have it again, upload it again.",
                name=name,
                kind=document.kind.label,
                size=format_size(document.file.size),
            )
        ]
        in_versions = db.session.execute(
            select(VersionDocument.id)
            .join(ProgramVersion, VersionDocument.version_id == ProgramVersion.id)
            .where(
                ProgramVersion.program_id == program.id,
                VersionDocument.file_id == document.file_id,
            )
            .limit(1)
        ).first()
        if in_versions is not None:
            lines.append(_("Versions already submitted keep their copy of it."))
        return confirmation(
            _("Remove the file"),
            lines,
            button=_("Remove the file"),
            back=url_for("programs.view", program_id=program.id, _anchor="documents"),
            style="danger",
        )
    documents.remove_document(program, document, current_user)
    flash(_("The file “%(name)s” has been removed.", name=name), "success")
    return _program_view(program_id)


@bp.get("/programs/<int:program_id>/documents/<int:document_id>")
@requires(lambda user: True)
def download(program_id: int, document_id: int):
    program = db.get_or_404(Program, program_id)
    ensure(can_download_working_documents(current_user, program))
    return _send(_working_document_or_404(program, document_id))


@bp.get("/versions/<int:version_id>/documents/<int:document_id>")
@requires(lambda user: True)
def version_document(version_id: int, document_id: int):
    version = db.get_or_404(ProgramVersion, version_id)
    ensure(can_download_documents(current_user, version.program))
    document = db.session.execute(
        select(VersionDocument).where(
            VersionDocument.id == document_id, VersionDocument.version_id == version.id
        )
    ).scalar_one_or_none()
    if document is None:
        abort(404)
    return _send(document, inline=request.args.get("inline") == "1")


def _working_document_or_404(program: Program, document_id: int) -> ProgramDocument:
    document = db.session.execute(
        select(ProgramDocument).where(
            ProgramDocument.id == document_id, ProgramDocument.program_id == program.id
        )
    ).scalar_one_or_none()
    if document is None:
        abort(404)
    return document


def content_disposition(disposition: str, name: str) -> str:
    """``attachment`` or ``inline`` with an ASCII file name and the exact one (RFC 6266)."""
    fallback = documents.ascii_name(name)
    value = f'{disposition}; filename="{fallback}"'
    if fallback != name:
        value += f"; filename*=UTF-8''{quote(name, safe='')}"
    return value


def _send(document: ProgramDocument | VersionDocument, inline: bool = False):
    stored = document.file
    path = storage.path_for(stored.sha256)
    if not path.is_file():
        abort(404)
    inline = inline and stored.media_type == documents.PDF
    response = send_file(path, mimetype=stored.media_type, etag=stored.sha256)
    response.headers["Content-Disposition"] = content_disposition(
        "inline" if inline else "attachment", document.original_name
    )
    response.cache_control.private = True
    if inline:
        response.headers["Content-Security-Policy"] = INLINE_PDF_POLICY
    else:
        # Opened as a page by mistake, it still cannot run anything.
        response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
