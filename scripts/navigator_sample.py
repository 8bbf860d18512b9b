"""Write ``docs/samples/navigator_programs.xlsx``: programs as a regional Navigator exports
them — its own column titles and words — for the import's mapping page (and its tests).

Run from the repository root: ``.venv/bin/python scripts/navigator_sample.py``. The two
providers' ИНН are fixed (valid check digits); the municipalities are the demo's.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from openpyxl import Workbook

OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "samples" / "navigator_programs.xlsx"

#: Providers' ИНН used by the sample (10 digits, valid check digit).
FIRST_INN = "6731000014"
SECOND_INN = "6722000025"

TITLES = [
    "№ п/п",
    "Название",
    "ИНН поставщика",
    "Направление",
    "Уровень программы",
    "Минимальный возраст",
    "Максимальный возраст",
    "Часов в год",
    "Продолжительность, мес.",
    "Форма обучения",
    "Муниципалитет",
    "Наполняемость от",
    "Наполняемость до",
    "ОВЗ",
    "Описание",
    "Дата обновления",
]


def rows() -> list[list]:
    """The data rows (as the cells' values: numbers are numbers, dates are dates)."""
    updated = datetime(2026, 11, 30)
    return [
        [1, "Робототехника: первые шаги", FIRST_INN, "Техническое",
         "Стартовый (ознакомительный)", 7, 11, 72, 9, "Очно", "Город Смоленск", 8, 15,
         "нет", "Конструирование и программирование роботов.", updated],
        [2, "Юные исследователи природы", FIRST_INN, "Научно-техническое", "Базовый",
         10, 14, 144, 9, "Очно-заочно", "Город Смоленск", 10, 20, "Нарушения слуха",
         "Наблюдения и опыты в природе.", updated],
        [3, "Театральная студия «Маска»", SECOND_INN, "Художественное", "Базовый",
         8, 16, 108, 12, "Очно", "Вяземский район", 12, 25, "нет",
         "Сценическая речь и актёрское мастерство.", updated],
    ]  # fmt: skip


def write(path: Path = OUTPUT, data: list[list] | None = None) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Программы"
    sheet.append(TITLES)
    for row in rows() if data is None else data:
        sheet.append(row)
    # Fixed metadata: the same rows give the same bytes.
    workbook.properties.creator = "Навигатор"
    workbook.properties.created = workbook.properties.modified = datetime(2026, 12, 1)
    workbook.save(path)
    return path


if __name__ == "__main__":
    print(write(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT))
