"""The registry as files: the columns of an export, the CSV stream and the XLSX workbook.

One list of columns (:data:`COLUMNS`) says what an export shows, under which header, how
wide and how a value is written; the CSV and the XLSX of a selection, and the CSV of the
pending changes, are all built from it. Both formats take rows one at a time (an iterator
over :func:`~review_portal.registry.queries.iter_items`), so their memory does not grow with
the registry: the CSV is a generator of chunks the response streams; the XLSX is written by
openpyxl in write-only mode (rows go to a temporary file on disk as they come, strings
inline, no shared-string table) into a temporary file the response then sends in chunks.

The CSV follows the portal's one CSV convention (:mod:`review_portal.spreadsheets`: BOM,
``;``, CRLF, decimal commas, formulas guarded; the ИНН and the registry and conclusion
numbers are codes, kept as text by a spreadsheet). The XLSX is
made to be printed as well as sorted: a title row naming the registry, the publication and
the region above the header, landscape, one page wide, the header repeated on every page,
long titles wrapped. A provider's text is always a string in the XLSX, never a formula.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import Enum
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from flask import Response, current_app
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from review_portal.enums import RegistryKind
from review_portal.programs.modules import modules_text
from review_portal.registry.models import RegistrySnapshot
from review_portal.registry.queries import Diff, local_date

if TYPE_CHECKING:
    from openpyxl.cell import WriteOnlyCell
from review_portal.spreadsheets import Code, CsvWriter, document_properties, print_setup

CSV_MIMETYPE = "text/csv"
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DATE_FORMAT = "DD.MM.YYYY"
PERCENT_FORMAT = "0.00"
#: Rows written to the CSV buffer before it is handed to the response.
CSV_CHUNK_ROWS = 500
FILE_CHUNK = 64 * 1024
#: The version of the XLSX layout; a new one retires the files built before it (3: the
#: modules column).
XLSX_LAYOUT = 3
#: The version of the CSV's columns and convention (review_portal.spreadsheets): in the
#: exports' ETags (3: the modules column).
CSV_FORMAT = 3
#: The XLSX's header row: the title and the region and center are above it.
HEADER_ROW = 3


@dataclass(frozen=True)
class Column:
    """One column of an export: the row key, the header, the XLSX width (characters; the
    widths of :data:`COLUMNS` add up to a landscape A4 page at about 70 %), whether the
    value is an identifier kept as text (``code``) and a number's decimal places."""

    key: str
    label: object
    width: int
    code: bool = False
    digits: int | None = None


COLUMNS: tuple[Column, ...] = (
    Column("registry_number", _l("Registry number"), 13, code=True),
    Column("title", _l("Program title"), 34),
    Column("organization_name", _l("Organization"), 24),
    Column("organization_inn", _l("INN"), 13, code=True),
    Column("municipality_name", _l("Municipality"), 16),
    Column("direction", _l("Direction"), 16),
    Column("level", _l("Level"), 12),
    Column("age_min", _l("Age from"), 8),
    Column("age_max", _l("Age to"), 8),
    Column("total_hours", _l("Hours"), 7),
    Column("study_form", _l("Study form"), 12),
    Column("adapted_for_disabilities", _l("Adapted for children with disabilities"), 12),
    Column("conclusion_number", _l("Conclusion number"), 13, code=True),
    Column("conclusion_date", _l("Conclusion date"), 11),
    Column("final_percent", _l("Final score, %"), 10, digits=2),
    Column("included_on", _l("Included on"), 11),
    Column("valid_until", _l("Valid until"), 11),
    Column("status", _l("Status"), 11),
    # Last, so the columns before keep their places; empty for a program without modules.
    Column("modules", _l("Modules"), 18),
)

#: The header of each compared field (``registry.queries.COMPARED_FIELDS``) in the list of
#: changed fields of the pending-changes CSV.
FIELD_LABELS = {column.key: column.label for column in COLUMNS} | {
    "municipality_id": _l("Municipality"),
}

CHANGE_LABELS = {
    "added": _l("addition"),
    "removed": _l("removal"),
    "changed": _l("modification"),
}
CHANGE_COLUMN = Column("change", _l("Change"), 14)
CHANGED_FIELDS_COLUMN = Column("changed_fields", _l("Changed fields"), 60)
#: Pending rows are not published yet: no status of their own, and what changed.
PENDING_COLUMNS = (
    CHANGE_COLUMN,
    *(column for column in COLUMNS if column.key != "status"),
    CHANGED_FIELDS_COLUMN,
)


