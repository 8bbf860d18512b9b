"""The records of an uploaded table, header first, as lists of strings: a CSV file or an
Excel workbook (``.xlsx``, the first sheet), told apart by the file's first bytes.

A workbook is a ZIP archive, so it is bounded before it is opened: the archive's directory
is checked against the document limits of :mod:`review_portal.programs.extract` (entries,
declared inflated size, XML size — a ZIP bomb is refused from its directory alone), a
workbook with macros is refused, and it is then read by openpyxl in read-only mode (rows
streamed, formulas as their cached values), at most :data:`MAX_COLUMNS` columns wide.
The number of rows is bounded by the caller (``MAX_ROWS`` of the import).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import IO

from flask_babel import lazy_gettext as _l

from review_portal.programs.extract import DocumentTooLarge, Limits, check_archive

#: The first bytes of a ZIP archive (an ``.xlsx`` workbook is one).
ZIP_SIGNATURE = b"PK\x03\x04"
#: Columns read of a workbook's rows; a wider header is refused.
MAX_COLUMNS = 100
#: Records (blank ones too) read of a sheet at most: a sheet whose last row is far down
#: is refused without reading a million empty rows.
MAX_RECORDS = 100_000

NOT_A_WORKBOOK = _l("The file is neither a CSV table nor an Excel workbook (.xlsx).")


class TableProblem(Exception):
    """The workbook cannot be read; ``message`` says why (for the report)."""

    def __init__(self, message) -> None:
        super().__init__(str(message))
        self.message = message


def is_workbook(head: bytes) -> bool:
    return head.startswith(ZIP_SIGNATURE)


def cell_text(value) -> str:
    """A workbook cell as the text a CSV export would hold."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "да" if value else "нет"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        value = value.date() if value.time() == datetime.min.time() else value
    if isinstance(value, date):
        return value.strftime("%d.%m.%Y")
    return str(value)


@contextmanager
def workbook_records(stream: IO[bytes]) -> Iterator[Iterator[list[str]]]:
    """The rows of the first sheet of the workbook in ``stream`` (seekable), each cut to
    :data:`MAX_COLUMNS` cells; raises :class:`TableProblem` for a workbook refused."""
    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(stream) as archive:
            check_archive(archive, Limits.from_config())
            names = {info.filename.lower() for info in archive.infolist()}
    except zipfile.BadZipFile:
        raise TableProblem(NOT_A_WORKBOOK) from None
    except DocumentTooLarge:
        raise TableProblem(_l("The workbook unpacks to too much data: split it.")) from None
    if any(name.endswith("vbaproject.bin") for name in names):
        raise TableProblem(_l("The workbook contains macros: save it as “Excel workbook (.xlsx)”."))
    if "xl/workbook.xml" not in names:
        raise TableProblem(NOT_A_WORKBOOK)
    stream.seek(0)
    try:
        workbook = load_workbook(stream, read_only=True, data_only=True, keep_links=False)
    except Exception:  # openpyxl raises many kinds on a damaged file
        raise TableProblem(NOT_A_WORKBOOK) from None
    try:
        sheet = workbook.worksheets[0] if workbook.worksheets else None
        if sheet is None:
            raise TableProblem(NOT_A_WORKBOOK)

        def rows() -> Iterator[list[str]]:
            for index, values in enumerate(
                sheet.iter_rows(max_col=MAX_COLUMNS + 1, values_only=True)
            ):
                if index == MAX_RECORDS:
                    raise TableProblem(_l("The table has too many rows: split it."))
                cells = [cell_text(value) for value in values]
                while cells and not cells[-1].strip():
                    cells.pop()
                if len(cells) > MAX_COLUMNS:
                    raise TableProblem(_l("The table has more than %(n)s columns.", n=MAX_COLUMNS))
                yield cells

        yield rows()
    finally:
        workbook.close()
