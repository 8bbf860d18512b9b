"""Bulk import of provider organizations and programs from CSV files (coordinators' tool).

A file holds one kind of rows, with a header row whose column names are those of the
regional Navigator (in Russian: they are data, not interface text) — :data:`COLUMNS`.
The file is read as a stream in UTF-8 (with or without BOM), UTF-16 with BOM or
Windows-1251 (what Russian Excel saves), with ``;``, ``,`` or tab as delimiter.

All or nothing: every row is parsed and checked first — the metadata rules through
:func:`~review_portal.programs.validation.program_data_errors`, the registration numbers
through :func:`~review_portal.organizations.services.registration_number_errors`,
duplicates within the file and against the database — and only a file without a single
error is written. The functions flush and audit; the caller commits.

This is also the one public CSV import machinery the experts' import
(:mod:`review_portal.experts.services`) builds on: :class:`Column`, the value parsers
(:func:`text`, :func:`whole_number`, :func:`email`, :func:`municipality`...),
:func:`read_rows`, :func:`chunks`, :func:`column_order`, :func:`organizations_by_inn` and
:func:`record_import`.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import IO, TYPE_CHECKING, Any

import sqlalchemy as sa
from flask_babel import LazyString, gettext
from flask_babel import lazy_gettext as _l

from review_portal.audit.services import record_event
from review_portal.enums import (
    AccountStatus,
    Direction,
    Level,
    OrganizationType,
    ProgramType,
    RegistryKind,
    StudyForm,
)
from review_portal.extensions import db
from review_portal.imports import tables
from review_portal.input_guard import CONTROL
from review_portal.locks import hold_lock
from review_portal.organizations.models import Municipality, Organization
from review_portal.organizations.services import (
    OrganizationData,
    OrganizationError,
    create_organization,
    registration_number_errors,
)
from review_portal.permissions import authorize
from review_portal.programs.models import Program
from review_portal.programs.permissions import can_import
from review_portal.programs.services import create_program
from review_portal.programs.validation import AGE_MAX, AGE_MIN, TITLE_MAX, program_data_errors
from review_portal.spreadsheets import CsvWriter, unwrap_code

if TYPE_CHECKING:
    from review_portal.accounts.models import User

ORGANIZATIONS, PROGRAMS = "organizations", "programs"
KINDS = (ORGANIZATIONS, PROGRAMS)

#: A file with more data rows is refused as a whole (split it): bounds memory and time.
MAX_ROWS = 10_000
#: The report keeps at most this many problems; the rest are only counted.
MAX_REPORTED_ERRORS = 1_000
#: Bytes looked at to recognise the encoding.
_SAMPLE_BYTES = 64 * 1024
#: Rows per ``IN (...)`` look-up, well under every database's parameter limit.
_BATCH = 500
#: Blank records :func:`check_head` reads looking for the first data row (it leaves a
#: file of more blank lines to the import, which reads it all).
_HEAD_RECORDS = 1_000
#: Rows read between two progress reports of an import.
PROGRESS_EVERY = 500

#: The phases of an import, as reported to its ``progress`` callback: reading and checking
#: the rows (``done`` of ``total`` rows), then writing them all in one transaction.
CHECKING, WRITING = "checking", "writing"
#: ``progress(phase, done, total)``: how far an import got (a job records it).
Progress = Callable[[str, int, int], None]

REQUIRED = _l("This field is required.")
UNKNOWN_ENCODING = _l("The file's encoding is not recognised: save it as “CSV UTF-8”.")
CONTROL_CHARACTERS = _l("The value contains characters that are not allowed (such as NUL).")


# --- the report ------------------------------------------------------------------------


@dataclass(frozen=True)
class Mapping:
    """How a file whose titles are not the portal's is read: the field each column fills
    (by its title, :func:`normalize`-d; ``""`` for a column ignored) and, by field, the
    portal's word each other word of the file stands for (keys :func:`normalize`-d)."""

    columns: dict[str, str]
    values: dict[str, dict[str, str]] = field(default_factory=dict)

    def json(self) -> dict:
        return {"columns": self.columns, "values": self.values}

    @classmethod
    def from_json(cls, data: dict) -> Mapping:
        return cls(dict(data["columns"]), {k: dict(v) for k, v in data["values"].items()})


@dataclass(frozen=True)
class RowError:
    """One problem: the row as numbered in the spreadsheet (the header is row 1) and the
    column's name, or ``None`` for a problem of the whole row."""

    row: int
    column: str | None
    message: Any


