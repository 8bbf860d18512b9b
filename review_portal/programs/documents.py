"""The program's files: recognising them by content, storing them, adding and removing them.

Only PDF, DOCX and ODT are accepted, and the decision rests on the file's structure, never
on its name: a PDF starts with ``%PDF-`` and ends with ``%%EOF``; a DOCX is a ZIP whose
``[Content_Types].xml`` declares a WordprocessingML main document that the archive holds; an
ODT is a ZIP whose first entry ``mimetype`` says exactly ``application/vnd.oasis.opendocument.text``.
Recognition reads only a ZIP's directory and two small entries. Before it, a ZIP is checked
against the reading limits of :mod:`review_portal.programs.extract`: its directory, the
declared inflated sizes, then every entry inflated in chunks with a running total (nothing
kept), so a "zip bomb" is refused with a message and never stored.

An upload is streamed into the content-addressed storage with the size limit and then
checked; a refused upload leaves nothing on disk (unless the same content was on disk
before), and neither does an upload whose transaction rolls back
(:mod:`review_portal.storage`). Identical content is stored once and shares one
:class:`StoredFile` row. The functions flush and audit; the caller commits.
"""

from __future__ import annotations

import os
import unicodedata
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING
from xml.etree import ElementTree

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from review_portal import storage
from review_portal.audit.services import record_event
from review_portal.enums import DocumentKind
from review_portal.errors import InvalidInput
from review_portal.extensions import db
from review_portal.permissions import authorize
from review_portal.programs import extract
from review_portal.programs.models import Program, ProgramDocument, StoredFile
from review_portal.programs.permissions import can_manage_documents

if TYPE_CHECKING:
    from werkzeug.datastructures import FileStorage

    from review_portal.accounts.models import User

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ODT = "application/vnd.oasis.opendocument.text"

#: The extension a file of each accepted media type is shown and downloaded with.
EXTENSIONS = {PDF: ".pdf", DOCX: ".docx", ODT: ".odt"}

#: Attachments a program may carry besides its program document.
MAX_ATTACHMENTS = 10

#: The longest display name kept (the column's length).
MAX_NAME_LENGTH = 255

#: ``[Content_Types].xml`` and ``mimetype`` are a few kilobytes; anything bigger is not a
#: document we accept, and is never decompressed.
_MAX_SMALL_ENTRY = 256 * 1024

_CONTENT_TYPES_NS = "{http://schemas.openxmlformats.org/package/2006/content-types}"
_WORD_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"

#: Extensions replaced by the detected one (a document saved under another document
#: extension); any other suffix of the name is kept and the right extension appended.
_DOCUMENT_EXTENSIONS = frozenset({".pdf", ".docx", ".odt", ".doc", ".rtf", ".txt", ".docm"})

#: Characters Windows refuses in file names; replaced so a downloaded file can be saved.
_RESERVED = frozenset('<>:"|?*')

_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    KeyError,
    NotImplementedError,
    RuntimeError,
    ElementTree.ParseError,
)


class DocumentError(InvalidInput):
    """An upload or removal refused (422); ``message`` is for the user, in their language."""


class DocumentTooLarge(DocumentError):
    """An upload over the size limit (413)."""

    status = 413


# --- recognition -------------------------------------------------------------------------


def detect_media_type(path: Path) -> str | None:
    """The media type of the file at ``path`` when it is a PDF, DOCX or ODT, else ``None``."""
    with open(path, "rb") as stream:
        head = stream.read(8)
        if head.startswith(b"%PDF-"):
            # Readers look for the end marker in the last 1024 bytes; a file without it is
            # truncated or not a PDF.
            stream.seek(0, os.SEEK_END)
            stream.seek(max(0, stream.tell() - 1024))
            return PDF if b"%%EOF" in stream.read() else None
    if head.startswith(b"PK\x03\x04"):
        try:
            extract.check_directory(path, extract.Limits.from_config())
            with zipfile.ZipFile(path) as archive:
                return _zip_media_type(archive)
        except _ZIP_ERRORS:
            return None
    return None


def check_bounds(path: Path) -> None:
    """Refuse a ZIP (a DOCX, an ODT or anything else) that inflates past the reading
    limits: its directory first, then every entry inflated in chunks with a running total,
    nothing kept. Raises :class:`~review_portal.programs.extract.DocumentTooLarge`; a
    damaged archive is left to :func:`detect_media_type`."""
    with open(path, "rb") as stream:
        if not stream.read(4).startswith(b"PK\x03\x04"):
            return
    limits = extract.Limits.from_config()
    try:
        with extract.open_archive(path, limits) as archive:
            extract.verify_archive(archive, limits)
    except extract.DocumentTooLarge:
        raise
    except _ZIP_ERRORS:
        return