# --- values -----------------------------------------------------------------------------


def display(value) -> str:
    """A value as the text a person reads: enums by their label, booleans да/нет, dates
    DD.MM.YYYY, the percentage with two decimals in the interface language."""
    if value is None:
        return ""
    if isinstance(value, list):  # a program's modules
        return modules_text(value)
    if isinstance(value, Enum) and hasattr(value, "label"):
        return str(value.label)
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, date):
        return value.strftime("%d.%m.%Y")
    if isinstance(value, Decimal):
        return format_decimal(value, format="0.00")
    return str(value)


class Formatter:
    """:func:`display` for one export, in the language of its request.

    An export writes the same few labels, booleans, dates and percentages over and over;
    translating and formatting each of them once keeps 100,000 rows fast. The memo holds
    at most the distinct values of those kinds (a few thousand), whatever the row count.
    """

    def __init__(self):
        self._memo: dict = {}

    def __call__(self, value) -> str:
        if value is None:
            return ""
        if type(value) is str:
            return value
        if type(value) is int:
            return str(value)
        if type(value) is list:  # a program's modules: each row its own
            return display(value)
        key = (type(value), value)
        text = self._memo.get(key)
        if text is None:
            text = self._memo[key] = display(value)
        return text

    def csv(self, value, column: Column):
        """The value :class:`~review_portal.spreadsheets.CsvWriter` spells: text, numbers
        and dates as they are, an identifier as a :class:`Code`, labels and booleans as
        their words."""
        if value is None:
            return None
        if column.code:
            return Code(value)
        if type(value) in _CSV_AS_IS:
            return value
        return self(value)


#: Values the CSV writer spells itself (numbers with a decimal comma, dates DD.MM.YYYY).
_CSV_AS_IS = frozenset({str, int, Decimal, date})


class _SheetValues:
    """Cell values of one write-only sheet: numbers and dates stay numbers and dates (so
    the spreadsheet sorts and sums them), labels and booleans are text, a provider's text
    is always text (never a formula or an error code) and loses the control characters
    XML cannot hold. Every cell is aligned to the top, text wraps within its column.

    Formatted cells are reused per column: a write-only sheet writes a row out as soon as
    it is appended, so one styled cell per column and kind serves every row.
    """

    def __init__(self, sheet, text: Formatter):
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE

        self.sheet = sheet
        self.text = text
        self._styled: dict[tuple[int, str], WriteOnlyCell] = {}
        self._new_cell = WriteOnlyCell
        self._illegal = ILLEGAL_CHARACTERS_RE
        self._error_codes = ERROR_CODES

    def _cell(self, index: int, value, number_format: str):
        cell = self._styled.get((index, number_format))
        if cell is None:
            cell = self._styled[index, number_format] = self._new_cell(self.sheet)
            cell.number_format = number_format
            cell.alignment = wrapped()
        cell.value = value
        return cell

    def __call__(self, index: int, value):
        if value is None:
            return None
        kind = type(value)
        if kind is int:
            return self._cell(index, value, "General")
        if kind is date:
            return self._cell(index, value, DATE_FORMAT)
        if kind is Decimal:
            return self._cell(index, value, PERCENT_FORMAT)
        text = self._illegal.sub("", value) if kind is str else self.text(value)
        cell = self._cell(index, text, "@")
        if text.startswith("=") or text in self._error_codes:
            cell.data_type = "s"
        return cell


#: Points per line of wrapped 11-point text.
LINE_HEIGHT = 15
#: A row is never taller than this many lines (Excel's limit is 409 points).
MAX_LINES = 20


def wrapped_lines(text: str, width: int) -> int:
    """How many lines ``text`` takes wrapped at word boundaries in a column ``width``
    characters wide (an estimate: a character is taken as one unit of width)."""
    room = max(1, width - 1)
    if len(text) <= room:
        return 1
    lines, used = 1, 0
    for word in text.split():
        if used and used + 1 + len(word) <= room:
            used += 1 + len(word)
            continue
        if used:
            lines += 1
        used = len(word)
        while used > room:  # a word longer than the column is cut
            lines += 1
            used -= room
    return lines