@dataclass
class ImportReport:
    """What an import found or did. ``created`` is non-zero only when nothing was wrong."""

    kind: str
    #: Data rows read (blank rows are skipped and not counted).
    rows: int = 0
    created: int = 0
    #: Problems of the file as a whole (encoding, header, size): no row was checked then.
    file_errors: list = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    #: Problems found beyond :data:`MAX_REPORTED_ERRORS` (counted, not kept).
    omitted_errors: int = 0
    #: The file's header, when its titles are not the portal's columns (and no mapping
    #: was given): the file may still be imported through a :class:`Mapping`.
    header: list[str] | None = None
    #: The file's title of each column (by the portal's name) when read through a mapping:
    #: the report names the columns as the file does.
    titles: dict[str, str] = field(default_factory=dict)
    #: The file was read through the mapping saved for its layout.
    saved_mapping_used: bool = False

    @property
    def needs_mapping(self) -> bool:
        return self.header is not None

    @property
    def ok(self) -> bool:
        return not self.file_errors and not self.errors and not self.omitted_errors

    @property
    def error_count(self) -> int:
        return len(self.errors) + self.omitted_errors

    @property
    def rows_with_errors(self) -> int:
        return len({error.row for error in self.errors})

    def add(self, row: int, column: str | None, message) -> None:
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(RowError(row, column, message))
        else:
            self.omitted_errors += 1


# --- values ----------------------------------------------------------------------------


def normalize(text: str) -> str:
    """``text`` compared loosely: case, ``ё``/``е``, runs of spaces and spaces around ``/``."""
    text = " ".join(text.replace("\u00a0", " ").split()).lower().replace("ё", "е")
    return re.sub(r"\s*/\s*", "/", text)


class InvalidValue(Exception):
    """A cell that cannot be read; ``message`` says why, for the report."""

    def __init__(self, message) -> None:
        super().__init__(str(message))
        self.message = message


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """Words accepted in a column, each meaning one enum member."""

    #: The words as shown on the page (Russian data).
    words: tuple[str, ...]
    lookup: dict[str, Any]

    def __call__(self, value: str, context: _Context) -> Any:
        try:
            return self.lookup[normalize(value)]
        except KeyError:
            raise InvalidValue(
                _l(
                    "Unknown value “%(value)s”; allowed: %(allowed)s.",
                    value=value,
                    allowed=", ".join(self.words),
                )
            ) from None


def vocabulary(*entries: tuple) -> Vocabulary:
    """``(member, word, synonym...)`` entries; synonyms also count written together as
    ``word/synonym`` or ``word (synonym)``, as the Navigator does."""
    words: list[str] = []
    lookup: dict[str, Any] = {}
    for member, *names in entries:
        words.extend(names)
        spellings = [*names]
        if len(names) > 1:
            spellings += ["/".join(names), f"{names[0]} ({'/'.join(names[1:])})"]
        for spelling in spellings:
            lookup[normalize(spelling)] = member
    return Vocabulary(tuple(words), lookup)


ORGANIZATION_TYPES = vocabulary(
    (OrganizationType.STATE, "государственная"),
    (OrganizationType.MUNICIPAL, "муниципальная"),
    (OrganizationType.PRIVATE, "частная"),
    (OrganizationType.INDIVIDUAL_ENTREPRENEUR, "индивидуальный предприниматель", "ИП"),
)
DIRECTIONS = vocabulary(
    (Direction.TECHNICAL, "техническая"),
    (Direction.NATURAL_SCIENCE, "естественнонаучная", "естественно-научная"),
    (Direction.PHYSICAL_SPORTS, "физкультурно-спортивная"),
    (Direction.ARTS, "художественная"),
    (Direction.TOURISM_LOCAL_HISTORY, "туристско-краеведческая"),
    (Direction.SOCIAL_HUMANITARIAN, "социально-гуманитарная"),
)
LEVELS = vocabulary(
    (Level.INTRODUCTORY, "стартовый", "ознакомительный"),
    (Level.BASIC, "базовый"),
    (Level.ADVANCED, "продвинутый", "углублённый"),
)
PROGRAM_TYPES = vocabulary(
    (ProgramType.GENERAL_DEVELOPMENTAL, "общеразвивающая"),
    (ProgramType.PRE_PROFESSIONAL, "предпрофессиональная"),
)
STUDY_FORMS = vocabulary(
    (StudyForm.FULL_TIME, "очная"),
    (StudyForm.PART_TIME, "очно-заочная"),
    (StudyForm.DISTANCE, "заочная"),
)
REGISTRY_KINDS = vocabulary(
    (RegistryKind.CERTIFIED, "сертифицированные"),
    (RegistryKind.SIGNIFICANT, "значимые", "социально значимые", "социально-значимые"),
    (RegistryKind.GENERAL, "общеразвивающие"),
    (RegistryKind.PRE_PROFESSIONAL, "предпрофессиональные"),
)
YES_NO = vocabulary((True, "да"), (False, "нет"))


