"""The comparison of two submitted versions of a program.

After a return or a revision decision the provider resubmits and a new
:class:`~review_portal.programs.models.ProgramVersion` is frozen. This module tells what
changed between two versions: the metadata fields that differ (with their labels and
displayable values) and, where plain text can be extracted from both program documents
(PDF, DOCX, ODT), a line diff of that text.

Documents are read through :mod:`review_portal.programs.extract`, which streams them
within configured limits (inflated XML, paragraphs, pages): a document past a limit (a
"decompression bomb" among them) is not read to its end and the page says it is too large
to compare. Otherwise extraction never raises to the caller: a file that cannot be read
(corrupt, encrypted, a scan without a text layer) gives ``None`` and the reason goes to the
log. All text stays plain text; the template escapes it.
"""

from __future__ import annotations

import difflib
import functools
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from review_portal import storage
from review_portal.enums import DocumentKind
from review_portal.programs import extract
from review_portal.programs.extract import DocumentTooLarge
from review_portal.programs.labels import FIELD_LABELS
from review_portal.programs.models import (
    Program,
    ProgramData,
    ProgramVersion,
    StoredFile,
    VersionDocument,
)
from review_portal.programs.modules import modules_text

log = logging.getLogger(__name__)

#: At most this many characters of a document's text are compared (pages stay light and a
#: huge document cannot keep a request busy for long).
TEXT_LIMIT = 2_000_000
#: Extracted texts kept in memory per process (stored files never change).
TEXT_CACHE_SIZE = 16
#: Unchanged lines shown around each change.
CONTEXT_LINES = 3
#: At most this many lines of a diff are shown (two entirely different documents would
#: otherwise make a page of every line of both).
DIFF_LINE_LIMIT = 3000
#: Lines longer than this (in words and separators) are not compared word by word.
INTRALINE_TOKEN_LIMIT = 600
#: Two paired lines less similar than this are shown as a plain removal and addition.
INTRALINE_MIN_RATIO = 0.5

EMPTY = "—"
YES = _l("yes")
NO = _l("no")


# --- Choosing the versions -----------------------------------------------------------------


class VersionNotFound(LookupError):
    """A version number that does not belong to the program (the page answers 404)."""


def default_numbers(program: Program) -> tuple[int, int] | None:
    """The previous and the latest version's numbers; ``None`` with fewer than two versions."""
    numbers = [version.number for version in program.versions]
    if len(numbers) < 2:
        return None
    return numbers[-2], numbers[-1]


def resolve_numbers(
    program: Program, from_number: int | None, to_number: int | None
) -> tuple[int, int] | None:
    """The pair to compare when the request names one, both or neither of the versions.

    Neither: the previous and the latest version (``None`` when there are fewer than two).
    Only ``to``: the version before it. Only ``from``: the latest version. Raises
    :class:`VersionNotFound` when a named version has no predecessor to compare with.
    """
    if from_number is None and to_number is None:
        return default_numbers(program)
    numbers = [version.number for version in program.versions]
    if to_number is None:
        if not numbers:
            raise VersionNotFound(from_number)
        to_number = numbers[-1]
    if from_number is None:
        earlier = [number for number in numbers if number < to_number]
        if not earlier:
            raise VersionNotFound(to_number)
        from_number = earlier[-1]
    return from_number, to_number


def comparison(
    program: Program, from_number: int, to_number: int
) -> tuple[ProgramVersion, ProgramVersion]:
    """The versions of ``program`` numbered ``from_number`` and ``to_number``.

    Raises :class:`VersionNotFound` when either number is not one of this program's
    versions (another program's version numbers are never looked at).
    """
    by_number = {version.number: version for version in program.versions}
    try:
        return by_number[from_number], by_number[to_number]
    except KeyError as error:
        raise VersionNotFound(error.args[0]) from None


# --- Metadata ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One metadata field whose value differs between the two versions."""

    field: str
    label: LazyString
    #: Displayable values (plain or lazy strings); the template escapes them.
    old: object
    new: object