def _append_fitted(sheet, row_number: int, cells: list, widths: list[int]) -> None:
    """Append ``cells`` as row ``row_number`` tall enough for its wrapped text.

    Neither LibreOffice nor every Excel fits the height of a row of a generated file to its
    wrapped text, so the height is written with the row (and forgotten once the row is
    written: a write-only sheet keeps no rows)."""
    lines = 1
    for cell, width in zip(cells, widths, strict=True):
        text = cell if type(cell) is str else getattr(cell, "value", None)
        if type(text) is str and len(text) >= width:
            lines = max(lines, wrapped_lines(text, width))
    if lines > 1:
        sheet.row_dimensions[row_number].height = min(lines, MAX_LINES) * LINE_HEIGHT
    sheet.append(cells)
    sheet.row_dimensions.pop(row_number, None)


@cache
def wrapped():
    """Top-aligned, wrapped within the column: long titles take several lines, not the next
    columns, on screen and in print. (A function: openpyxl is imported by the exports only,
    not at a web process's start.)"""
    from openpyxl.styles import Alignment

    return Alignment(wrap_text=True, vertical="top")


# --- CSV --------------------------------------------------------------------------------


def csv_stream(rows: Iterable[Mapping], columns: tuple[Column, ...] = COLUMNS) -> Iterator[bytes]:
    """The CSV of ``rows`` in UTF-8 chunks (the portal's CSV convention: a byte order mark,
    the header row, then the rows, ``;``-separated, CRLF line ends). Rows are read lazily,
    ``CSV_CHUNK_ROWS`` at a time."""
    writer = CsvWriter([c.label for c in columns], [c.digits for c in columns])
    yield writer.header().encode("utf-8")
    text = Formatter()
    values = ([text.csv(row.get(column.key), column) for column in columns] for row in rows)
    for chunk in writer.rows(values, CSV_CHUNK_ROWS):
        yield chunk.encode("utf-8")


# --- XLSX -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Heading:
    """What the title rows of a registry XLSX name: the registry's kind and the publication
    (``None`` before the first one)."""

    kind: RegistryKind
    number: int | None = None
    published_on: date | None = None

    @classmethod
    def of(cls, kind: RegistryKind, snapshot: RegistrySnapshot | None) -> Heading:
        if snapshot is None:
            return cls(kind)
        return cls(snapshot.kind, snapshot.number, local_date(snapshot.published_at))

    def title(self) -> str:
        """``Реестр … — Сертифицированные программы. Публикация № 3 от 07.12.2026``."""
        registry = _("Registry of supplementary education programs for children")
        if self.number is None:
            publication = _("The registry has not been published yet")
        else:
            publication = _(
                "Publication № %(number)s of %(date)s",
                number=self.number,
                date=self.published_on.strftime("%d.%m.%Y"),
            )
        return f"{registry} — {self.kind.label}. {publication}"


def _center() -> tuple[str, str]:
    """The region's and the center's names from the settings (either may be empty)."""
    from review_portal.settings.services import get_setting

    return get_setting("region_name") or "", get_setting("center_name") or ""


def format_variant(fmt: str) -> str:
    """What, beside the snapshot and the selection, decides an export's bytes (for its
    ``ETag``): the file format's version and, for the XLSX, the names its title rows print."""
    if fmt == "csv":
        return f"csv-{CSV_FORMAT}"
    return f"xlsx-{XLSX_LAYOUT}:" + "|".join(_center())