@dataclass(frozen=True, eq=False)
class WordList:
    """Several words of a vocabulary in one cell, separated by commas or semicolons."""

    vocabulary: Vocabulary
    #: At most this many words in a cell.
    most: int = 8

    @staticmethod
    def split(value: str) -> list[str]:
        """The words of a cell (empty ones left out)."""
        return [w.strip() for w in re.split(r"[;,\n]", value) if w.strip()]

    def __call__(self, value: str, context: _Context) -> list:
        words = self.split(value)
        if len(words) > self.most:
            raise InvalidValue(_l("At most %(n)s values.", n=self.most))
        return [self.vocabulary(word, context) for word in words]

    @property
    def words(self) -> tuple[str, ...]:
        return self.vocabulary.words

    @property
    def lookup(self) -> dict[str, Any]:
        return self.vocabulary.lookup


def text(max_length: int | None = None) -> Callable[[str, _Context], str]:
    def parse(value: str, context: _Context) -> str:
        if max_length is not None and len(value) > max_length:
            raise InvalidValue(_l("At most %(n)s characters.", n=max_length))
        return value

    return parse


def whole_number(value: str, context: _Context) -> int:
    # Excel may write "72,0" or group thousands with (non-breaking) spaces.
    match = re.fullmatch(r"(\d+)(?:[.,]0+)?", value.replace(" ", "").replace("\u00a0", ""))
    if match is None:
        raise InvalidValue(_l("Enter a whole number."))
    return int(match.group(1))


def registration_number(value: str, context: _Context) -> str:
    # A downloaded CSV writes an ИНН as ="0123456789" (review_portal.spreadsheets).
    return unwrap_code(value).replace(" ", "").replace("\u00a0", "")


def email(value: str, context: _Context) -> str:
    from email_validator import EmailNotValidError, validate_email

    if len(value) > 255:
        raise InvalidValue(_l("At most %(n)s characters.", n=255))
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        raise InvalidValue(_l("Enter a valid e-mail address.")) from None
    return value


def municipality(value: str, context: _Context) -> int:
    found = context.municipalities.get(normalize(value))
    if found is None:
        raise InvalidValue(
            _l(
                "Unknown municipality “%(value)s”: write it as in the list of municipalities.",
                value=value,
            )
        )
    return found


# --- columns ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Column:
    """A documented column: its header, the field it fills, how a cell is read."""

    #: The header, as the regional Navigator names the field (Russian data).
    name: str
    field: str
    required: bool
    parse: Callable[[str, _Context], Any]
    #: What the column holds, for the page (interface text).
    help: Any = None
    #: The value of an empty cell of an optional column.
    default: Any = None

    @property
    def values(self) -> tuple[str, ...]:
        """The accepted words, when the column takes words from a list."""
        return self.parse.words if isinstance(self.parse, (Vocabulary, WordList)) else ()

    @property
    def default_word(self) -> str | None:
        """The word an empty cell of an optional column stands for, if it takes words."""
        if not isinstance(self.parse, Vocabulary) or self.default is None:
            return None
        return next(
            (w for w in self.parse.words if self.parse.lookup[normalize(w)] == self.default),
            None,
        )


INN_COLUMN = "ИНН"
AGES = _l("Years, from %(low)s to %(high)s.", low=AGE_MIN, high=AGE_MAX)

ORGANIZATION_COLUMNS = (
    Column(
        "Полное наименование",
        "full_name",
        True,
        text(500),
        _l("As in the charter; at most 500 characters."),
    ),
    Column("Краткое наименование", "short_name", True, text(255), _l("At most 255 characters.")),
    Column(
        INN_COLUMN,
        "inn",
        True,
        registration_number,
        _l(
            "10 digits for an organization, 12 for an individual entrepreneur. Format the "
            "column as text in Excel, or leading zeros are lost."
        ),
    ),
    Column(
        "ОГРН/ОГРНИП",
        "ogrn",
        False,
        registration_number,
        _l("13 digits (OGRN) or 15 digits (OGRNIP)."),
    ),
    Column("Тип поставщика", "kind", True, ORGANIZATION_TYPES),
    Column(
        "Муниципальное образование",
        "municipality_id",
        True,
        municipality,
        _l("The name as in the portal's list of municipalities."),
    ),
    Column("Адрес", "address", False, text(500)),
    Column("Телефон", "phone", False, text(40)),
    Column("Электронная почта", "email", False, email),
    Column("Сайт", "website", False, text(255)),
)

