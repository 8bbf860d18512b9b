"""The registry as files: the columns of an export, the CSV stream and the XLSX workbook.

One list of columns (:data:`COLUMNS`) says what an export shows, under which header, how
wide and how a value is written; the CSV and the XLSX of a selection, and the CSV of the
pending changes, are all built from it. Both formats take rows one at a time (an iterator
over :func:`~review_portal.registry.queries.iter_items`), so their memory does not grow with
the registry: the CSV is a generator of chunks the response streams; the XLSX is written by
openpyxl in write-only mode (rows go to a temporary file on disk as they come, strings
inline, no shared-string table) into a temporary file the response then sends in chunks.

Text cells that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@`` ...) are
neutralised: the CSV prefixes them with an apostrophe (OWASP's advice against CSV
injection), the XLSX stores them as plain strings. Providers type those titles; whoever
downloads the registry must never run them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import Enum
from pathlib import Path
from urllib.parse import quote

from flask import Response, current_app
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from review_portal.registry.models import RegistrySnapshot
from review_portal.registry.queries import Diff, local_date

CSV_MIMETYPE = "text/csv"
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DATE_FORMAT = "DD.MM.YYYY"
PERCENT_FORMAT = "0.00"
#: Rows written to the CSV buffer before it is handed to the response.
CSV_CHUNK_ROWS = 500
FILE_CHUNK = 64 * 1024
#: What a spreadsheet reads as the start of a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Column:
    """One column of an export: the row key, the header, the XLSX width (characters)."""

    key: str
    label: object
    width: int


COLUMNS: tuple[Column, ...] = (
    Column("registry_number", _l("Registry number"), 18),
    Column("title", _l("Program title"), 50),
    Column("organization_name", _l("Organization"), 40),
    Column("organization_inn", _l("INN"), 14),
    Column("municipality_name", _l("Municipality"), 30),
    Column("direction", _l("Direction"), 28),
    Column("level", _l("Level"), 14),
    Column("age_min", _l("Age from"), 10),
    Column("age_max", _l("Age to"), 10),
    Column("total_hours", _l("Hours"), 10),
    Column("study_form", _l("Study form"), 26),
    Column("adapted_for_disabilities", _l("Adapted for children with disabilities"), 16),
    Column("conclusion_number", _l("Conclusion number"), 20),
    Column("conclusion_date", _l("Conclusion date"), 14),
    Column("final_percent", _l("Final score, %"), 12),
    Column("included_on", _l("Included on"), 14),
    Column("valid_until", _l("Valid until"), 14),
    Column("status", _l("Status"), 14),
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
        key = (type(value), value)
        text = self._memo.get(key)
        if text is None:
            text = self._memo[key] = display(value)
        return text

    def csv(self, value) -> str:
        """The CSV text: a provider's text that a spreadsheet would run as a formula gets
        an apostrophe in front."""
        text = self(value)
        if type(value) is str and text.startswith(FORMULA_STARTS):
            return "'" + text
        return text


class _SheetValues:
    """Cell values of one write-only sheet: numbers and dates stay numbers and dates (so
    the spreadsheet sorts and sums them), labels and booleans are text, a provider's text
    is always text (never a formula or an error code) and loses the control characters
    XML cannot hold.

    Formatted cells are reused per column: a write-only sheet writes a row out as soon as
    it is appended, so one styled cell per column serves every row.
    """

    def __init__(self, sheet, text: Formatter):
        self.sheet = sheet
        self.text = text
        self._styled: dict[tuple[int, str], WriteOnlyCell] = {}

    def _cell(self, index: int, value, number_format: str):
        cell = self._styled.get((index, number_format))
        if cell is None:
            cell = self._styled[index, number_format] = WriteOnlyCell(self.sheet)
            cell.number_format = number_format
        cell.value = value
        return cell

    def __call__(self, index: int, value):
        if value is None:
            return None
        kind = type(value)
        if kind is str:
            text = ILLEGAL_CHARACTERS_RE.sub("", value)
            if text.startswith("=") or text in ERROR_CODES:
                cell = WriteOnlyCell(self.sheet, value=text)
                cell.data_type = "s"
                return cell
            return text
        if kind is int:
            return value
        if kind is date:
            return self._cell(index, value, DATE_FORMAT)
        if kind is Decimal:
            return self._cell(index, value, PERCENT_FORMAT)
        return self.text(value)


# --- CSV --------------------------------------------------------------------------------


def csv_stream(rows: Iterable[Mapping], columns: tuple[Column, ...] = COLUMNS) -> Iterator[bytes]:
    """The CSV of ``rows`` in UTF-8 chunks: a byte order mark (so Excel reads UTF-8), the
    header row, then the rows; ``;``-separated (Excel's separator where the decimal mark is a
    comma), CRLF line ends. Rows are read lazily, ``CSV_CHUNK_ROWS`` at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow([str(column.label) for column in columns])
    yield ("\ufeff" + buffer.getvalue()).encode("utf-8")
    buffer.seek(0)
    buffer.truncate()
    text = Formatter()
    keys = [column.key for column in columns]
    pending = 0
    for row in rows:
        writer.writerow([text.csv(row.get(key)) for key in keys])
        pending += 1
        if pending == CSV_CHUNK_ROWS:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    if pending:
        yield buffer.getvalue().encode("utf-8")


