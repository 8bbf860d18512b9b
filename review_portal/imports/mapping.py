"""Column mapping of imports: a file whose column titles are not the portal's (a
Navigator export of another region or version) is read through a
:class:`~review_portal.imports.services.Mapping` the coordinator confirms on the mapping
page; it is saved by the file's set of titles and used again for the next file of the same
layout.

* :func:`suggest_field` proposes the field of a title: compared loosely (case, ``ё``/``е``,
  punctuation, spaces), then among :data:`SYNONYMS` — the Navigator's titles seen so far.
* :func:`value_candidates` finds, in the first :data:`SAMPLE_ROWS` rows, the words of
  columns taking words from a list that the portal does not know, each with a suggested
  word (:func:`suggest_value`); the import reports any word left unmapped by row.
* :func:`saved_mapping` and :func:`save_mapping` keep mappings by layout
  (:func:`layout_key`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

import sqlalchemy as sa

from review_portal.audit.services import record_event
from review_portal.extensions import db
from review_portal.imports.models import ImportMapping
from review_portal.imports.services import (
    COLUMNS,
    Column,
    Mapping,
    Vocabulary,
    WordList,
    normalize,
    table_records,
)
from review_portal.permissions import authorize
from review_portal.programs.permissions import can_import

if TYPE_CHECKING:
    from review_portal.accounts.models import User

#: Rows looked at for words to map (the import itself reports words beyond them).
SAMPLE_ROWS = 1_000
#: Words to map shown per column at most.
MAX_WORDS = 30

#: Titles other than the portal's that mean a field (compared by :func:`loose`).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "title": ("Название", "Название программы", "Наименование"),
    "organization_inn": ("ИНН", "ИНН поставщика", "ИНН организации-поставщика"),
    "direction": ("Направление", "Направленность программы"),
    "level": ("Уровень программы", "Уровень освоения"),
    "program_type": ("Тип программы",),
    "age_min": ("Минимальный возраст", "Возраст с", "Возраст (от)"),
    "age_max": ("Максимальный возраст", "Возраст по", "Возраст (до)"),
    "total_hours": ("Количество часов", "Часов в год", "Объём часов", "Объем программы"),
    "duration_months": ("Продолжительность, мес", "Срок реализации (месяцев)"),
    "study_form": ("Форма реализации",),
    "uses_distance_learning": ("Дистанционное обучение", "С применением ДОТ"),
    "network_form": ("Сетевая форма реализации",),
    "group_min": ("Минимальная наполняемость", "Наполняемость от"),
    "group_max": ("Максимальная наполняемость", "Наполняемость до"),
    "municipality_id": ("Муниципалитет", "Муниципальное образование", "Район"),
    "adapted_for_disabilities": ("ОВЗ", "Категории детей с ОВЗ", "Для детей с ОВЗ"),
    "multi_level": ("Разноуровневая", "Разноуровневость", "Разноуровневый характер программы"),
    "annotation": ("Краткое описание", "Описание"),
    "requested_registry_kind": ("Реестр", "Основной реестр", "Тип сертификата"),
    "additional_registry_kinds": ("Дополнительные реестры", "Также в реестрах", "Реестры"),
    "full_name": ("Наименование организации", "Полное название"),
    "short_name": ("Краткое название",),
    "ogrn": ("ОГРН",),
    "kind": ("Тип организации",),
    "email": ("E-mail", "Email", "Почта"),
}

#: Words of the file that mean a portal word, by the kind of vocabulary (loose keys).
_VALUE_SYNONYMS: dict[str, str] = {
    "очно": "очная",
    "очно-заочно": "очно-заочная",
    "заочно": "заочная",
    "дистанционная": "заочная",
    "техническое": "техническая",
    "естественнонаучное": "естественнонаучная",
    "физкультурно-спортивное": "физкультурно-спортивная",
    "художественное": "художественная",
    "туристско-краеведческое": "туристско-краеведческая",
    "социально-гуманитарное": "социально-гуманитарная",
    "социально-педагогическая": "социально-гуманитарная",
    "начальный": "стартовый",
    "углубленный": "продвинутый",
    "yes": "да",
    "true": "да",
    "1": "да",
    "+": "да",
    "есть": "да",
    "no": "нет",
    "false": "нет",
    "0": "нет",
    "-": "нет",
    "отсутствует": "нет",
}
#: Stems of the kinds of special needs (ОВЗ) the Navigator lists: such a value means "да".
_DISABILITY_STEMS = ("слух", "зрен", "речи", "речев", "опорно", "интеллект", "аутис", "зпр")


def loose(text: str) -> str:
    """``text`` compared more loosely than :func:`normalize`: punctuation dropped too."""
    return " ".join(re.sub(r"[^\w+\-]+", " ", normalize(text)).split())


def layout_key(kind: str, header: list[str]) -> str:
    """The layout of a file: its kind and set of (normalised, non-empty) titles."""
    titles = sorted({normalize(title) for title in header if title.strip()})
    return hashlib.sha256("\n".join([kind, *titles]).encode()).hexdigest()


def suggest_field(title: str, columns: tuple[Column, ...]) -> str:
    """The field a title most likely means, or ``""`` (ignore it)."""
    wanted = loose(title)
    for column in columns:
        if loose(column.name) == wanted:
            return column.field
    fields = {column.field for column in columns}
    for name, synonyms in SYNONYMS.items():
        if name in fields and wanted in {loose(synonym) for synonym in synonyms}:
            return name
    return ""


def suggest_mapping(kind: str, header: list[str]) -> dict[int, str]:
    """A field for each title (by position), none chosen twice (the first keeps it)."""
    chosen: dict[int, str] = {}
    for index, title in enumerate(header):
        name = suggest_field(title, COLUMNS[kind]) if title.strip() else ""
        chosen[index] = "" if name and name in chosen.values() else name
    return chosen


def suggest_value(column: Column, value: str) -> str:
    """The portal's word a word of the file most likely means, or ``""``."""
    vocabulary: Vocabulary = column.parse
    words = {normalize(word): word for word in vocabulary.words}
    key = loose(value)
    synonym = _VALUE_SYNONYMS.get(key)
    if synonym is not None and normalize(synonym) in words:
        return words[normalize(synonym)]
    if column.field == "adapted_for_disabilities" and any(s in key for s in _DISABILITY_STEMS):
        return "да"
    # "Техническая направленность", "Очно-заочная форма": the longest word it contains.
    contained = [word for word in words if word in normalize(value)]
    return words[max(contained, key=len)] if contained else ""