def display_value(version: ProgramData, name: str) -> object:
    """The value of field ``name`` as a user reads it: labels, not codes."""
    if name == "municipality_id":
        municipality = version.municipality
        return municipality.name if municipality is not None else EMPTY
    if name == "modules":
        return modules_text(version.modules, requirements=True) or EMPTY
    if name == "additional_registry_kinds":
        kinds = version.registry_kinds[1:]
        return ", ".join(str(k.label) for k in kinds) if kinds else EMPTY
    value = getattr(version, name)
    if value is None:
        return EMPTY
    if isinstance(value, bool):
        return YES if value else NO
    label = getattr(value, "label", None)  # a LabelledEnum member
    if label is not None:
        return label
    if isinstance(value, str) and not value.strip():
        return EMPTY
    return value


def metadata_changes(old: ProgramVersion, new: ProgramVersion) -> list[Change]:
    """The fields of ``DATA_FIELDS`` whose values differ, in the order of ``DATA_FIELDS``."""
    return [
        Change(
            field=name,
            label=FIELD_LABELS[name],
            old=display_value(old, name),
            new=display_value(new, name),
        )
        for name in ProgramData.DATA_FIELDS
        if getattr(old, name) != getattr(new, name)
    ]


# --- Document text -------------------------------------------------------------------------

PDF, DOCX, ODT = "pdf", "docx", "odt"
ODT_MEDIA_TYPE = "application/vnd.oasis.opendocument.text"
MEDIA_TYPES = {
    "application/pdf": PDF,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": DOCX,
    ODT_MEDIA_TYPE: ODT,
}
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _format_of(media_type: str | None, path: Path) -> str | None:
    """PDF, DOCX or ODT: from the recorded media type, else recognised from the content."""
    known = MEDIA_TYPES.get((media_type or "").split(";")[0].strip().lower())
    if known:
        return known
    with open(path, "rb") as stream:
        head = stream.read(1024)
    if b"%PDF-" in head:
        return PDF
    if head.startswith(b"PK\x03\x04"):
        with extract.open_archive(path, extract.Limits.from_config()) as archive:
            if "word/document.xml" in archive.namelist():
                return DOCX
            mimetype = extract.read_small(archive, "mimetype", limit=1024)
            if mimetype is not None and mimetype.strip() == ODT_MEDIA_TYPE.encode():
                return ODT
    return None


#: Each reader streams the file within the limits (see :mod:`review_portal.programs.extract`).
_EXTRACTORS = {PDF: extract.pdf_pages, DOCX: extract.docx_lines, ODT: extract.odt_lines}


def _normalized(chunks: Iterable[str], limit: int) -> str:
    """Non-blank lines with runs of white space collapsed, cut at ``limit`` characters.

    Stops reading ``chunks`` once the limit is reached, so a huge document is not parsed to
    its end.
    """
    lines: list[str] = []
    size = 0
    for chunk in chunks:
        for raw in chunk.splitlines():
            line = " ".join(_CONTROL_RE.sub(" ", raw).split())
            if not line:
                continue
            lines.append(line)
            size += len(line) + 1
            if size >= limit:
                return "\n".join(lines)[:limit]
    return "\n".join(lines)


class UnsupportedFormat(ValueError):
    """The file is neither PDF, DOCX nor ODT."""


@functools.lru_cache(maxsize=TEXT_CACHE_SIZE)
def _extracted_text(sha256: str, media_type: str | None, limit: int, limits: extract.Limits) -> str:
    # A stored file never changes (it is named by its hash), so its text can be kept; a
    # failure raises and is therefore not kept, and is tried again next time (a document
    # over the limits is refused again from its directory or first pages, at little cost).
    path = storage.path_for(sha256)
    kind = _format_of(media_type, path)
    if kind is None:
        raise UnsupportedFormat(media_type)
    return _normalized(_EXTRACTORS[kind](path, limits), limit)


def _log_failure(stored_file: StoredFile, error: Exception) -> None:
    log.warning(
        "no text from file %s (%s): %s: %s",
        stored_file.sha256,
        stored_file.media_type,
        type(error).__name__,
        error,
    )


def read_text(stored_file: StoredFile, limit: int = TEXT_LIMIT) -> str | None:
    """Like :func:`document_text`, but raises :class:`DocumentTooLarge` when the file goes
    past the reading limits (inflated size, paragraphs, pages), so that the caller can say
    so; the file is read only up to the limit."""
    try:
        text = _extracted_text(
            stored_file.sha256, stored_file.media_type, limit, extract.Limits.from_config()
        )
    except DocumentTooLarge as error:
        _log_failure(stored_file, error)
        raise
    except Exception as error:
        _log_failure(stored_file, error)
        return None
    if not text:
        log.info("file %s (%s) holds no text", stored_file.sha256, stored_file.media_type)
        return None
    return text