PROGRAM_COLUMNS = (
    Column(
        "Наименование программы",
        "title",
        True,
        text(),
        _l("At most %(n)s characters.", n=TITLE_MAX),
    ),
    Column(
        "ИНН организации",
        "organization_inn",
        True,
        registration_number,
        _l("The provider's INN: the organization must already be registered or imported."),
    ),
    Column("Направленность", "direction", True, DIRECTIONS),
    Column("Уровень", "level", True, LEVELS),
    Column(
        "Вид программы",
        "program_type",
        False,
        PROGRAM_TYPES,
        default=ProgramType.GENERAL_DEVELOPMENTAL,
    ),
    Column("Возраст от", "age_min", True, whole_number, AGES),
    Column("Возраст до", "age_max", True, whole_number, AGES),
    Column("Объём (часов)", "total_hours", True, whole_number, _l("Hours in total.")),
    Column("Продолжительность (месяцев)", "duration_months", True, whole_number),
    Column("Форма обучения", "study_form", True, STUDY_FORMS),
    Column(
        "ДОТ/ЭО",
        "uses_distance_learning",
        False,
        YES_NO,
        _l("Distance learning technologies or e-learning."),
        default=False,
    ),
    Column("Сетевая форма", "network_form", False, YES_NO, default=False),
    Column("Наполняемость группы от", "group_min", True, whole_number, _l("Children.")),
    Column("Наполняемость группы до", "group_max", True, whole_number, _l("Children.")),
    Column(
        "Муниципальное образование реализации",
        "municipality_id",
        True,
        municipality,
        _l("Where the program runs; the name as in the portal's list of municipalities."),
    ),
    Column(
        "Адаптирована для детей с ОВЗ",
        "adapted_for_disabilities",
        False,
        YES_NO,
        default=False,
    ),
    Column(
        "Разноуровневая программа",
        "multi_level",
        False,
        YES_NO,
        _l("Its content offers several levels of mastery."),
        default=False,
    ),
    Column("Аннотация", "annotation", False, text(), _l("A short description."), default=""),
    Column(
        "Вид реестра",
        "requested_registry_kind",
        False,
        REGISTRY_KINDS,
        default=RegistryKind.CERTIFIED,
    ),
    Column(
        "Другие реестры",
        "additional_registry_kinds",
        False,
        WordList(REGISTRY_KINDS),
        _l("Other registries the program asks for, separated by commas."),
        default=[],
    ),
)

COLUMNS: dict[str, tuple[Column, ...]] = {
    ORGANIZATIONS: ORGANIZATION_COLUMNS,
    PROGRAMS: PROGRAM_COLUMNS,
}


def template_csv(kind: str) -> str:
    """The header row of ``kind`` (the portal's CSV convention: BOM, ``;``, CRLF)."""
    return CsvWriter([column.name for column in COLUMNS[kind]]).header()


# --- reading the file ------------------------------------------------------------------


@dataclass
class _Context:
    """What parsing a cell may need to look up, loaded once per file."""

    municipalities: dict[str, int]


class FileProblem(Exception):
    """The file as a whole cannot be read; ``messages`` say why."""

    def __init__(self, *messages) -> None:
        super().__init__(*(str(message) for message in messages))
        self.messages = messages


class HeaderProblem(FileProblem):
    """The header's titles are not the portal's columns; ``header`` is the file's."""

    def __init__(self, header: list[str], *messages) -> None:
        super().__init__(*messages)
        self.header = header


#: The first bytes of an Excel 97–2003 workbook (``.xls``), which is not read.
_XLS_SIGNATURE = b"\xd0\xcf\x11\xe0"


def _detect_encoding(head: bytes) -> str:
    if head.startswith(_XLS_SIGNATURE):
        raise FileProblem(
            _l(
                "This is an Excel 97–2003 workbook (.xls): in Excel choose “Save as” → "
                "“Excel workbook (.xlsx)” and upload that file."
            )
        )
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in head:
        # UTF-16 without its BOM, or not text at all: NUL is no character of a table.
        raise FileProblem(UNKNOWN_ENCODING)
    try:
        # Not final: the sample may end inside a character.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "cp1251"
    return "utf-8"