@dataclass(frozen=True)
class Candidate:
    """A word of a column (by field) that the portal does not know, with a suggestion."""

    field: str
    title: str
    value: str
    suggestion: str
    words: tuple[str, ...]


def value_candidates(kind: str, stream: IO[bytes], columns: dict[int, str]) -> list[Candidate]:
    """The unknown words of the columns mapped (``columns``: field by position) to fields
    that take words from a list, in the first :data:`SAMPLE_ROWS` rows, in order of first
    appearance. Leaves ``stream`` at its start."""
    by_field = {column.field: column for column in COLUMNS[kind]}
    wanted = {
        index: by_field[name]
        for index, name in columns.items()
        if name in by_field and isinstance(by_field[name].parse, (Vocabulary, WordList))
    }
    found: list[Candidate] = []
    seen: set[tuple[str, str]] = set()
    per_field: dict[str, int] = {}
    try:
        with table_records(stream) as reader:
            header = next(reader, [])
            for number, cells in enumerate(reader):
                if number == SAMPLE_ROWS:
                    break
                for index, column in wanted.items():
                    cell = cells[index].strip() if index < len(cells) else ""
                    # A column of several words (separated) is mapped word by word.
                    words = (
                        column.parse.split(cell) if isinstance(column.parse, WordList) else [cell]
                    )
                    for value in words:
                        key = (column.field, normalize(value))
                        if not value or key in seen or normalize(value) in column.parse.lookup:
                            continue
                        seen.add(key)
                        if per_field.get(column.field, 0) == MAX_WORDS:
                            continue
                        per_field[column.field] = per_field.get(column.field, 0) + 1
                        found.append(
                            Candidate(
                                column.field,
                                header[index] if index < len(header) else column.name,
                                value[:200],
                                suggest_value(column, value),
                                column.parse.words,
                            )
                        )
    finally:
        stream.seek(0)
    return found


def saved_mapping(kind: str, header: list[str]) -> Mapping | None:
    """The mapping saved for files of this layout, if any."""
    row = db.session.execute(
        sa.select(ImportMapping).where(
            ImportMapping.kind == kind, ImportMapping.layout == layout_key(kind, header)
        )
    ).scalar_one_or_none()
    return Mapping.from_json(row.mapping) if row is not None else None


def build_mapping(
    header: list[str], columns: dict[int, str], values: dict[tuple[str, str], str]
) -> Mapping:
    """The :class:`Mapping` of the choices: a field (or ``""``) by position, and a
    portal word by (field, word of the file) — empty choices are left out."""
    by_title = {
        normalize(title): columns.get(index, "")
        for index, title in enumerate(header)
        if title.strip()
    }
    mapped: dict[str, dict[str, str]] = {}
    for (name, value), word in values.items():
        if word:
            mapped.setdefault(name, {})[normalize(value)] = word
    return Mapping(by_title, mapped)


def save_mapping(kind: str, header: list[str], mapping: Mapping, actor: User) -> None:
    """Save ``mapping`` for files of this layout (replacing the one saved); audited as
    ``import.mapping_saved``. Flushes; the caller commits."""
    authorize(can_import(actor))
    layout = layout_key(kind, header)
    row = db.session.execute(
        sa.select(ImportMapping).where(ImportMapping.kind == kind, ImportMapping.layout == layout)
    ).scalar_one_or_none()
    if row is None:
        row = ImportMapping(kind=kind, layout=layout)
        db.session.add(row)
    row.titles = [title for title in header if title.strip()]
    row.mapping = mapping.json()
    row.updated_by_id = actor.id
    db.session.flush()
    record_event(
        "import.mapping_saved",
        actor=actor,
        object_type="import_mapping",
        object_id=row.id,
        after={"kind": kind, "columns": mapping.columns, "values": mapping.values},
    )