def write_xlsx(
    rows: Iterable[Mapping],
    target,
    columns: tuple[Column, ...] = COLUMNS,
    title: str = "",
    heading: Heading | None = None,
) -> int:
    """Write ``rows`` as a sheet ready to sort and to print into ``target`` (a path or a
    binary file) and return the number of rows.

    Row 1 is the title (the registry, its kind, the publication), row 2 the region and the
    center (from the settings), row 3 the bold header, the data from row 4. The header is
    frozen, has an autofilter over the data and is repeated on every printed page; the page
    is landscape A4, one page wide; text wraps within the column widths. The workbook's
    properties name the title and the center. Write-only mode: a row is on disk once
    appended."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    heading = heading or Heading(RegistryKind.CERTIFIED)
    region, center = _center()
    caption = heading.title()
    workbook = Workbook(write_only=True)
    document_properties(workbook, title=caption, creator=center or region or caption)
    sheet = workbook.create_sheet(title=(title or _("Registry"))[:31])
    # Widths, the frozen pane and the page setup are written before the first row, the
    # autofilter after the last one (write-only sheets write their XML in this order).
    for index, column in enumerate(columns, 1):
        sheet.column_dimensions[get_column_letter(index)].width = column.width
    sheet.freeze_panes = f"A{HEADER_ROW + 1}"
    print_setup(sheet, title_rows=f"{HEADER_ROW}:{HEADER_ROW}")
    sheet.oddHeader.left.text = caption
    sheet.oddHeader.left.size = 8
    sheet.oddFooter.right.text = "&P / &N"
    sheet.oddFooter.right.size = 8
    title_cell = WriteOnlyCell(sheet, value=caption)
    title_cell.font = Font(bold=True, size=14)
    sheet.append([title_cell])
    # The names are settings' text: never a formula, whatever they begin with.
    names = WriteOnlyCell(sheet, value=" · ".join(part for part in (region, center) if part))
    names.data_type = "s"
    sheet.append([names])
    bold = Font(bold=True)
    header = []
    for column in columns:
        cell = WriteOnlyCell(sheet, value=str(column.label))
        cell.font = bold
        cell.alignment = wrapped()
        header.append(cell)
    widths = [column.width for column in columns]
    _append_fitted(sheet, HEADER_ROW, header, widths)
    values = _SheetValues(sheet, Formatter())
    keys = list(enumerate(column.key for column in columns))
    count = 0
    for row in rows:
        count += 1
        cells = [values(index, row.get(key)) for index, key in keys]
        _append_fitted(sheet, HEADER_ROW + count, cells, widths)
    last = get_column_letter(len(columns))
    sheet.auto_filter.ref = f"A{HEADER_ROW}:{last}{HEADER_ROW + count}"
    workbook.save(target)
    return count


# --- responses --------------------------------------------------------------------------


def attachment_disposition(name: str) -> str:
    """``attachment`` with a plain ASCII file name, and the exact one (RFC 6266
    ``filename*``) when the name holds anything else."""
    fallback = "".join(c if c.isascii() and (c.isalnum() or c in "-._") else "_" for c in name)
    value = f'attachment; filename="{fallback}"'
    if fallback != name:
        value += f"; filename*=UTF-8''{quote(name, safe='')}"
    return value


def csv_response(chunks: Iterable[bytes], filename: str) -> Response:
    """A streamed CSV download (wrap ``chunks`` in ``stream_with_context`` when they read
    the database)."""
    response = Response(chunks, mimetype=CSV_MIMETYPE)
    response.headers["Content-Disposition"] = attachment_disposition(filename)
    return response


def xlsx_response(
    rows: Iterable[Mapping],
    filename: str,
    heading: Heading,
    columns: tuple[Column, ...] = COLUMNS,
) -> Response:
    """Build the workbook of ``rows`` (titled by ``heading``) in a temporary file (gone when
    closed) and send it in chunks; the file is closed when the response is."""
    # Not a context manager: the response owns the file and closes it after sending.
    spool = tempfile.TemporaryFile(prefix="registry-", suffix=".xlsx")  # noqa: SIM115
    try:
        write_xlsx(rows, spool, columns, heading=heading)
        size = spool.tell()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return _xlsx_file_response(spool, size, filename)


def _xlsx_file_response(file, size: int, filename: str) -> Response:
    """An open XLSX file (at its start) sent in chunks as an attachment; the response owns
    the file and closes it."""
    response = Response(_file_chunks(file), mimetype=XLSX_MIMETYPE, direct_passthrough=True)
    response.call_on_close(file.close)
    response.content_length = size
    response.headers["Content-Disposition"] = attachment_disposition(filename)
    return response


def _file_chunks(file) -> Iterator[bytes]:
    try:
        while chunk := file.read(FILE_CHUNK):
            yield chunk
    finally:
        file.close()


def export_filename(kind, snapshot: RegistrySnapshot | None, extension: str, suffix="") -> str:
    """``registry-<kind>-<number>-<YYYY-MM-DD>[-suffix].<ext>``; without a snapshot
    ``registry-<kind>[-suffix].<ext>``."""
    parts = ["registry", kind.value]
    if snapshot is not None:
        parts += [str(snapshot.number), local_date(snapshot.published_at).isoformat()]
    if suffix:
        parts.append(suffix)
    return "-".join(parts) + "." + extension


def bad_request_text(form) -> Response:
    """``400`` with the form's errors as short plain text (one line per parameter)."""
    lines = [_("Invalid request parameters.")]
    for name, messages in form.errors.items():
        label = form[name].label.text if name in form else name
        lines.append(f"{label} ({name}): {' '.join(str(m) for m in messages)}")
    return Response("\n".join(lines) + "\n", status=400, mimetype="text/plain")


# --- the snapshot a request reads -------------------------------------------------------