@contextmanager
def table_records(stream: IO[bytes]) -> Iterator[Iterator[list[str]]]:
    """The records of a binary ``stream``, decoded and split; header first: the rows of
    an Excel workbook's first sheet (:mod:`review_portal.imports.tables`), or CSV records.

    Reads the stream incrementally: only a sample is looked at to choose the encoding,
    and the delimiter is the most frequent of ``;``, ``,`` and tab in the header line.
    Decoding problems surface while iterating, as :class:`UnicodeDecodeError`.
    """
    if not stream.seekable():
        stream = io.BytesIO(stream.read())
    head = stream.read(_SAMPLE_BYTES)
    stream.seek(0)
    if not head.strip():
        raise FileProblem(_l("The file is empty."))
    if tables.is_workbook(head):
        try:
            with tables.workbook_records(stream) as rows:
                yield rows
        except tables.TableProblem as problem:
            raise FileProblem(problem.message) from None
        return
    wrapper = io.TextIOWrapper(stream, encoding=_detect_encoding(head), newline="")
    try:
        first = wrapper.readline()
        delimiter = max((";", ",", "\t"), key=first.count)
        yield csv.reader(itertools.chain([first], wrapper), delimiter=delimiter)
    finally:
        # The caller owns the stream: leave it open.
        wrapper.detach()


def _names(names: Iterable[str]) -> str:
    return ", ".join(f"«{name}»" for name in names)


def _header_positions(
    header: list[str], columns: tuple[Column, ...], mapping: Mapping | None = None
) -> dict[Column, int]:
    """Where each column is — by its title, or by ``mapping``; unknown, repeated or
    missing headers are one file problem (:class:`HeaderProblem`, which a mapping may
    solve, when titles are unknown and no mapping was given)."""
    by_name = {normalize(column.name): column for column in columns}
    by_field = {column.field: column for column in columns}
    positions: dict[Column, int] = {}
    unknown, repeated = [], []
    for index, name in enumerate(header):
        name = name.strip()
        if not name:
            continue
        if mapping is None:
            column = by_name.get(normalize(name))
        else:
            chosen = mapping.columns.get(normalize(name))
            if chosen == "":
                continue
            column = by_field.get(chosen)
        if column is None:
            unknown.append(name)
        elif column in positions:
            repeated.append(name)
        else:
            positions[column] = index
    missing = [c.name for c in columns if c.required and c not in positions]
    problems = []
    if missing:
        problems.append(_l("Missing columns: %(names)s.", names=_names(missing)))
    if unknown:
        problems.append(_l("Unknown columns: %(names)s.", names=_names(unknown)))
    if repeated:
        problems.append(_l("Repeated columns: %(names)s.", names=_names(repeated)))
    if unknown and mapping is None:
        raise HeaderProblem([name.strip()[:TITLE_MAX] for name in header], *problems)
    if problems:
        raise FileProblem(*problems)
    return positions


@dataclass
class _Row:
    number: int
    data: dict[str, Any]
    #: Fields whose cell had a problem (their values are absent from ``data``).
    invalid: set[str]


def read_rows(
    stream: IO[bytes],
    columns: tuple[Column, ...],
    report: ImportReport,
    progress: Progress | None = None,
    mapping: Mapping | None = None,
) -> list[_Row] | None:
    """Every non-blank data row with its cells read; problems go to ``report``.

    ``None`` when the file as a whole cannot be read (the problem is in ``report``). The
    records are split first, so the number of rows is known before any is read;
    ``progress(CHECKING, done, total)`` is then called every :data:`PROGRESS_EVERY` rows.
    """
    context = _Context(
        municipalities={
            normalize(name): id_
            for id_, name in db.session.execute(sa.select(Municipality.id, Municipality.name))
        }
    )
    records: list[tuple[int, list[str]]] = []
    with _file_problems(report), table_records(stream) as reader:
        header = next(reader, None)
        if header is None:
            raise FileProblem(_l("The file is empty."))
        positions = _header_positions(header, columns, mapping)
        if mapping is not None:
            report.titles = {column.name: header[i].strip() for column, i in positions.items()}
        for number, cells in enumerate(reader, start=2):
            if not any(cell.strip() for cell in cells):
                continue
            if len(records) == MAX_ROWS:
                raise FileProblem(
                    _l(
                        "The file has more than %(n)s rows: split it into several files.",
                        n=MAX_ROWS,
                    )
                )
            records.append((number, cells))
    if report.file_errors:
        return None
    if not records:
        report.file_errors.append(_l("The file has no rows below the header."))
        return None
    report.rows = total = len(records)
    used = set(positions.values())
    if mapping is not None:
        # The columns the mapping ignores hold values nobody reads.
        used |= {index for index, name in enumerate(header) if name.strip()}
    rows: list[_Row] = []
    for done, (number, cells) in enumerate(records):
        if progress is not None and done % PROGRESS_EVERY == 0:
            progress(CHECKING, done, total)
        rows.append(_read_row(number, cells, columns, positions, used, context, report, mapping))
    return rows