def document_text(stored_file: StoredFile, limit: int = TEXT_LIMIT) -> str | None:
    """The plain text of a stored PDF, DOCX or ODT, at most ``limit`` characters.

    ``None`` when the file is of another kind, cannot be read, goes past the reading limits
    or holds no text (a scan); the reason is logged, nothing is raised.
    """
    try:
        return read_text(stored_file, limit)
    except DocumentTooLarge:
        return None


# --- Text diff -----------------------------------------------------------------------------

CONTEXT, REMOVED, ADDED = "context", "removed", "added"
_TOKEN_RE = re.compile(r"\w+|\s+|[^\w\s]")


@dataclass(frozen=True)
class Segment:
    text: str
    #: The words that differ from the paired line of the other version.
    changed: bool = False


@dataclass(frozen=True)
class DiffLine:
    kind: str  # CONTEXT, REMOVED or ADDED
    old_number: int | None
    new_number: int | None
    segments: tuple[Segment, ...]

    @property
    def text(self) -> str:
        return "".join(segment.text for segment in self.segments)


@dataclass(frozen=True)
class Hunk:
    """A run of changes with the unchanged lines around it."""

    lines: tuple[DiffLine, ...]


@dataclass(frozen=True)
class TextDiff:
    hunks: tuple[Hunk, ...]
    #: Lines added and removed in the whole texts (also beyond what is kept for display).
    added: int
    removed: int
    #: Only the first ``DIFF_LINE_LIMIT`` lines of the diff are kept for display.
    truncated: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.hunks)


def _merge(segments: list[Segment]) -> tuple[Segment, ...]:
    merged: list[Segment] = []
    for segment in segments:
        if merged and merged[-1].changed == segment.changed:
            merged[-1] = Segment(merged[-1].text + segment.text, segment.changed)
        elif segment.text:
            merged.append(segment)
    return tuple(merged)


def _intraline(old: str, new: str) -> tuple[tuple[Segment, ...], tuple[Segment, ...]]:
    """The two lines split into unchanged and changed words (whole lines when too different)."""
    whole = (Segment(old),), (Segment(new),)
    a, b = _TOKEN_RE.findall(old), _TOKEN_RE.findall(new)
    if max(len(a), len(b)) > INTRALINE_TOKEN_LIMIT:
        return whole
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    if matcher.ratio() < INTRALINE_MIN_RATIO:
        return whole
    old_segments: list[Segment] = []
    new_segments: list[Segment] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        changed = tag != "equal"
        old_segments.append(Segment("".join(a[i1:i2]), changed))
        new_segments.append(Segment("".join(b[j1:j2]), changed))
    return _merge(old_segments), _merge(new_segments)


def _group_lines(a: list[str], b: list[str], group) -> Iterator[DiffLine]:
    """The lines of one group of opcodes: context, then each change's removals and additions."""
    for tag, i1, i2, j1, j2 in group:
        if tag == "equal":
            for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
                yield DiffLine(CONTEXT, i + 1, j + 1, (Segment(a[i]),))
            continue
        old_lines = [(Segment(line),) for line in a[i1:i2]]
        new_lines = [(Segment(line),) for line in b[j1:j2]]
        if tag == "replace":
            for k in range(min(len(old_lines), len(new_lines))):
                old_lines[k], new_lines[k] = _intraline(a[i1 + k], b[j1 + k])
        for k, segments in enumerate(old_lines):
            yield DiffLine(REMOVED, i1 + k + 1, None, segments)
        for k, segments in enumerate(new_lines):
            yield DiffLine(ADDED, None, j1 + k + 1, segments)