def pending_rows(diff: Diff) -> Iterator[dict]:
    """The rows of the pending-changes CSV: additions, removals, then modifications, each
    of these with its changed fields as ``header: old → new`` (the new data in the row)."""
    for row in diff.added:
        yield {**row, "change": str(CHANGE_LABELS["added"])}
    for row in diff.removed:
        yield {**row, "change": str(CHANGE_LABELS["removed"])}
    for change in diff.changed:
        described = []
        for name in change.fields:
            if name == "municipality_id" and "municipality_name" in change.fields:
                continue  # the name says it
            label = FIELD_LABELS.get(name, name)
            old, new = display(change.old[name]), display(change.new[name])
            described.append(f"{label}: {old} → {new}")
        yield {
            **change.new,
            "change": str(CHANGE_LABELS["changed"]),
            "changed_fields": "; ".join(described),
        }


# --- the whole snapshot, built once -------------------------------------------------------


def prebuilt_path(snapshot: RegistrySnapshot, locale: str) -> Path:
    """Where the XLSX of a whole snapshot in one interface language is kept. The name holds
    a digest of the snapshot's identity and publication time, so a file can never be taken
    for another snapshot's (a database restored without its storage reuses ids), and of
    :data:`XLSX_LAYOUT`, so a file of an older layout is never sent (it is built again on
    request and left to ``flask storage-cleanup``)."""
    identity = (
        f"{snapshot.id}:{snapshot.kind}:{snapshot.number}:{snapshot.published_at}"
        f":layout-{XLSX_LAYOUT}"
    )
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return exports_folder() / f"registry-{snapshot.id}-{digest}-{locale}.xlsx"


def exports_folder() -> Path:
    """Where the built exports of snapshots are kept, beside the file storage."""
    return Path(current_app.config["STORAGE_DIR"]) / "exports"


def referenced_export_files() -> set[Path]:
    """The built XLSX files every published snapshot may have, one per interface language
    (``flask storage-cleanup`` keeps them; a file of no snapshot is left over)."""
    from sqlalchemy import select

    from review_portal.extensions import db

    snapshots = db.session.execute(select(RegistrySnapshot)).scalars().all()
    return {
        prebuilt_path(snapshot, locale)
        for snapshot in snapshots
        for locale in current_app.config["LANGUAGES"]
    }


def build_snapshot_exports_job(job_id: int) -> None:
    """Job handler (``export_registry``, started at publication): :func:`build_snapshot_xlsx`
    of the job's snapshot, its files counted on the job."""
    from review_portal.extensions import db
    from review_portal.jobs.models import Job
    from review_portal.jobs.services import finish_counted

    job = db.session.get(Job, job_id)
    snapshot = db.session.get(RegistrySnapshot, int(job.payload["snapshot_id"]))
    snapshot_id = snapshot.id
    files = build_snapshot_xlsx(snapshot)
    finish_counted(
        job_id,
        total=len(files),
        done=len(files),
        result={"snapshot_id": snapshot_id, "files": files},
    )


def build_snapshot_xlsx(snapshot: RegistrySnapshot, *, missing_only: bool = False) -> dict:
    """The XLSX of the whole ``snapshot`` in every interface language, each written next to
    its final name and moved there in one step (a reader sees the old file, none, or the
    whole new one). A snapshot never changes, so a file is built once; ``/registry.xlsx``
    without a selection sends it instead of building it again (tens of seconds for a
    national registry). ``missing_only``: languages whose file exists are left alone (after
    an upgrade that changed :data:`XLSX_LAYOUT`, ``flask registry-exports``)."""
    from flask_babel import force_locale

    from review_portal.registry.queries import RegistryFilters, iter_items

    files = {}
    for locale in current_app.config["LANGUAGES"]:
        target = prebuilt_path(snapshot, locale)
        if missing_only and target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f"{target.name}.{os.getpid()}.part")
        try:
            with force_locale(locale):
                rows = write_xlsx(
                    iter_items(snapshot.id, RegistryFilters()),
                    part,
                    heading=Heading.of(snapshot.kind, snapshot),
                )
            os.replace(part, target)
        finally:
            part.unlink(missing_ok=True)
        files[locale] = {"rows": rows, "bytes": target.stat().st_size}
    return files


def prebuilt_response(snapshot: RegistrySnapshot, locale: str, filename: str) -> Response | None:
    """The built XLSX of the whole snapshot, sent in chunks; ``None`` when not built."""
    try:
        file = open(prebuilt_path(snapshot, locale), "rb")  # noqa: SIM115 - the response closes it
    except FileNotFoundError:
        return None
    return _xlsx_file_response(file, os.fstat(file.fileno()).st_size, filename)