def check_head(kind: str, stream: IO[bytes], mapping: Mapping | None = None) -> ImportReport:
    """What the start of a file tells: its encoding, its header and that a data row
    follows — the file problems :func:`read_rows` would report, found in time independent
    of the file's length (the upload request's check; the import checks every row).
    Leaves ``stream`` at its start."""
    report = ImportReport(kind)
    with _file_problems(report):
        try:
            with table_records(stream) as reader:
                header = next(reader, None)
                if header is None:
                    raise FileProblem(_l("The file is empty."))
                _header_positions(header, COLUMNS[kind], mapping)
                for blank, cells in enumerate(reader):
                    if any(cell.strip() for cell in cells) or blank == _HEAD_RECORDS:
                        break
                else:
                    raise FileProblem(_l("The file has no rows below the header."))
        finally:
            stream.seek(0)
    return report


@contextmanager
def _file_problems(report: ImportReport) -> Iterator[None]:
    """Record why a file as a whole cannot be read in ``report``."""
    try:
        yield
    except HeaderProblem as problem:
        report.file_errors.extend(problem.messages)
        report.header = problem.header
    except FileProblem as problem:
        report.file_errors.extend(problem.messages)
    except UnicodeDecodeError:
        report.file_errors.append(UNKNOWN_ENCODING)
    except csv.Error:
        report.file_errors.append(_l("The file is not a CSV table: save it as “CSV UTF-8”."))


def _read_row(
    number: int,
    cells: list[str],
    columns: tuple[Column, ...],
    positions: dict[Column, int],
    used: set[int],
    context: _Context,
    report: ImportReport,
    mapping: Mapping | None = None,
) -> _Row:
    for index, cell in enumerate(cells):
        if index not in used and cell.strip():
            report.add(
                number,
                None,
                _l("A value in column %(n)s, which has no known header.", n=index + 1),
            )
    row = _Row(number, {}, set())
    for column in columns:
        index = positions.get(column)
        value = cells[index].strip() if index is not None and index < len(cells) else ""
        if mapping is not None and value:
            mapped = mapping.values.get(column.field, {})
            if isinstance(column.parse, WordList):
                # Each word of the cell is mapped on its own.
                words = column.parse.split(value)
                value = "; ".join(mapped.get(normalize(w), w) for w in words)
            else:
                value = mapped.get(normalize(value), value)
        if CONTROL.search(value):
            # No database stores NUL; the other control characters are no data either.
            report.add(number, column.name, CONTROL_CHARACTERS)
            row.invalid.add(column.field)
            continue
        if not value:
            if column.required:
                report.add(number, column.name, REQUIRED)
                row.invalid.add(column.field)
            else:
                row.data[column.field] = column.default
            continue
        try:
            row.data[column.field] = column.parse(value, context)
        except InvalidValue as problem:
            report.add(number, column.name, problem.message)
            row.invalid.add(column.field)
    return row


def chunks(values: list, size: int = _BATCH) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def organizations_by_inn(inns: Iterable[str]) -> dict[str, Organization]:
    """The organizations holding each of ``inns`` (the approved one per ИНН): a pending or
    rejected registration naming an ИНН neither blocks it nor receives its programs."""
    found: dict[str, Organization] = {}
    for chunk in chunks(sorted(set(inns))):
        for organization in db.session.execute(
            sa.select(Organization).where(
                Organization.inn.in_(chunk), Organization.status == AccountStatus.APPROVED
            )
        ).scalars():
            found[organization.inn] = organization
    return found


def column_order(columns: tuple[Column, ...]) -> Callable[[RowError], tuple]:
    index = {column.name: i for i, column in enumerate(columns)}
    return lambda error: (error.row, index.get(error.column, -1))


# --- organizations ---------------------------------------------------------------------