def text_diff(
    old_text: str,
    new_text: str,
    context: int = CONTEXT_LINES,
    max_lines: int = DIFF_LINE_LIMIT,
) -> TextDiff:
    """A line diff of two texts: hunks of removed and added lines with ``context`` unchanged
    lines around them; a changed line is paired with its new form and the changed words are
    marked. Identical texts give no hunks.

    At most ``max_lines`` lines are kept for display (``truncated`` is then true); the
    counts of removed and added lines always cover the whole texts.
    """
    a, b = old_text.splitlines(), new_text.splitlines()
    if a == b:
        return TextDiff(hunks=(), added=0, removed=0)
    matcher = difflib.SequenceMatcher(None, a, b)
    hunks: list[Hunk] = []
    added = removed = shown = 0
    truncated = False
    for group in matcher.get_grouped_opcodes(context):
        for tag, i1, i2, j1, j2 in group:
            if tag != "equal":
                removed += i2 - i1
                added += j2 - j1
        if truncated:
            continue
        lines: list[DiffLine] = []
        for line in _group_lines(a, b, group):
            if shown == max_lines:
                truncated = True
                break
            lines.append(line)
            shown += 1
        if lines:
            hunks.append(Hunk(tuple(lines)))
    return TextDiff(hunks=tuple(hunks), added=added, removed=removed, truncated=truncated)


# --- The whole comparison ------------------------------------------------------------------


def program_document(version: ProgramVersion) -> VersionDocument | None:
    """The version's program document (the latest uploaded, should there be several)."""
    documents = [d for d in version.documents if d.kind == DocumentKind.PROGRAM]
    return max(documents, key=lambda d: (d.uploaded_at, d.id)) if documents else None


#: Outcomes of the document comparison, for the template.
MISSING, SAME_FILE, TOO_LARGE, UNREADABLE, SAME_TEXT, CHANGED = (
    "missing",
    "same_file",
    "too_large",
    "unreadable",
    "same_text",
    "changed",
)


@dataclass
class DocumentComparison:
    old: VersionDocument | None
    new: VersionDocument | None
    outcome: str
    #: The documents whose text could not be extracted.
    unreadable: list[VersionDocument] = field(default_factory=list)
    #: The documents past the reading limits (too large to compare; not read to the end).
    too_large: list[VersionDocument] = field(default_factory=list)
    diff: TextDiff | None = None
    #: The text of at least one document was cut at ``TEXT_LIMIT`` characters.
    truncated: bool = False


def compare_documents(old: ProgramVersion, new: ProgramVersion) -> DocumentComparison:
    """Compare the program documents of two versions, by their extracted text."""
    old_document, new_document = program_document(old), program_document(new)
    result = DocumentComparison(old_document, new_document, MISSING)
    if old_document is None or new_document is None:
        return result
    if old_document.file_id == new_document.file_id:
        result.outcome = SAME_FILE
        return result
    texts = {}
    for document in (old_document, new_document):
        try:
            texts[document.id] = read_text(document.file)
        except DocumentTooLarge:
            result.too_large.append(document)
            continue
        if texts[document.id] is None:
            result.unreadable.append(document)
    if result.too_large:
        result.outcome = TOO_LARGE
        return result
    if result.unreadable:
        result.outcome = UNREADABLE
        return result
    old_text, new_text = texts[old_document.id], texts[new_document.id]
    result.truncated = max(len(old_text), len(new_text)) >= TEXT_LIMIT
    result.diff = text_diff(old_text, new_text)
    result.outcome = CHANGED if result.diff.changed else SAME_TEXT
    return result


@dataclass(frozen=True)
class AttachmentChanges:
    added: list[str]
    removed: list[str]


def attachment_changes(old: ProgramVersion, new: ProgramVersion) -> AttachmentChanges:
    """Attachments (by name and content) present in only one of the versions."""

    def attachments(version):
        return {
            (d.original_name, d.file_id)
            for d in version.documents
            if d.kind == DocumentKind.ATTACHMENT
        }

    before, after = attachments(old), attachments(new)
    return AttachmentChanges(
        added=sorted(name for name, _ in after - before),
        removed=sorted(name for name, _ in before - after),
    )


@dataclass(frozen=True)
class VersionComparison:
    old: ProgramVersion
    new: ProgramVersion
    changes: list[Change]
    document: DocumentComparison
    attachments: AttachmentChanges


def compare_versions(old: ProgramVersion, new: ProgramVersion) -> VersionComparison:
    """Everything the comparison page shows for two versions of one program."""
    return VersionComparison(
        old=old,
        new=new,
        changes=metadata_changes(old, new),
        document=compare_documents(old, new),
        attachments=attachment_changes(old, new),
    )