# --- XLSX -------------------------------------------------------------------------------


def write_xlsx(
    rows: Iterable[Mapping], target, columns: tuple[Column, ...] = COLUMNS, title: str = ""
) -> int:
    """Write ``rows`` as a formatted sheet into ``target`` (a path or a binary file) and
    return the number of rows: bold header row, column widths, the header frozen and an
    autofilter over the data. Write-only mode: a row is on disk once appended."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=(title or _("Registry"))[:31])
    # Widths and the frozen pane are written before the first row, the autofilter after
    # the last one (write-only sheets write their XML in this order).
    for index, column in enumerate(columns, 1):
        sheet.column_dimensions[get_column_letter(index)].width = column.width
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for column in columns:
        cell = WriteOnlyCell(sheet, value=str(column.label))
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    values = _SheetValues(sheet, Formatter())
    keys = list(enumerate(column.key for column in columns))
    count = 0
    for row in rows:
        sheet.append([values(index, row.get(key)) for index, key in keys])
        count += 1
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{count + 1}"
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
    rows: Iterable[Mapping], filename: str, columns: tuple[Column, ...] = COLUMNS
) -> Response:
    """Build the workbook of ``rows`` in a temporary file (gone when closed) and send it in
    chunks; the file is closed when the response is."""
    # Not a context manager: the response owns the file and closes it after sending.
    spool = tempfile.TemporaryFile(prefix="registry-", suffix=".xlsx")  # noqa: SIM115
    try:
        write_xlsx(rows, spool, columns)
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
    for another snapshot's (a database restored without its storage reuses ids)."""
    identity = f"{snapshot.id}:{snapshot.kind}:{snapshot.number}:{snapshot.published_at}"
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
    """Job handler (``export_registry``, started at publication): the XLSX of the whole
    snapshot in every interface language, written next to its final name and moved there
    in one step (a reader sees the old file, none, or the whole new one). A snapshot never
    changes, so the file is built once; ``/registry.xlsx`` without a selection sends it
    instead of building it again (tens of seconds for a national registry)."""
    from flask_babel import force_locale

    from review_portal.extensions import db
    from review_portal.jobs.models import Job
    from review_portal.jobs.services import finish_counted
    from review_portal.registry.queries import RegistryFilters, iter_items

    job = db.session.get(Job, job_id)
    snapshot = db.session.get(RegistrySnapshot, int(job.payload["snapshot_id"]))
    snapshot_id = snapshot.id
    files = {}
    for locale in current_app.config["LANGUAGES"]:
        target = prebuilt_path(snapshot, locale)
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f"{target.name}.{os.getpid()}.part")
        try:
            with force_locale(locale):
                rows = write_xlsx(iter_items(snapshot_id, RegistryFilters()), part)
            os.replace(part, target)
        finally:
            part.unlink(missing_ok=True)
        files[locale] = {"rows": rows, "bytes": target.stat().st_size}
    finish_counted(
        job_id,
        total=len(files),
        done=len(files),
        result={"snapshot_id": snapshot_id, "files": files},
    )


def prebuilt_response(snapshot: RegistrySnapshot, locale: str, filename: str) -> Response | None:
    """The built XLSX of the whole snapshot, sent in chunks; ``None`` when not built."""
    try:
        file = open(prebuilt_path(snapshot, locale), "rb")  # noqa: SIM115 - the response closes it
    except FileNotFoundError:
        return None
    return _xlsx_file_response(file, os.fstat(file.fileno()).st_size, filename)