def _check_organizations(rows: list[_Row], report: ImportReport) -> None:
    column_of = {column.field: column.name for column in ORGANIZATION_COLUMNS}
    first_row_of_inn: dict[str, int] = {}
    for row in rows:
        inn = row.data.get("inn")
        if inn is None:
            continue
        kind = row.data.get("kind")
        if kind is None:
            # The type is missing or unknown: judge the number by its own length.
            kind = (
                OrganizationType.INDIVIDUAL_ENTREPRENEUR
                if len(inn) == 12
                else OrganizationType.STATE
            )
        ogrn = row.data.get("ogrn") if "ogrn" not in row.invalid else None
        for name, message in registration_number_errors(kind, inn, ogrn).items():
            report.add(row.number, column_of[name], message)
            row.invalid.add(name)
        if "inn" in row.invalid:
            continue
        if inn in first_row_of_inn:
            report.add(
                row.number,
                column_of["inn"],
                _l("This INN is already in row %(row)s of the file.", row=first_row_of_inn[inn]),
            )
            row.invalid.add("inn")
        else:
            first_row_of_inn[inn] = row.number
    registered = organizations_by_inn(first_row_of_inn)
    for inn, number in first_row_of_inn.items():
        if inn in registered:
            report.add(
                number, column_of["inn"], _l("An organization with this INN is already registered.")
            )


def import_organizations(
    stream: IO[bytes],
    actor: User,
    filename: str | None = None,
    progress: Progress | None = None,
    mapping: Mapping | None = None,
) -> ImportReport:
    """Create the provider organizations of a CSV file, approved (the coordinator vouches).

    Nothing is written unless every row is valid; then each organization is created by
    :func:`~review_portal.organizations.services.create_organization` (audited there) and
    the import itself is audited as ``import.organizations``. ``progress`` hears of the
    rows read and of the start of the writing (see :func:`import_file`).
    """
    authorize(can_import(actor))
    report = ImportReport(ORGANIZATIONS)
    rows = read_rows(stream, ORGANIZATION_COLUMNS, report, progress, mapping)
    if rows is None:
        return report
    _check_organizations(rows, report)
    if not report.ok:
        report.errors.sort(key=column_order(ORGANIZATION_COLUMNS))
        return report
    if progress is not None:
        progress(WRITING, report.rows, report.rows)
    current: _Row | None = None
    try:
        with db.session.begin_nested():
            for current in rows:
                create_organization(
                    OrganizationData(**current.data), actor, status=AccountStatus.APPROVED
                )
            record_import(report, actor, filename, len(rows))
    except (OrganizationError, sa.exc.IntegrityError):
        # Registered by someone else between the check and the insert: nothing is kept.
        report.add(
            current.number if current else 0,
            INN_COLUMN,
            _l("An organization with this INN is already registered."),
        )
        return report
    report.created = len(rows)
    return report


# --- programs --------------------------------------------------------------------------


def _check_programs(rows: list[_Row], report: ImportReport) -> dict[int, Organization]:
    """Check every program row; the organization of each valid row, by row number."""
    column_of = {column.field: column.name for column in PROGRAM_COLUMNS}
    inn_column = column_of["organization_inn"]
    for row in rows:
        for name, message in program_data_errors(row.data).items():
            if name not in row.invalid:
                report.add(row.number, column_of[name], message)
                row.invalid.add(name)

    organizations = organizations_by_inn(
        row.data["organization_inn"] for row in rows if "organization_inn" in row.data
    )
    organization_of: dict[int, Organization] = {}
    first_row_of: dict[tuple[int, str], int] = {}
    for row in rows:
        inn = row.data.get("organization_inn")
        if inn is None:
            continue
        organization = organizations.get(inn)
        if organization is None:
            report.add(row.number, inn_column, _l("No organization with this INN is registered."))
            continue
        organization_of[row.number] = organization
        title = row.data.get("title")
        if "title" in row.invalid or not title:
            continue
        key = (organization.id, normalize(title))
        if key in first_row_of:
            report.add(
                row.number,
                column_of["title"],
                _l(
                    "The same organization's program with this title is already in row "
                    "%(row)s of the file.",
                    row=first_row_of[key],
                ),
            )
        else:
            first_row_of[key] = row.number

    organization_ids = sorted({organization_id for organization_id, _title in first_row_of})
    for chunk in chunks(organization_ids):
        existing = db.session.execute(
            sa.select(Program.organization_id, Program.title).where(
                Program.organization_id.in_(chunk)
            )
        )
        for organization_id, title in existing:
            number = first_row_of.get((organization_id, normalize(title)))
            if number is not None:
                report.add(
                    number,
                    column_of["title"],
                    _l("The organization already has a program with this title."),
                )
    return organization_of


