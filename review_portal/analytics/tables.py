"""The dashboard's tables and the charts drawn from them, as server-rendered SVG (a leaf
module: no database).

Every figure of the dashboard is a :class:`Table` first; its chart, its HTML table and its
CSV and XLSX exports are all rendered from the same rows, with numbers already rounded, so
they always show the same figures (the CSV under the portal's CSV convention,
:mod:`review_portal.spreadsheets`). Each bar or point of a chart carries its label and value in
``data-label`` / ``data-value`` attributes, which the tests read back.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from markupsafe import Markup, escape

from review_portal.spreadsheets import CsvWriter, document_properties, guard_text, print_setup

NUMBER = (int, float, Decimal)


@dataclass(frozen=True)
class Column:
    key: str
    label: object
    #: Decimal places of a number column (``None``: text or integer).
    digits: int | None = None


@dataclass
class Table:
    """One figure: named (the CSV's file name), titled, with columns and rounded rows."""

    name: str
    title: object
    columns: tuple[Column, ...]
    rows: list[tuple] = field(default_factory=list)
    #: Rows highlighted on the page (e.g. low agreement), by position.
    highlighted: frozenset[int] = frozenset()
    #: How many rows the page shows (the CSV always has all of them).
    shown: int | None = None

    def index(self, key: str) -> int:
        return next(i for i, c in enumerate(self.columns) if c.key == key)

    def column(self, key: str) -> list:
        i = self.index(key)
        return [row[i] for row in self.rows]

    @property
    def page_rows(self) -> list[tuple]:
        return self.rows if self.shown is None else self.rows[: self.shown]


def plain(value) -> str:
    """A cell as text: numbers with a dot and no thousands separator, empty for none."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value) if value != int(value) else str(int(value))
    return str(value)


def display(value) -> str:
    """A cell as the reader sees it: the CSV's number with the locale's decimal sign, "yes"
    or "no" for a flag, a dash for nothing."""
    from babel.numbers import get_decimal_symbol
    from flask_babel import get_locale
    from flask_babel import gettext as _

    if value is None:
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    text = plain(value)
    if isinstance(value, float):
        return text.replace(".", get_decimal_symbol(get_locale()))
    return text


def rounded(value, digits: int) -> float | None:
    """Round once, here, so chart, table and CSV carry the same number."""
    if value is None:
        return None
    return round(float(value), digits)


def to_csv(table: Table) -> str:
    """The whole table as CSV (the portal's convention: BOM, ``;``, CRLF, decimal commas,
    formulas guarded); numbers are spelled as the page shows them, flags 1/0."""
    return CsvWriter([c.label for c in table.columns]).document(table.rows)


def to_xlsx(table: Table, *, subtitle: str = "", creator: str = "") -> bytes:
    """The whole table as an XLSX workbook: the CSV's columns under a bold, frozen header
    (repeated on every printed page), numbers as numbers with the page's decimal places,
    flags 1/0, text as text (never a formula); landscape, one page wide."""
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = table.name[:31]
    title = str(table.title) + (f" ({subtitle})" if subtitle else "")
    document_properties(workbook, title=title, creator=creator or title)
    print_setup(sheet, title_rows="1:1")
    sheet.oddHeader.left.text = title
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    for index, column in enumerate(table.columns, 1):
        cell = sheet.cell(row=1, column=index, value=guard_text(str(column.label)))
        cell.font = bold
        sheet.column_dimensions[get_column_letter(index)].width = max(
            10, min(40, len(str(column.label)) + 2)
        )
    number_formats = [
        "0" if c.digits == 0 else f"0.{'0' * c.digits}" if c.digits else "General"
        for c in table.columns
    ]
    for r, row in enumerate(table.rows, 2):
        for index, value in enumerate(row):
            cell = sheet.cell(row=r, column=index + 1)
            if isinstance(value, bool):
                cell.value = int(value)
            elif isinstance(value, NUMBER):
                cell.value = value
                cell.number_format = number_formats[index]
            elif value is not None:
                cell.value = ILLEGAL_CHARACTERS_RE.sub("", str(value))
                cell.data_type = "s"  # a name typed by a person is never a formula
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# --- charts ------------------------------------------------------------------------------

BAR_HEIGHT = 18
GAP = 6
LABEL_WIDTH = 260
PLOT_WIDTH = 360
VALUE_WIDTH = 70


def _short(text: str, limit: int = 34) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bar_chart(
    table: Table,
    label: str,
    value: str,
    *,
    limit: int | None = None,
    low: str | None = None,
    high: str | None = None,
    reference: float | None = None,
    scale: tuple[float, float] | None = None,
    highlight: Callable[[int], bool] | None = None,
    marker: str | None = None,
    title: object = None,
) -> Markup:
    """Horizontal bars of column ``value`` labelled by column ``label``, the first ``limit``
    rows; optional whiskers from columns ``low``..``high``, a dashed ``reference`` line and
    negative values (bars to the left of zero)."""
    li, vi = table.index(label), table.index(value)
    wl = table.index(low) if low else None
    wh = table.index(high) if high else None
    mi = table.index(marker) if marker else None
    rows = list(enumerate(table.rows[:limit] if limit else table.rows))
    numbers = [r[vi] for _, r in rows if isinstance(r[vi], NUMBER)]
    for _, r in rows:
        for i in (wl, wh, mi):
            if i is not None and isinstance(r[i], NUMBER):
                numbers.append(r[i])
    if reference is not None:
        numbers.append(reference)
    lo, hi = scale or (min([0.0, *numbers]), max([0.0, *numbers]))
    if hi <= lo:
        hi = lo + 1
    x = _scaler(lo, hi)
    height = max(1, len(rows)) * (BAR_HEIGHT + GAP) + GAP + 14
    width = LABEL_WIDTH + PLOT_WIDTH + VALUE_WIDTH
    caption = escape(str(title if title is not None else table.title))
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'data-table="{escape(table.name)}" aria-label="{caption}"><title>{caption}</title>',
        f'<line x1="{x(0)}" y1="0" x2="{x(0)}" y2="{height - 14}" class="axis" stroke="#6c757d"/>',
    ]
    for n, (position, row) in enumerate(rows):
        y = GAP + n * (BAR_HEIGHT + GAP)
        v = row[vi]
        text = plain(v)
        strong = bool(highlight and highlight(position))
        fill = "#b02a37" if strong else "#0b5ed7"
        interval = ""
        if wl is not None and wh is not None:
            interval = f' data-low="{escape(plain(row[wl]))}" data-high="{escape(plain(row[wh]))}"'
        parts.append(
            f'<g class="bar{" highlighted" if strong else ""}" '
            f'data-label="{escape(plain(row[li]))}" data-value="{escape(text)}"{interval}>'
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 13}" text-anchor="end" font-size="12">'
            f"{escape(_short(plain(row[li])))}</text>"
        )
        if isinstance(v, NUMBER):
            start, end = sorted((x(0), x(v)))
            parts.append(
                f'<rect x="{start}" y="{y}" width="{max(end - start, 0.5):.1f}" '
                f'height="{BAR_HEIGHT}" fill="{fill}"/>'
            )
        if wl is not None and wh is not None and isinstance(row[wl], NUMBER):
            a, b = x(row[wl]), x(row[wh])
            mid = y + BAR_HEIGHT / 2
            parts.append(
                f'<path class="whisker" d="M{a} {mid}H{b}M{a} {y + 4}V{y + 14}'
                f'M{b} {y + 4}V{y + 14}" stroke="#212529" fill="none"/>'
            )
        if mi is not None and isinstance(row[mi], NUMBER):
            parts.append(
                f'<path class="marker" data-marker="{escape(plain(row[mi]))}" '
                f'd="M{x(row[mi])} {y - 2}V{y + BAR_HEIGHT + 2}" stroke="#212529" '
                f'stroke-width="3"/>'
            )
        shown = display(v)
        if mi is not None:
            shown = f"{shown} / {display(row[mi])}"
        parts.append(
            f'<text x="{LABEL_WIDTH + PLOT_WIDTH + 6}" y="{y + 13}" font-size="12">'
            f"{escape(shown)}</text></g>"
        )
    if reference is not None:
        parts.append(
            f'<line class="reference" x1="{x(reference)}" y1="0" x2="{x(reference)}" '
            f'y2="{height - 14}" stroke="#b02a37" stroke-dasharray="4 3"/>'
            f'<text x="{x(reference)}" y="{height - 2}" font-size="11" text-anchor="middle">'
            f"{escape(display(reference))}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _scaler(lo: float, hi: float) -> Callable[[float], float]:
    def x(value) -> float:
        return round(LABEL_WIDTH + (float(value) - lo) / (hi - lo) * PLOT_WIDTH, 1)

    return x


SERIES_COLOURS = ("#0b5ed7", "#b02a37", "#198754")


def line_chart(table: Table, label: str, series: Sequence[str], *, title: object = None) -> Markup:
    """Lines of the ``series`` columns over the rows (in order), labelled by ``label``."""
    li = table.index(label)
    indices = [table.index(s) for s in series]
    rows = table.rows
    numbers = [r[i] for r in rows for i in indices if isinstance(r[i], NUMBER)]
    hi = max([1.0, *numbers]) if numbers else 1.0
    left, top, plot_w, plot_h = 50, 10, 560, 180
    width, height = left + plot_w + 20, top + plot_h + 60
    step = plot_w / max(1, len(rows) - 1)
    caption = escape(str(title if title is not None else table.title))

    def xy(n, v):
        return left + n * step, top + plot_h - float(v) / hi * plot_h

    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" data-table="{escape(table.name)}" '
        f'aria-label="{caption}"><title>{caption}</title>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        f'stroke="#6c757d"/><line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" '
        f'stroke="#6c757d"/>',
        f'<text x="{left - 4}" y="{top + 4}" font-size="11" text-anchor="end">'
        f"{escape(plain(rounded(hi, 2)))}</text>"
        f'<text x="{left - 4}" y="{top + plot_h}" font-size="11" text-anchor="end">0</text>',
    ]
    for s, (key, i) in enumerate(zip(series, indices, strict=True)):
        colour = SERIES_COLOURS[s % len(SERIES_COLOURS)]
        points = [(n, r[i]) for n, r in enumerate(rows) if isinstance(r[i], NUMBER)]
        if len(points) > 1:
            path = " ".join(f"{a:.1f},{b:.1f}" for a, b in (xy(n, v) for n, v in points))
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}"/>')
        for n, v in points:
            a, b = xy(n, v)
            parts.append(
                f'<circle class="point" data-series="{escape(key)}" '
                f'data-label="{escape(plain(rows[n][li]))}" data-value="{escape(plain(v))}" '
                f'cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{colour}"/>'
            )
        label_text = escape(str(table.columns[i].label))
        parts.append(
            f'<text x="{left + 10 + s * 200}" y="{height - 4}" font-size="12" fill="{colour}">'
            f"● {label_text}</text>"
        )
    for n, row in enumerate(rows):
        if len(rows) <= 12 or n % max(1, len(rows) // 12) == 0:
            a, _ = xy(n, 0)
            parts.append(
                f'<text x="{a:.1f}" y="{top + plot_h + 16}" font-size="10" '
                f'text-anchor="middle">{escape(plain(row[li]))}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))
