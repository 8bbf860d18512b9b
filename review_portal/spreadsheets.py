"""The portal's one way of writing tables for spreadsheets: the CSV convention every download
follows, and the page setup of a printable XLSX sheet (a leaf module: no database).

The CSV convention (``docs/design/contracts.md``, "CSV and XLSX exports"): UTF-8 with a byte
order mark (Excel then reads Cyrillic), ``;`` between cells (the list separator of Excel and
LibreOffice with Russian regional settings), CRLF line ends, and per cell:

* a number (``int``, ``float``, ``Decimal``, ``Fraction``) is written as a number, with a
  decimal comma and no thousands separator (``82,5``; a column's decimal places when the
  writer is told them), so a Russian spreadsheet reads a number, never text;
* a date is ``DD.MM.YYYY``, a moment ``DD.MM.YYYY HH:MM:SS``;
* text that a spreadsheet would run as a formula (it starts with ``=``, ``+``, ``-``, ``@``,
  a tab or a carriage return) gets an apostrophe in front (OWASP's advice against CSV
  injection); only text is guarded, so a negative *number* stays ``-3,5``;
* an identifier made of digits (:class:`Code`: ИНН, ОГРН, КПП, a phone number, an id with
  leading zeros) is written ``="0123456789"``: Excel and LibreOffice read the text of this
  constant formula, keeping leading zeros and all twelve or thirteen digits (as a number
  they would lose the zeros and turn into ``1,23457E+11``). Only digits are ever put in the
  quotes (checked here, at writing), so nothing a user typed can run; a code holding
  anything else is plain guarded text. The portal's importers read ``="…"`` back as its
  digits.

Writers build rows of typed values and let :class:`CsvWriter` spell them; a streaming export
yields :meth:`CsvWriter.header` and then :meth:`CsvWriter.rows` chunks, and stays streaming.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from itertools import chain, repeat

BOM = "\ufeff"
DELIMITER = ";"
LINE_END = "\r\n"
#: What a spreadsheet reads as the start of a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: Rows written to the buffer before a streaming writer hands a chunk on.
CHUNK_ROWS = 500

_DIGITS = re.compile(r"[0-9]+")
#: ``="0123"``: how a digits-only code is written, and how an importer recognises it.
_WRAPPED_CODE = re.compile(r'="([0-9]+)"')


class Code(str):
    """Text that looks like a number but is an identifier (ИНН, ОГРН, КПП, a phone number,
    a registry number, a code with leading zeros): a spreadsheet must keep it as text."""

    __slots__ = ()


def guard_text(text: str) -> str:
    """``text`` with an apostrophe in front when a spreadsheet would run it as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def number_text(value: int | float | Decimal | Fraction, digits: int | None = None) -> str:
    """A number with a decimal comma: ``digits`` places when given (``82,50``), else its own
    shortest spelling (``82,5``; a whole float as an integer, ``100``)."""
    if isinstance(value, Fraction):
        value = Decimal(value.numerator) / Decimal(value.denominator)
    if digits is not None:
        text = f"{Decimal(str(value)) if isinstance(value, float) else value:.{digits}f}"
    elif isinstance(value, float):
        text = str(int(value)) if value.is_integer() else repr(value)
    elif isinstance(value, Decimal):
        text = format(value, "f")
    else:
        text = str(value)
    return text.replace(".", ",")


def csv_cell(value, digits: int | None = None) -> str:
    """One cell's text under the convention above (``None`` is an empty cell)."""
    kind = type(value)  # the common kinds first: a registry export writes millions of cells
    if kind is str:
        return "'" + value if value.startswith(FORMULA_STARTS) else value
    if value is None:
        return ""
    if kind is int:
        return str(value)
    if isinstance(value, Code):
        if _DIGITS.fullmatch(value):
            return f'="{value}"'
        return guard_text(str(value))
    if isinstance(value, str):
        return guard_text(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float | Decimal | Fraction):
        return number_text(value, digits)
    if isinstance(value, datetime):
        return value.strftime("%d.%m.%Y %H:%M:%S")
    if isinstance(value, date):
        return value.strftime("%d.%m.%Y")
    return guard_text(str(value))


def unwrap_code(text: str) -> str:
    """The digits of a ``="0123"`` cell (as this module writes codes); other text as is.
    Importers call it so a downloaded file can be uploaded again unchanged."""
    match = _WRAPPED_CODE.fullmatch(text.strip())
    return match.group(1) if match else text


class CsvWriter:
    """Rows of one table as CSV text: :meth:`header` opens the file (byte order mark and
    header row), :meth:`line` is one row, :meth:`rows` yields rows in chunks.

    ``digits`` gives each column's decimal places (``None`` for a column of integers or text,
    or to keep a number's own spelling)."""

    def __init__(self, header: Sequence, digits: Sequence[int | None] | None = None):
        self.labels = [str(label) for label in header]
        self.digits = list(digits) if digits is not None else [None] * len(self.labels)
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, delimiter=DELIMITER, lineterminator=LINE_END)

    def _take(self) -> str:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text

    def header(self) -> str:
        """The byte order mark and the header row (labels are guarded like any text)."""
        self._writer.writerow([guard_text(label) for label in self.labels])
        return BOM + self._take()

    def line(self, values: Sequence) -> str:
        """One row's text, CRLF included."""
        self._writer.writerow(
            [
                csv_cell(value, digits)
                for value, digits in zip(values, chain(self.digits, repeat(None)), strict=False)
            ]
        )
        return self._take()

    def rows(self, rows: Iterable[Sequence], chunk_rows: int = CHUNK_ROWS) -> Iterator[str]:
        """The rows as text chunks of ``chunk_rows`` rows each, read lazily."""
        pending: list[str] = []
        for values in rows:
            pending.append(self.line(values))
            if len(pending) == chunk_rows:
                yield "".join(pending)
                pending = []
        if pending:
            yield "".join(pending)

    def stream(self, rows: Iterable[Sequence], chunk_rows: int = CHUNK_ROWS) -> Iterator[str]:
        """The whole file in chunks: the header, then the rows (read lazily)."""
        yield self.header()
        yield from self.rows(rows, chunk_rows)

    def document(self, rows: Iterable[Sequence]) -> str:
        """The whole file as one string (for small tables)."""
        return "".join(self.stream(rows))


# --- XLSX --------------------------------------------------------------------------------

#: The ``paperSize`` code of A4 in SpreadsheetML.
PAPER_A4 = "9"


def print_setup(sheet, *, title_rows: str | None = None, landscape: bool = True) -> None:
    """Page setup of an openpyxl sheet (write-only too: call before the first row): A4,
    landscape, scaled to one page wide and as many pages tall as needed, narrow margins,
    ``title_rows`` (``"1:3"``) repeated at the top of every printed page."""
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.page_setup.orientation = "landscape" if landscape else "portrait"
    sheet.page_setup.paperSize = PAPER_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.print_options.gridLines = True
    sheet.page_margins.left = sheet.page_margins.right = 0.4
    sheet.page_margins.top = sheet.page_margins.bottom = 0.5
    if title_rows:
        sheet.print_title_rows = title_rows


def document_properties(workbook, *, title: str, creator: str) -> None:
    """The workbook's title and author (the file's properties name the center, not
    "openpyxl"). openpyxl always writes an empty extended-properties part, so there is no
    Company to set."""
    workbook.properties.title = title
    workbook.properties.creator = creator
    workbook.properties.lastModifiedBy = creator