def import_programs(
    stream: IO[bytes],
    actor: User,
    filename: str | None = None,
    progress: Progress | None = None,
    mapping: Mapping | None = None,
) -> ImportReport:
    """Create the programs of a CSV file as drafts of their organizations, by ``actor``.

    The provider of each row is found by its ИНН among registered organizations. Nothing
    is written unless every row is valid; then each program is created by
    :func:`~review_portal.programs.services.create_program` (with its first review, audited
    there) and the import itself is audited as ``import.programs``. ``progress`` hears of
    the rows read and of the start of the writing (see :func:`import_file`).
    """
    authorize(can_import(actor))
    report = ImportReport(PROGRAMS)
    rows = read_rows(stream, PROGRAM_COLUMNS, report, progress, mapping)
    if rows is None:
        return report
    if progress is None:
        hold_lock("import:programs")  # the check and the writing are one transaction
    organization_of = _check_programs(rows, report)
    if not report.ok:
        report.errors.sort(key=column_order(PROGRAM_COLUMNS))
        return report
    if progress is not None:
        progress(WRITING, report.rows, report.rows)
        # The progress committed: another import (the same file uploaded twice) may have
        # written these programs since the check, and no constraint would stop a second
        # copy. One import of programs writes at a time, and checks again in its writing
        # transaction.
        hold_lock("import:programs")
        organization_of = _check_programs(rows, report)
        if not report.ok:
            report.errors.sort(key=column_order(PROGRAM_COLUMNS))
            return report
    with db.session.begin_nested():
        for row in rows:
            data = dict(row.data)
            del data["organization_inn"]
            create_program(organization_of[row.number], actor, **data)
        record_import(report, actor, filename, len(rows))
    report.created = len(rows)
    return report


def record_import(report: ImportReport, actor: User, filename: str | None, created: int):
    record_event(
        f"import.{report.kind}",
        actor=actor,
        object_type="import",
        after={"file": filename, "rows": report.rows, "created": created},
    )


IMPORTERS = {ORGANIZATIONS: import_organizations, PROGRAMS: import_programs}


def import_file(
    kind: str,
    stream: IO[bytes],
    actor: User,
    filename: str | None = None,
    progress: Progress | None = None,
    mapping: Mapping | None = None,
) -> ImportReport:
    """Import a CSV file of ``kind`` (:data:`KINDS`); see the importer of each kind. The
    center's staff only (``can_import``).

    ``progress(phase, done, total)``, when given, is called while the rows are read and
    checked (:data:`CHECKING`, every :data:`PROGRESS_EVERY` rows) and once before the
    writing starts (:data:`WRITING`) — never during it, so it may commit (a job records its
    progress): the writing that follows is one transaction of the caller's. ``mapping``
    reads a file whose titles are not the portal's (:class:`Mapping`).
    """
    authorize(can_import(actor))
    report = IMPORTERS[kind](stream, actor, filename, progress, mapping)
    if report.titles:
        report.errors = [
            replace(error, column=report.titles.get(error.column, error.column))
            for error in report.errors
        ]
    return report


# --- the report kept by an import job ---------------------------------------------------


def report_json(report: ImportReport) -> dict:
    """``report`` as JSON data: every message as its message id and values, so the page
    shows it in the reader's language (the import ran with no reader)."""
    return {
        "kind": report.kind,
        "rows": report.rows,
        "created": report.created,
        "file_errors": [_message_json(message) for message in report.file_errors],
        "errors": [
            [error.row, error.column, _message_json(error.message)] for error in report.errors
        ],
        "omitted_errors": report.omitted_errors,
    }


def report_from_json(data: dict) -> ImportReport:
    """The report :func:`report_json` wrote, its messages translated when shown."""
    return ImportReport(
        kind=data["kind"],
        rows=data["rows"],
        created=data["created"],
        file_errors=[_message_from_json(message) for message in data["file_errors"]],
        errors=[
            RowError(row, column, _message_from_json(message))
            for row, column, message in data["errors"]
        ],
        omitted_errors=data["omitted_errors"],
    )


def _message_json(message) -> dict:
    if isinstance(message, LazyString) and message._func is gettext and len(message._args) == 1:
        values = {
            name: value if isinstance(value, int | str) else str(value)
            for name, value in message._kwargs.items()
        }
        return {"id": message._args[0], "values": values}
    # Not a message of the catalog (none is today): kept as it reads.
    return {"text": str(message)}


def _message_from_json(data: dict):
    if "id" in data:
        return _l(data["id"], **data["values"])
    return data["text"]