def _read_small(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes | None:
    """An entry's content when it is small; ``None`` (never decompressed) otherwise."""
    if info.file_size > _MAX_SMALL_ENTRY:
        return None
    with archive.open(info) as entry:
        # The declared size may lie; never read more than the limit.
        data = entry.read(_MAX_SMALL_ENTRY + 1)
    return data if len(data) <= _MAX_SMALL_ENTRY else None


def _zip_media_type(archive: zipfile.ZipFile) -> str | None:
    entries = archive.infolist()
    if not entries:
        return None
    if entries[0].filename == "mimetype":
        mimetype = _read_small(archive, entries[0])
        names = {info.filename for info in entries}
        if mimetype == ODT.encode("ascii") and "content.xml" in names:
            return ODT
        return None
    return DOCX if _is_docx(archive, entries) else None


def _is_docx(archive: zipfile.ZipFile, entries: list[zipfile.ZipInfo]) -> bool:
    by_name = {info.filename: info for info in entries}
    content_types = by_name.get("[Content_Types].xml")
    if content_types is None:
        return False
    data = _read_small(archive, content_types)
    # A DTD has no place in this file; refusing it keeps entity expansion out of the parser.
    if data is None or b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        return False
    root = ElementTree.fromstring(data)
    # OPC part names are case-insensitive.
    present = {name.lower() for name in by_name}
    for override in root.iter(f"{_CONTENT_TYPES_NS}Override"):
        part = override.get("PartName", "").lstrip("/").lower()
        if override.get("ContentType") == _WORD_MAIN and part in present:
            return True
    return False


# --- names -------------------------------------------------------------------------------


def safe_display_name(filename: str | None, media_type: str) -> str:
    """A file name safe to show and to offer for download, ending in the detected type.

    Keeps the base name only (no directories, no ``..``), drops control and formatting
    characters (a right-to-left override can disguise ``fdp.exe`` as ``exe.pdf``), replaces
    the characters Windows refuses, keeps Cyrillic and limits the length to 255 characters.
    """
    name = unicodedata.normalize("NFC", filename or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        " " if char.isspace() else "_" if char in _RESERVED else char
        for char in name
        if char.isspace() or not unicodedata.category(char).startswith("C")
    )
    name = " ".join(name.split()).strip(". ")
    extension = EXTENSIONS[media_type]
    stem, suffix = os.path.splitext(name)
    if suffix.lower() in _DOCUMENT_EXTENSIONS:
        name = stem.rstrip(". ")
    name = name[: MAX_NAME_LENGTH - len(extension)].rstrip(". ")
    return (name or "document") + extension


#: Russian letters in Latin (the passport transliteration, simplified).
_TRANSLIT = {
    **dict(zip("абвгдеёзийклмнопрстуфыэ", "abvgdeeziyklmnoprstufye", strict=True)),
    **{"ж": "zh", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ю": "yu", "я": "ya"},
    **{"ъ": "", "ь": ""},
}


def ascii_name(name: str) -> str:
    """An ASCII stand-in for ``name`` (transliterated Russian) for old HTTP clients."""
    stem, extension = os.path.splitext(name)
    out = []
    for char in stem:
        lower = char.lower()
        if lower in _TRANSLIT:
            latin = _TRANSLIT[lower]
            out.append(latin.capitalize() if char != lower else latin)
        else:
            out.append(char)
    text = unicodedata.normalize("NFKD", "".join(out)).encode("ascii", "ignore").decode()
    text = "".join(c if c.isalnum() or c in " ._-()" else " " for c in text)
    text = " ".join(text.split()).strip(" .")
    extension = "".join(c for c in extension if c.isascii() and (c.isalnum() or c == "."))
    return (text or "document") + extension


# --- storing -----------------------------------------------------------------------------


def max_upload_bytes() -> int:
    return int(current_app.config["MAX_UPLOAD_MB"]) * 1024 * 1024


def _discard(sha256: str) -> None:
    """Remove refused content from disk unless it was there before this upload (the request
    answers the refusal and commits, so the storage's rollback hook would not)."""
    storage.forget_written(sha256)


def store_upload(upload: FileStorage | None) -> StoredFile:
    """Store an uploaded PDF, DOCX or ODT and return its :class:`StoredFile`.

    Raises :class:`DocumentError` for a missing, empty, over-size or unrecognised file; the
    content is then not left on disk. Identical content reuses the existing row and file.
    """
    if upload is None or not upload.filename:
        raise DocumentError(_l("Choose a file to upload."))
    limit = max_upload_bytes()
    try:
        sha256, size = storage.save_stream(storage.iter_chunks(upload.stream), max_size=limit)
    except storage.TooLarge:
        raise DocumentTooLarge(
            _l(
                "The file is larger than %(mb)s MB. Reduce it (for example, compress the "
                "images) and upload it again.",
                mb=current_app.config["MAX_UPLOAD_MB"],
            )
        ) from None
    if size == 0:
        _discard(sha256)
        raise DocumentError(_l("The file is empty."))
    path = storage.path_for(sha256)
    try:
        check_bounds(path)
    except extract.DocumentTooLarge:
        _discard(sha256)
        limits = extract.Limits.from_config()
        raise DocumentError(
            _l(
                "The document unpacks to more than the portal reads (%(xml)s MB of text, "
                "%(total)s MB in all). Save it again without embedded files, or split it, "
                "and upload it again.",
                xml=limits.xml_bytes // extract.MB,
                total=limits.unpacked_bytes // extract.MB,
            )
        ) from None
    media_type = detect_media_type(path)
    if media_type is None:
        _discard(sha256)
        raise DocumentError(
            _l("Only PDF, DOCX and ODT documents are accepted; this file is none of them.")
        )
    stored = db.session.execute(
        select(StoredFile).where(StoredFile.sha256 == sha256)
    ).scalar_one_or_none()
    if stored is not None:
        return stored
    stored = StoredFile(sha256=sha256, size=size, media_type=media_type)
    try:
        # Two uploads of the same content at the same moment: the second one takes the row
        # the first has just written.
        with db.session.begin_nested():
            db.session.add(stored)
    except IntegrityError:
        stored = db.session.execute(
            select(StoredFile).where(StoredFile.sha256 == sha256)
        ).scalar_one()
    return stored


# --- operations --------------------------------------------------------------------------


def _describe(document: ProgramDocument) -> dict:
    return {
        "document_id": document.id,
        "kind": document.kind,
        "name": document.original_name,
        "sha256": document.file.sha256,
        "size": document.file.size,
        "media_type": document.file.media_type,
    }


def add_document(
    program: Program, actor: User, upload: FileStorage | None, kind: DocumentKind | str
) -> ProgramDocument:
    """Add an uploaded file to the program's working documents and return it.

    The program document (``DocumentKind.PROGRAM``) replaces the previous one, so the working
    set holds at most one; attachments add up to :data:`MAX_ATTACHMENTS`, and the same
    content is attached once. Submitted versions keep their own copies and never change.
    Raises :class:`DocumentError` (nothing written, nothing left on disk) when the file is
    refused. Writes the audit event ``document.add``.
    """
    authorize(can_manage_documents(actor, program))
    try:
        kind = DocumentKind(kind)
    except ValueError:
        raise DocumentError(
            _l("Choose whether the file is the program document or an attachment.")
        ) from None
    attachments = [d for d in program.documents if d.kind == DocumentKind.ATTACHMENT]
    if kind == DocumentKind.ATTACHMENT and len(attachments) >= MAX_ATTACHMENTS:
        raise DocumentError(
            _l(
                "A program can have at most %(n)s attachments. Remove one before adding another.",
                n=MAX_ATTACHMENTS,
            )
        )
    stored = store_upload(upload)
    if kind == DocumentKind.ATTACHMENT and any(d.file_id == stored.id for d in attachments):
        raise DocumentError(_l("This file is already attached to the program."))

    replaced = [d for d in program.documents if d.kind == DocumentKind.PROGRAM]
    if kind == DocumentKind.PROGRAM:
        for old in replaced:
            program.documents.remove(old)
    document = ProgramDocument(
        kind=kind,
        original_name=safe_display_name(upload.filename, stored.media_type),
        file=stored,
        uploaded_by_id=actor.id,
    )
    program.documents.append(document)
    db.session.flush()
    after = _describe(document)
    if kind == DocumentKind.PROGRAM and replaced:
        after["replaced"] = [{"document_id": d.id, "name": d.original_name} for d in replaced]
    record_event(
        "document.add",
        actor=actor,
        object_type="program",
        object_id=program.id,
        after=after,
    )
    return document


def remove_document(program: Program, document: ProgramDocument, actor: User) -> None:
    """Remove ``document`` from the program's working documents.

    The stored file stays: submitted versions and other programs may share it. Writes the
    audit event ``document.remove``.
    """
    authorize(can_manage_documents(actor, program))
    if document.program_id != program.id:
        raise DocumentError(_l("This file does not belong to the program."))
    before = _describe(document)
    program.documents.remove(document)
    db.session.flush()
    record_event(
        "document.remove",
        actor=actor,
        object_type="program",
        object_id=program.id,
        before=before,
    )
