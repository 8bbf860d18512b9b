"""Benchmark of the public registry with 100,000 entries (not a test).

    .venv/bin/python bench/registry.py                      # a scratch SQLite file
    .venv/bin/python bench/registry.py --database-url postgresql://postgres@127.0.0.1:5432/reg_c
    # options: --entries N (100000), --requests N (100 per case), --seed N (2025),
    #          --reuse (measure an already seeded database: no reset, no seeding),
    #          --only pages|exports|publish, --traced csv|xlsx|all|none (exports repeated under
    #          tracemalloc; default csv), --json FILE (the figures),
    #          --explain (query plans of every case, not only of the slow ones)

The database named by ``--database-url`` is wiped (PostgreSQL: the public schema is
dropped and recreated) and built with ``flask_migrate.upgrade`` in a fresh application, as
the tests do. It is seeded with bulk Core inserts — municipalities across the country,
provider organizations, programs with one submitted version each, admitted reviews, their
conclusions and registry entries pending inclusion — and the registry is then published
once through the real ``publish_registry`` (timed: it is the copy of the working registry
into a snapshot). On PostgreSQL ``VACUUM ANALYZE`` follows (what autovacuum does within a
minute of a publication); SQLite gets no ``ANALYZE`` (the portal never runs one).

Measured, each in a fresh child process started for it (so the seeding's memory and
garbage do not weigh on the figures):

* pages: server time of ``GET /registry`` (unfiltered, a search word, a word found nowhere,
  municipality + direction, age + ОВЗ, a deep page, sorted by title) and of
  ``GET /api/v1/registry`` (one page, with and without filters) through the Flask test
  client, the cases in turn round after round (a burst of other work on the machine falls
  on all alike), median and 95th percentile of ``--requests`` per case after a warm-up;
  the CPU other processes used meanwhile is reported; with the number of
  SQL statements per request (``before_cursor_execute``) and the database's own share (the
  statements of one request re-run alone, median of five); query plans of the slow ones;
* exports: ``GET /registry.csv`` and ``GET /registry.xlsx`` of the whole registry, the
  streamed body consumed chunk by chunk into a file (never joined in memory): wall time,
  the process's resident set before the request, its peak during the request (``VmHWM``
  reset through ``/proc/self/clear_refs`` just before) and the growth; a second child
  repeats the export under ``tracemalloc`` for the Python heap's peak (by default the CSV
  only: the XLSX runs 7-8 times slower under it). The rows are then
  read back: CSV with the ``csv`` module, XLSX with ``openpyxl`` in read-only mode.

Targets: p95 under 100 ms for a page; a full export under 150 MB of peak memory.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

from review_portal import create_app  # noqa: E402
from review_portal.enums import (  # noqa: E402
    AccountStatus,
    ConclusionStatus,
    Decision,
    Direction,
    Level,
    OrganizationType,
    ProgramType,
    RegistryEntryStatus,
    RegistryKind,
    Role,
    StudyForm,
)
from review_portal.extensions import db  # noqa: E402
from review_portal.registry.exports import HEADER_ROW as XLSX_HEADER_ROW  # noqa: E402

CPUS = os.cpu_count() or 1
CHUNK = 5_000
PAGE_TARGET_MS = 100
EXPORT_TARGET_MB = 150

# --- data -------------------------------------------------------------------------------

CITIES = [
    "Смоленск",
    "Вязьма",
    "Рославль",
    "Ярцево",
    "Сафоново",
    "Гагарин",
    "Десногорск",
    "Дорогобуж",
    "Велиж",
    "Демидов",
    "Тверь",
    "Ржев",
    "Торжок",
    "Кимры",
    "Вышний-Волочёк",
    "Конаково",
    "Бежецк",
    "Калуга",
    "Обнинск",
    "Людиново",
    "Козельск",
    "Брянск",
    "Клинцы",
    "Новозыбков",
    "Почеп",
    "Орёл",
    "Мценск",
    "Ливны",
    "Курск",
    "Железногорск",
    "Рыльск",
    "Белгород",
    "Старый-Оскол",
    "Губкин",
    "Валуйки",
    "Воронеж",
    "Борисоглебск",
    "Россошь",
    "Липецк",
    "Елец",
    "Тамбов",
    "Мичуринск",
    "Моршанск",
    "Рязань",
    "Касимов",
    "Скопин",
    "Тула",
    "Новомосковск",
    "Алексин",
    "Ефремов",
    "Владимир",
    "Ковров",
    "Муром",
    "Иваново",
    "Кинешма",
    "Шуя",
    "Кострома",
    "Буй",
    "Ярославль",
    "Рыбинск",
    "Переславль-Залесский",
    "Вологда",
    "Череповец",
    "Сокол",
    "Архангельск",
    "Северодвинск",
    "Котлас",
    "Мурманск",
    "Апатиты",
    "Петрозаводск",
    "Кондопога",
    "Псков",
    "Великие-Луки",
    "Новгород",
    "Старая-Русса",
    "Боровичи",
    "Калининград",
    "Советск",
    "Черняховск",
    "Пенза",
    "Кузнецк",
    "Саранск",
    "Рузаевка",
    "Чебоксары",
    "Новочебоксарск",
    "Йошкар-Ола",
    "Киров",
    "Слободской",
    "Казань",
    "Набережные-Челны",
    "Альметьевск",
    "Уфа",
    "Стерлитамак",
    "Салават",
    "Ижевск",
    "Сарапул",
    "Глазов",
    "Пермь",
    "Березники",
    "Соликамск",
    "Екатеринбург",
    "Нижний-Тагил",
    "Каменск-Уральский",
    "Челябинск",
    "Магнитогорск",
    "Златоуст",
    "Курган",
    "Шадринск",
    "Тюмень",
    "Тобольск",
    "Ишим",
    "Омск",
    "Тара",
    "Новосибирск",
    "Бердск",
    "Искитим",
    "Томск",
    "Северск",
    "Кемерово",
    "Новокузнецк",
    "Прокопьевск",
    "Барнаул",
    "Бийск",
    "Рубцовск",
    "Красноярск",
    "Ачинск",
    "Канск",
    "Абакан",
    "Иркутск",
    "Братск",
    "Ангарск",
    "Чита",
    "Улан-Удэ",
    "Якутск",
    "Хабаровск",
    "Комсомольск-на-Амуре",
    "Владивосток",
    "Уссурийск",
    "Находка",
    "Благовещенск",
    "Южно-Сахалинск",
    "Магадан",
    "Петропавловск-Камчатский",
    "Самара",
    "Тольятти",
    "Сызрань",
    "Саратов",
    "Энгельс",
    "Балаково",
    "Ульяновск",
    "Димитровград",
    "Оренбург",
    "Орск",
    "Бузулук",
    "Волгоград",
    "Волжский",
    "Камышин",
    "Астрахань",
    "Ростов-на-Дону",
    "Таганрог",
    "Шахты",
    "Краснодар",
    "Сочи",
    "Новороссийск",
    "Армавир",
    "Ставрополь",
    "Пятигорск",
    "Кисловодск",
    "Махачкала",
    "Дербент",
    "Нальчик",
    "Владикавказ",
    "Грозный",
    "Майкоп",
    "Элиста",
]
DISTRICTS = [
    "Вяземский",
    "Рославльский",
    "Ярцевский",
    "Сафоновский",
    "Гагаринский",
    "Дорогобужский",
    "Велижский",
    "Демидовский",
    "Духовщинский",
    "Ельнинский",
    "Ершичский",
    "Кардымовский",
    "Краснинский",
    "Монастырщинский",
    "Новодугинский",
    "Починковский",
    "Руднянский",
    "Смоленский",
    "Сычёвский",
    "Тёмкинский",
    "Угранский",
    "Хиславичский",
    "Холм-Жирковский",
    "Шумячский",
    "Глинковский",
    "Ржевский",
    "Торжокский",
    "Кимрский",
    "Конаковский",
    "Бежецкий",
    "Калязинский",
    "Кашинский",
    "Осташковский",
    "Старицкий",
    "Зубцовский",
    "Жуковский",
    "Козельский",
    "Людиновский",
    "Малоярославецкий",
    "Сухиничский",
    "Тарусский",
    "Медынский",
    "Брасовский",
    "Выгоничский",
    "Дятьковский",
    "Жирятинский",
    "Карачевский",
    "Клетнянский",
    "Комаричский",
    "Мглинский",
    "Навлинский",
    "Погарский",
    "Севский",
    "Стародубский",
    "Суражский",
    "Трубчевский",
    "Унечский",
    "Болховский",
    "Верховский",
    "Глазуновский",
    "Дмитровский",
    "Залегощенский",
    "Кромской",
    "Новосильский",
    "Дмитриевский",
    "Льговский",
    "Обоянский",
    "Суджанский",
    "Фатежский",
    "Щигровский",
    "Алексеевский",
    "Бирюченский",
    "Грайворонский",
    "Корочанский",
    "Новооскольский",
    "Прохоровский",
    "Ракитянский",
    "Богучарский",
    "Бобровский",
    "Калачеевский",
    "Лискинский",
    "Павловский",
    "Семилукский",
    "Хохольский",
    "Грязинский",
    "Данковский",
    "Задонский",
    "Лебедянский",
    "Усманский",
    "Чаплыгинский",
    "Кирсановский",
    "Моршанский",
    "Рассказовский",
    "Уваровский",
    "Сасовский",
    "Шацкий",
    "Спасский",
    "Михайловский",
    "Белёвский",
    "Богородицкий",
    "Венёвский",
    "Кимовский",
    "Узловский",
    "Щёкинский",
    "Ясногорский",
]
MUNICIPALITY_KINDS = ("муниципальный район", "муниципальный округ")

#: Topics of programs per direction (some with ё, which the search folds to е).
TOPICS = {
    Direction.TECHNICAL: (
        "Робототехника",
        "Лего-конструирование",
        "3D-моделирование и прототипирование",
        "Программирование на Python",
        "Основы электроники",
        "Авиамоделирование",
        "Судомоделирование",
        "Беспилотные летательные аппараты",
        "Мобильная разработка",
        "Компьютерная графика и анимация",
        "Инженерная графика",
        "Техническое творчество",
        "Промышленный дизайн",
        "Основы информационной безопасности",
        "Юный программист",
        "Картинг",
    ),
    Direction.NATURAL_SCIENCE: (
        "Юный эколог",
        "Занимательная химия",
        "Физика вокруг нас",
        "Мир растений",
        "Юные исследователи природы",
        "Астрономия для школьников",
        "Биология с увлечением",
        "Геоинформационные системы",
        "Зелёная лаборатория",
        "Основы агробизнеса",
        "Экология родного края",
        "Математическое моделирование",
    ),
    Direction.PHYSICAL_SPORTS: (
        "Шахматы",
        "Футбол",
        "Волейбол",
        "Баскетбол",
        "Самбо",
        "Дзюдо",
        "Лыжные гонки",
        "Спортивное ориентирование",
        "Лёгкая атлетика",
        "Плавание",
        "Настольный теннис",
        "Общая физическая подготовка",
        "Ритмическая гимнастика",
        "Каратэ",
    ),
    Direction.ARTS: (
        "Изобразительное искусство",
        "Хореография",
        "Народный танец",
        "Вокальная студия",
        "Весёлые нотки",
        "Театральная студия",
        "Декоративно-прикладное творчество",
        "Гончарное мастерство",
        "Бисероплетение",
        "Фортепиано",
        "Гитара",
        "Фотостудия",
        "Хоровое пение",
        "Мультстудия",
        "Кукольный театр",
        "Рукодельница",
    ),
    Direction.TOURISM_LOCAL_HISTORY: (
        "Юный турист",
        "Краеведение",
        "Школьный музей",
        "Пешеходный туризм",
        "Водный туризм",
        "Юные экскурсоводы",
        "Родословие",
        "Военно-исторический клуб",
        "Туристское многоборье",
    ),
    Direction.SOCIAL_HUMANITARIAN: (
        "Юный журналист",
        "Школа вожатого",
        "Английский язык",
        "Финансовая грамотность",
        "Юные инспекторы движения",
        "Волонтёры",
        "Школа лидера",
        "Подготовка к школе",
        "Медиацентр",
        "Психология общения",
        "Юнармия",
        "Основы предпринимательства",
        "Китайский язык",
        "Дебаты",
    ),
}
DIRECTION_NAMES = {
    Direction.TECHNICAL: "технической",
    Direction.NATURAL_SCIENCE: "естественнонаучной",
    Direction.PHYSICAL_SPORTS: "физкультурно-спортивной",
    Direction.ARTS: "художественной",
    Direction.TOURISM_LOCAL_HISTORY: "туристско-краеведческой",
    Direction.SOCIAL_HUMANITARIAN: "социально-гуманитарной",
}
DIRECTION_SHARE = {
    Direction.TECHNICAL: 25,
    Direction.ARTS: 22,
    Direction.SOCIAL_HUMANITARIAN: 20,
    Direction.PHYSICAL_SPORTS: 15,
    Direction.NATURAL_SCIENCE: 10,
    Direction.TOURISM_LOCAL_HISTORY: 8,
}
SUFFIXES = (
    "",
    "",
    "",
    " для начинающих",
    ". Стартовый уровень",
    ". Углублённый курс",
    ": шаг в будущее",
    ": мир открытий",
    " (модульная программа)",
    " — первые шаги",
    " для детей с ОВЗ",
)
#: Organization kinds: (full name, short name, organization type, weight).
ORG_KINDS = (
    (
        "Муниципальное бюджетное учреждение дополнительного образования «Дом детского творчества»",
        "МБУ ДО «ДДТ»",
        OrganizationType.MUNICIPAL,
        14,
    ),
    (
        "Муниципальное бюджетное учреждение дополнительного образования «Центр детского "
        "творчества»",
        "МБУ ДО «ЦДТ»",
        OrganizationType.MUNICIPAL,
        10,
    ),
    (
        "Муниципальное бюджетное учреждение дополнительного образования «Детско-юношеская "
        "спортивная школа № {n}»",
        "МБУ ДО «ДЮСШ № {n}»",
        OrganizationType.MUNICIPAL,
        10,
    ),
    (
        "Муниципальное бюджетное учреждение дополнительного образования «Детская школа "
        "искусств № {n}»",
        "МБУ ДО «ДШИ № {n}»",
        OrganizationType.MUNICIPAL,
        10,
    ),
    (
        "Муниципальное бюджетное общеобразовательное учреждение «Средняя школа № {n}»",
        "МБОУ «СШ № {n}»",
        OrganizationType.MUNICIPAL,
        30,
    ),
    (
        "Муниципальное бюджетное общеобразовательное учреждение «Гимназия № {n}»",
        "МБОУ «Гимназия № {n}»",
        OrganizationType.MUNICIPAL,
        6,
    ),
    (
        "Муниципальное бюджетное учреждение дополнительного образования «Станция юных техников»",
        "МБУ ДО «СЮТ»",
        OrganizationType.MUNICIPAL,
        3,
    ),
    (
        "Государственное автономное учреждение дополнительного образования «Детский "
        "технопарк «Кванториум»",
        "ГАУ ДО «Кванториум»",
        OrganizationType.STATE,
        2,
    ),
    (
        "Автономная некоммерческая организация дополнительного образования «Умные дети»",
        "АНО ДО «Умные дети»",
        OrganizationType.PRIVATE,
        5,
    ),
    (
        "Общество с ограниченной ответственностью «Робошкола»",
        "ООО «Робошкола»",
        OrganizationType.PRIVATE,
        4,
    ),
    ("Индивидуальный предприниматель {person}", "ИП {short}", None, 6),
)
SURNAMES = [
    "Иванова",
    "Смирнова",
    "Кузнецова",
    "Попова",
    "Васильева",
    "Петрова",
    "Соколова",
    "Михайлова",
    "Новикова",
    "Фёдорова",
    "Морозова",
    "Волкова",
    "Алексеева",
    "Лебедева",
    "Семёнова",
    "Егорова",
    "Павлова",
    "Козлова",
    "Степанова",
    "Николаева",
    "Орлова",
    "Андреева",
    "Макарова",
    "Никитина",
    "Захарова",
    "Зайцева",
    "Соловьёва",
]
GIVEN = [
    "Анна",
    "Мария",
    "Елена",
    "Ольга",
    "Татьяна",
    "Наталья",
    "Ирина",
    "Светлана",
    "Юлия",
    "Екатерина",
]
PATRONYMICS = ["Александровна", "Сергеевна", "Викторовна", "Ивановна", "Петровна", "Николаевна"]


def zipf_weights(n: int, exponent: float) -> list[float]:
    return [1.0 / (i + 1) ** exponent for i in range(n)]


def municipality_names(count: int) -> list[str]:
    names = [f"город {c.replace('-', ' ')}" for c in CITIES]
    names += [f"{d} {kind}" for kind in MUNICIPALITY_KINDS for d in DISTRICTS]
    if len(names) < count:
        raise SystemExit(f"only {len(names)} municipality names")
    return names[:count]


def ages(rng: random.Random, direction: Direction) -> tuple[int, int]:
    low = rng.choice((3, 5, 6, 7, 7, 8, 10, 11, 12, 14))
    if direction == Direction.PHYSICAL_SPORTS:
        low = max(low, 6)
    high = min(18, low + rng.choice((2, 3, 4, 5, 7, 10, 11)))
    return low, high


# --- databases --------------------------------------------------------------------------


def engine_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def reset_database(url: str) -> None:
    """An empty database: the SQLite file removed, PostgreSQL's public schema recreated."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    engine = sa.create_engine(engine_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql("DROP SCHEMA public CASCADE")
        connection.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()


def make_app(url: str, storage: str):
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return create_app("testing", SQLALCHEMY_DATABASE_URI=url, STORAGE_DIR=storage)


def memory_kb() -> dict[str, int]:
    status = Path("/proc/self/status").read_text()
    return {k: int(re.search(rf"{k}:\s+(\d+)", status).group(1)) for k in ("VmRSS", "VmHWM")}


def reset_peak() -> None:
    """Start a new high-water mark of the resident set (Linux ≥ 4.0)."""
    Path("/proc/self/clear_refs").write_text("5")


class SqlLog:
    """The statements an engine runs while ``active`` (text and parameters)."""

    def __init__(self, engine):
        self.active = False
        self.statements: list[tuple[str, object]] = []
        sa.event.listen(engine, "before_cursor_execute", self._before)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        # SQLite's ``BEGIN IMMEDIATE`` (db.configure_sqlite) is not a statement of the page.
        if self.active and not statement.startswith("BEGIN"):
            self.statements.append((statement, parameters))

    def start(self) -> None:
        self.statements = []
        self.active = True

    def stop(self) -> list[tuple[str, object]]:
        self.active = False
        return self.statements


# --- seeding ----------------------------------------------------------------------------


def bulk(model, rows: list[dict]) -> None:
    for start in range(0, len(rows), CHUNK):
        db.session.execute(insert(model), rows[start : start + CHUNK])


def seed(app, entries: int, seed_value: int) -> dict:
    """The region (see the module's docstring); returns timings and sizes."""
    from review_portal.accounts.models import User
    from review_portal.accounts.services import CONSENT_VERSION, hash_password
    from review_portal.conclusions.models import Conclusion
    from review_portal.organizations.models import Municipality, Organization
    from review_portal.programs.models import Program, ProgramVersion
    from review_portal.registry.models import RegistryEntry
    from review_portal.reviews.models import Review
    from review_portal.settings.services import set_setting
    from review_portal.workflow import ReviewState

    rng = random.Random(seed_value)
    n_mun = 300
    n_org = max(50, entries // 10)
    now = datetime(2025, 9, 1, 9, 0, tzinfo=UTC)
    figures = {"municipalities": n_mun, "organizations": n_org, "entries": entries}
    started = time.perf_counter()
    with app.app_context():
        names = municipality_names(n_mun)
        bulk(
            Municipality,
            [
                {"id": i + 1, "name": name, "oktmo": f"66{i + 1:09d}"}
                for i, name in enumerate(names)
            ],
        )
        mun_of_org = rng.choices(range(1, n_mun + 1), zipf_weights(n_mun, 1.0), k=n_org)
        kind_weights = [k[3] for k in ORG_KINDS]
        orgs = []
        counters: dict[tuple[int, int], int] = {}
        for i in range(n_org):
            kind = rng.choices(range(len(ORG_KINDS)), kind_weights)[0]
            full, short, org_type, _ = ORG_KINDS[kind]
            mun = mun_of_org[i]
            number = counters[(mun, kind)] = counters.get((mun, kind), 0) + 1
            place = names[mun - 1]
            if org_type is None:
                surname, given, patronymic = (
                    rng.choice(SURNAMES),
                    rng.choice(GIVEN),
                    rng.choice(PATRONYMICS),
                )
                full = full.format(person=f"{surname} {given} {patronymic}")
                short = short.format(short=f"{surname} {given[0]}. {patronymic[0]}.")
                inn = f"67{i:010d}"
                org_type = OrganizationType.INDIVIDUAL_ENTREPRENEUR
            else:
                full = f"{full.format(n=number)} ({place})"
                short = f"{short.format(n=number)} ({place})"
                if "{n}" not in ORG_KINDS[kind][0] and number > 1:
                    full = full.replace("»", f" № {number}»", 1)
                    short = short.replace("»", f" № {number}»", 1)
                inn = f"67{i:08d}"
            orgs.append(
                {
                    "id": i + 1,
                    "full_name": full,
                    "short_name": short,
                    "inn": inn,
                    "ogrn": f"1{i:012d}",
                    "kind": org_type,
                    "municipality_id": mun,
                    "address": f"{place}, ул. Ленина, д. {rng.randint(1, 120)}",
                    "email": f"org{i + 1}@edu.example.ru",
                    "status": AccountStatus.APPROVED,
                    "approved_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        bulk(Organization, orgs)
        coordinator = User(
            email="bench-coordinator@example.org",
            password_hash=hash_password("bench-password"),
            full_name="Координатор Регионального Модельного Центра",
            status=AccountStatus.APPROVED,
            consent_at=now,
            consent_version=CONSENT_VERSION,
        )
        coordinator.add_role(Role.COORDINATOR)
        provider = User(
            email="bench-provider@example.org",
            password_hash=hash_password("bench-password"),
            full_name="Петрова Анна Сергеевна",
            status=AccountStatus.APPROVED,
            organization_id=1,
            consent_at=now,
            consent_version=CONSENT_VERSION,
        )
        provider.add_role(Role.APPLICANT)
        db.session.add_all([coordinator, provider])
        db.session.flush()
        coordinator_id, provider_id = coordinator.id, provider.id
        set_setting("region_code", "67", coordinator)
        set_setting("region_name", "Смоленская область", coordinator)

        org_weight = [rng.lognormvariate(0.0, 1.0) for _ in range(n_org)]
        org_of = rng.choices(range(1, n_org + 1), org_weight, k=entries)
        directions = list(DIRECTION_SHARE)
        direction_of = rng.choices(directions, list(DIRECTION_SHARE.values()), k=entries)
        programs, versions, reviews, conclusions, registry = [], [], [], [], []
        first_issue = datetime(2024, 9, 2, 7, 0, tzinfo=UTC)
        year_sequence: dict[int, int] = {}
        for i in range(1, entries + 1):
            direction = direction_of[i - 1]
            org = org_of[i - 1]
            topic = rng.choice(TOPICS[direction])
            title = f"«{topic}{rng.choice(SUFFIXES)}»"
            if rng.random() < 0.5:
                title = (
                    "Дополнительная общеобразовательная общеразвивающая программа "
                    f"{DIRECTION_NAMES[direction]} направленности {title}"
                )
            age_min, age_max = ages(rng, direction)
            group_min = rng.randint(5, 10)
            data = {
                "title": title,
                "direction": direction,
                "level": rng.choices(list(Level), (40, 45, 15))[0],
                "program_type": (
                    ProgramType.PRE_PROFESSIONAL
                    if direction == Direction.ARTS and rng.random() < 0.1
                    else ProgramType.GENERAL_DEVELOPMENTAL
                ),
                "age_min": age_min,
                "age_max": age_max,
                "total_hours": rng.choice((16, 36, 36, 72, 72, 72, 108, 144, 144, 216)),
                "duration_months": rng.choice((3, 4, 6, 9, 9, 9)),
                "study_form": rng.choices(list(StudyForm), (80, 12, 8))[0],
                "uses_distance_learning": rng.random() < 0.15,
                "network_form": rng.random() < 0.05,
                "group_min": group_min,
                "group_max": group_min + rng.randint(5, 15),
                "adapted_for_disabilities": rng.random() < 0.12,
                "annotation": f"Программа «{topic}» знакомит детей с основами предмета.",
                "requested_registry_kind": RegistryKind.CERTIFIED,
                "municipality_id": mun_of_org[org - 1],
            }
            created = now - timedelta(days=400 - (i * 365) // entries)
            programs.append(
                {
                    "id": i,
                    **data,
                    "organization_id": org,
                    "created_by_id": provider_id,
                    "created_at": created,
                    "updated_at": created,
                }
            )
            versions.append(
                {
                    "id": i,
                    **data,
                    "program_id": i,
                    "number": 1,
                    "organization_id": org,
                    "created_at": created,
                    "created_by_id": provider_id,
                }
            )
            issued = first_issue + timedelta(seconds=(i * 360 * 86400) // entries)
            percent = Decimal(rng.randint(7000, 10000)) / 100
            reviews.append(
                {
                    "id": i,
                    "program_id": i,
                    "round": 1,
                    "version_id": i,
                    "state": ReviewState.ADMITTED,
                    "state_changed_at": issued,
                    "created_at": created,
                    "rubric_id": "nok-doop",
                    "rubric_version": 1,
                    "divergent": False,
                    "extra_experts": 0,
                    "computed_decision": Decision.ADMITTED,
                    "decision": Decision.ADMITTED,
                    "decided_at": issued,
                    "decided_by_id": coordinator_id,
                }
            )
            year = issued.year
            sequence = year_sequence[year] = year_sequence.get(year, 0) + 1
            digest = hashlib.sha256(f"conclusion-{i}".encode()).hexdigest()
            conclusions.append(
                {
                    "id": i,
                    "review_id": i,
                    "number": f"67-{year}-{sequence:05d}",
                    "year": year,
                    "sequence": sequence,
                    "issued_at": issued,
                    "issued_by_id": coordinator_id,
                    "decision": Decision.ADMITTED,
                    "total": (percent * 40 / 100).quantize(Decimal("0.01")),
                    "max_total": Decimal(40),
                    "percent": percent,
                    "storage_key": f"conclusions/{digest[:2]}/{digest}.pdf",
                    "sha256": digest,
                    "content_sha256": hashlib.sha256(f"content-{i}".encode()).hexdigest(),
                    "size": rng.randint(60_000, 140_000),
                    "status": ConclusionStatus.VALID,
                }
            )
            registry.append(
                {
                    "id": i,
                    "kind": RegistryKind.CERTIFIED,
                    "program_id": i,
                    "conclusion_id": i,
                    "status": RegistryEntryStatus.PENDING_INCLUSION,
                    "created_at": issued,
                }
            )
        figures["generate_s"] = time.perf_counter() - started
        bulk(Program, programs)
        bulk(ProgramVersion, versions)
        bulk(Review, reviews)
        db.session.execute(
            sa.update(Program)
            .values(current_review_id=Program.id)
            .execution_options(synchronize_session=False)
        )
        bulk(Conclusion, conclusions)
        bulk(RegistryEntry, registry)
        if db.engine.dialect.name == "postgresql":
            for table in (
                "municipalities",
                "organizations",
                "programs",
                "program_versions",
                "reviews",
                "conclusions",
                "registry_entries",
            ):
                db.session.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
        db.session.commit()
        figures["seed_s"] = time.perf_counter() - started
        figures["coordinator_id"] = coordinator_id
        db.session.remove()
    return figures


def publish(app, coordinator_id: int) -> dict:
    """``publish_registry`` of the certified registry and the commit, timed, with the growth
    of the resident set and the number of statements."""
    from review_portal.accounts.models import User
    from review_portal.registry.services import publish_registry

    with app.app_context():
        log = SqlLog(db.engine)
        actor = db.session.get(User, coordinator_id)
        before = memory_kb()["VmRSS"]
        reset_peak()
        log.start()
        started, cpu = time.perf_counter(), time.process_time()
        snapshot = publish_registry(RegistryKind.CERTIFIED, actor)
        db.session.commit()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        statements = log.stop()
        peak = memory_kb()["VmHWM"]
        result = {
            "publish_s": seconds,
            "publish_cpu_s": cpu,
            "publish_load": load(),
            "publish_statements": len(statements),
            "publish_rss_before_mb": before / 1024,
            "publish_peak_mb": peak / 1024,
            "snapshot_id": snapshot.id,
            "snapshot_entries": snapshot.entry_count,
        }
        db.session.remove()
    return result


def vacuum(url: str) -> float:
    started = time.perf_counter()
    engine = sa.create_engine(engine_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()
    return time.perf_counter() - started


# --- pages ------------------------------------------------------------------------------


def page_cases(largest_municipality: int) -> list[tuple[str, str]]:
    """(label, URL) of every page and API request measured."""

    def url(path, **args):
        return f"{path}?{urlencode(args)}" if args else path

    return [
        ("/registry", url("/registry")),
        ("/registry search word", url("/registry", q="робототехника")),
        ("/registry search, two words", url("/registry", q="весёлые нотки")),
        ("/registry search, no match", url("/registry", q="несуществующее")),
        (
            "/registry municipality+direction",
            url("/registry", municipality=largest_municipality, direction="technical"),
        ),
        ("/registry age+ОВЗ", url("/registry", age=7, ovz=1)),
        ("/registry ?page=1500", url("/registry", page=1500)),
        ("/registry sort=title", url("/registry", sort="title")),
        ("/registry sort=title page=1000", url("/registry", sort="title", page=1000)),
        ("/api/v1/registry", url("/api/v1/registry")),
        (
            "/api/v1/registry filters",
            url("/api/v1/registry", direction="technical", level="basic", age=10),
        ),
        ("/api/v1/registry search word", url("/api/v1/registry", q="робототехника")),
        ("/api/v1/registry ?page=1500", url("/api/v1/registry", page=1500)),
        ("/api/v1/registry per_page=500", url("/api/v1/registry", per_page=500)),
    ]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def explain(statement: str, parameters, dialect: str) -> str:
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if dialect == "postgresql" else "EXPLAIN QUERY PLAN "
    rows = db.session.connection().exec_driver_sql(prefix + statement, parameters).all()
    if dialect == "postgresql":
        return "\n".join(r[0] for r in rows)
    return "\n".join(f"{r[0]}|{r[1]}| {r[3]}" for r in rows)


def db_time(statement: str, parameters) -> float:
    """Median of five standalone runs of ``statement`` (every row fetched), in seconds."""
    times = []
    for _ in range(5):
        started = time.perf_counter()
        db.session.connection().exec_driver_sql(statement, parameters).all()
        times.append(time.perf_counter() - started)
        db.session.rollback()
    return statistics.median(times)


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


class Interference:
    """How much of the machine other processes used meanwhile: busy CPU time of the whole
    machine (``/proc/stat``) less this process's and its database server processes'."""

    def __init__(self):
        self.pids: set[int] = set()
        self.ticks = os.sysconf("SC_CLK_TCK")

    def watch(self, engine) -> None:
        """Count the PostgreSQL backends of ``engine``'s connections as this benchmark's."""

        @sa.event.listens_for(engine, "connect")
        def _backend(dbapi_connection, _record):
            if engine.dialect.name == "postgresql":
                cursor = dbapi_connection.cursor()
                cursor.execute("SELECT pg_backend_pid()")
                self.pids.add(cursor.fetchone()[0])
                cursor.close()

    @staticmethod
    def _machine() -> int:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return sum(fields) - fields[3] - fields[4]  # all but idle and iowait

    def _own(self) -> int:
        total = 0
        for pid in {os.getpid(), *self.pids}:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total

    def start(self) -> None:
        self._started = (time.perf_counter(), self._machine(), self._own())

    def share(self) -> float:
        """Others' share of all the cores since :meth:`start` (0.25: half of one of two)."""
        wall, machine, own = self._started
        elapsed = time.perf_counter() - wall
        others = (self._machine() - machine) - (self._own() - own)
        return max(0.0, others / self.ticks / elapsed / CPUS)


def child_pages(args) -> dict:
    """Every case in turn, round after round (so that a burst of other work on the machine
    falls on all cases alike rather than on one), then the statements of each case's last
    request re-run alone and, for the slow ones, explained."""
    app = make_app(args.database_url, args.storage)
    load_before = load()
    with app.app_context():
        from review_portal.registry.models import RegistrySnapshotItem as I  # noqa: N817

        dialect = db.engine.dialect.name
        largest = db.session.execute(
            select(I.municipality_id)
            .group_by(I.municipality_id)
            .order_by(sa.func.count().desc())
            .limit(1)
        ).scalar_one()
        db.session.remove()
        log = SqlLog(db.engine)
        others = Interference()
        others.watch(db.engine)
        db.engine.dispose()  # new connections, seen by ``watch``
    client = app.test_client()
    cases = page_cases(largest)
    for _ in range(args.warmup):
        for _label, url in cases:
            client.get(url).get_data()
    times: dict[str, list[float]] = {url: [] for _, url in cases}
    counts: dict[str, set[int]] = {url: set() for _, url in cases}
    last: dict[str, tuple] = {}
    others.start()
    for _ in range(args.requests):
        for _label, url in cases:
            log.start()
            started = time.perf_counter()
            response = client.get(url)
            body = response.get_data()
            times[url].append(time.perf_counter() - started)
            statements = log.stop()
            counts[url].add(len(statements))
            last[url] = (response.status_code, len(body), statements)
    share = others.share()
    results = []
    for label, url in cases:
        status, size, statements = last[url]
        p95 = percentile(times[url], 0.95)
        case = {
            "label": label,
            "url": url,
            "status": status,
            "bytes": size,
            "n": len(times[url]),
            "median_ms": statistics.median(times[url]) * 1000,
            "p95_ms": p95 * 1000,
            "max_ms": max(times[url]) * 1000,
            "statements": sorted(counts[url]),
        }
        selects = [(s, p) for s, p in statements if s.lstrip().upper().startswith("SELECT")]
        with app.app_context():
            case["db_ms"] = [db_time(s, p) * 1000 for s, p in selects]
            if args.explain or p95 * 1000 >= PAGE_TARGET_MS:
                case["plans"] = [
                    {"sql": s, "params": repr(p), "plan": explain(s, p, dialect)}
                    for s, p in selects
                ]
                db.session.rollback()
            db.session.remove()
        results.append(case)
        print(
            f"  {label:36} {status} median {case['median_ms']:6.1f} ms  p95 {p95 * 1000:6.1f} ms",
            file=sys.stderr,
            flush=True,
        )
    return {"pages": results, "load": f"{load_before} → {load()}", "others": share}


# --- exports ----------------------------------------------------------------------------


def child_export(args) -> dict:
    """One full export, streamed into a file chunk by chunk; memory and time of the request."""
    import tracemalloc

    app = make_app(args.database_url, args.storage)
    others = Interference()
    with app.app_context():
        others.watch(db.engine)
    client = app.test_client()
    url = f"/registry.{args.child_export}"
    out = Path(args.out)
    import gc

    gc.collect()
    baseline = memory_kb()["VmRSS"]
    reset_peak()
    if args.tracemalloc:
        tracemalloc.start()
    others.start()
    started = time.perf_counter()
    response = client.get(url, buffered=False)
    first = None
    chunks = size = biggest = 0
    with out.open("wb") as sink:
        for chunk in response.iter_encoded():
            if first is None:
                first = time.perf_counter() - started
            chunks += 1
            size += len(chunk)
            biggest = max(biggest, len(chunk))
            sink.write(chunk)
    response.close()
    seconds = time.perf_counter() - started
    share = others.share()
    traced = tracemalloc.get_traced_memory()[1] if args.tracemalloc else None
    if args.tracemalloc:
        tracemalloc.stop()
    peak = memory_kb()["VmHWM"]
    return {
        "load": load(),
        "others": share,
        "format": args.child_export,
        "status": response.status_code,
        "content_type": response.headers.get("Content-Type"),
        "streamed": not response.is_sequence,
        "seconds": seconds,
        "first_chunk_s": first,
        "bytes": size,
        "chunks": chunks,
        "biggest_chunk": biggest,
        "baseline_mb": baseline / 1024,
        "peak_mb": peak / 1024,
        "growth_mb": (peak - baseline) / 1024,
        "tracemalloc_mb": traced / 1024 / 1024 if traced is not None else None,
    }


def count_rows(path: Path, fmt: str) -> tuple[int, list]:
    """Rows of the exported file (header included) and its first data row."""
    if fmt == "csv":
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, delimiter=";")
            header = next(reader)
            first = next(reader, None)
            return 2 + sum(1 for _ in reader) if first else 1, [header, first]
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True)
    sheet = workbook.worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    header = next(rows)
    first = next(rows, None)
    count = 2 + sum(1 for _ in rows) if first else 1
    workbook.close()
    return count, [list(header), list(first or [])]


def run_child(args, *extra: str) -> dict:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--database-url",
        args.database_url,
        "--storage",
        args.storage,
        "--requests",
        str(args.requests),
        "--warmup",
        str(args.warmup),
        *extra,
    ]
    if args.explain:
        command.append("--explain")
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if done.returncode:
        raise SystemExit(f"child {extra} failed with code {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- report -----------------------------------------------------------------------------


def describe_url(url: str) -> str:
    return re.sub(
        r"sqlite:///.*", "SQLite (temp file)", re.sub(r"//([^:@/]+):[^@]*@", r"//\1@", url)
    )


def report(name: str, seeding: dict, pages: list[dict], exports: list[dict]) -> str:
    lines = [f"== {name}: {seeding.get('entries', 0):,} registry entries"]
    if "seed_s" in seeding:
        lines.append(
            f"seeding (bulk inserts)        {seeding['seed_s']:8.1f} s  "
            f"({seeding['municipalities']} municipalities, {seeding['organizations']:,} "
            "organizations; programs, versions, reviews, conclusions, entries)"
        )
    if "publish_s" in seeding:
        lines.append(
            f"publish_registry + commit     {seeding['publish_s']:8.1f} s  "
            f"({seeding['publish_cpu_s']:.1f} s CPU in this process; "
            f"{seeding['publish_statements']:,} statements; resident set "
            f"{seeding['publish_rss_before_mb']:.0f} → peak {seeding['publish_peak_mb']:.0f} MB; "
            f"load {seeding['publish_load']})"
        )
    if "vacuum_s" in seeding:
        lines.append(f"VACUUM ANALYZE                {seeding['vacuum_s']:8.1f} s")
    if pages:
        lines.append("")
        lines.append(
            f"{'request':38}{'HTTP':>5}{'KB':>7}{'median':>9}{'p95':>9}{'max':>9}"
            f"{'SQL':>5}{'DB ms':>8}  target"
        )
        for c in pages:
            ok = "ok" if c["p95_ms"] < PAGE_TARGET_MS and c["status"] == 200 else "MISSED"
            statements = "/".join(str(s) for s in c["statements"])
            lines.append(
                f"{c['label']:38}{c['status']:>5}{c['bytes'] / 1024:7.0f}"
                f"{c['median_ms']:8.1f} {c['p95_ms']:8.1f} {c['max_ms']:8.1f}"
                f"{statements:>5}{sum(c['db_ms']):8.1f}  {ok}"
            )
        lines.append(
            f"(ms; {pages[0]['n']} requests per case after a warm-up; SQL = "
            "statements per request; DB ms = those statements re-run alone, every row fetched; "
            f"cases in turn, round after round; meanwhile other processes than this one and its "
            f"database server processes used {seeding.get('pages_others', 0):.0%} of the "
            f"{CPUS} cores; load average {seeding.get('pages_load', '?')})"
        )
    if exports:
        lines.append("")
        lines.append(
            f"{'export':14}{'HTTP':>5}{'time':>9}{'1st chunk':>10}{'MB':>8}{'rows':>9}"
            f"{'RSS before':>11}{'peak':>8}{'growth':>8}{'tracemalloc':>12}{'others':>8}  target"
        )
    for e in exports:
        ok = "ok" if e["peak_mb"] < EXPORT_TARGET_MB and e["rows_ok"] else "MISSED"
        traced = f"{e['tracemalloc_mb']:.0f} MB" if e.get("tracemalloc_mb") is not None else "—"
        lines.append(
            f"/registry.{e['format']:5}{e['status']:>5}{e['seconds']:8.1f}s"
            f"{e['first_chunk_s']:9.2f}s{e['bytes'] / 1024 / 1024:8.1f}{e['rows']:>9,}"
            f"{e['baseline_mb']:10.0f} {e['peak_mb']:7.0f} {e['growth_mb']:7.0f}"
            f"{traced:>12}{e['others']:8.0%}  {ok}"
        )
    if exports:
        lines.append(
            "(MB of resident set: before the request, peak during it, growth; tracemalloc: "
            "peak of the Python heap in a second run; rows include the header; load average "
            + ", ".join(e["load"] for e in exports)
            + ")"
        )
    for c in pages:
        for plan in c.get("plans", ()):
            lines.append("")
            lines.append(f"-- plan, {c['label']} ({c['url']}):")
            lines.append(plan["sql"].strip())
            lines.append(f"-- parameters: {plan['params']}")
            lines.append(plan["plan"])
    return "\n".join(lines)


def routes_ready(app) -> dict[str, bool]:
    rules = {r.rule for r in app.url_map.iter_rules()}
    return {
        p: p in rules for p in ("/registry", "/registry.csv", "/registry.xlsx", "/api/v1/registry")
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: a scratch SQLite file")
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=100, help="timed requests per case")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--reuse", action="store_true", help="no reset, no seeding")
    parser.add_argument("--explain", action="store_true", help="plans of every case")
    parser.add_argument(
        "--only",
        choices=("pages", "exports", "publish"),
        help="measure one part (publish: seed and publish only)",
    )
    parser.add_argument(
        "--traced",
        choices=("csv", "xlsx", "all", "none"),
        default="csv",
        help="exports repeated under tracemalloc (XLSX: 7-8 times slower)",
    )
    parser.add_argument("--json", help="also write the figures to this file")
    # Internal: the child processes.
    parser.add_argument("--storage", help=argparse.SUPPRESS)
    parser.add_argument("--child-pages", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-export", choices=("csv", "xlsx"), help=argparse.SUPPRESS)
    parser.add_argument("--tracemalloc", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child_pages:
        print(json.dumps(child_pages(args)))
        return
    if args.child_export:
        print(json.dumps(child_export(args)))
        return

    with tempfile.TemporaryDirectory(prefix="bench-registry-") as tmp:
        if not args.database_url:
            if args.reuse:
                raise SystemExit("--reuse needs --database-url")
            args.database_url = f"sqlite:///{Path(tmp) / 'registry.sqlite'}"
        args.storage = str(Path(tmp) / "storage")
        run(args, Path(tmp))


def run(args, tmp: Path) -> None:
    url = args.database_url
    name = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(f"{CPUS} CPU cores; Python {sys.version.split()[0]}; {describe_url(url)}", flush=True)
    seeding: dict = {"entries": args.entries}
    if not args.reuse:
        reset_database(url)
        app = make_app(url, args.storage)
        with app.app_context():
            upgrade()
        seeding.update(seed(app, args.entries, args.seed))
        print(f"[{name}] seeded in {seeding['seed_s']:.1f} s", flush=True)
        seeding.update(publish(app, seeding["coordinator_id"]))
        print(f"[{name}] published in {seeding['publish_s']:.1f} s", flush=True)
        with app.app_context():
            db.engine.dispose()
        if name == "PostgreSQL":
            seeding["vacuum_s"] = vacuum(url)
        del app
    else:
        app = make_app(url, args.storage)
        with app.app_context():
            from review_portal.registry.models import RegistrySnapshot

            seeding["entries"] = db.session.execute(
                select(RegistrySnapshot.entry_count).order_by(RegistrySnapshot.id.desc()).limit(1)
            ).scalar_one()
            db.engine.dispose()
    ready = routes_ready(make_app(url, args.storage))
    missing = [p for p, ok in ready.items() if not ok]
    if missing:
        print(f"[{name}] routes missing: {', '.join(missing)}", flush=True)
    pages: list[dict] = []
    exports: list[dict] = []
    if args.only in (None, "pages") and ready["/registry"]:
        print(f"[{name}] pages ...", flush=True)
        measured = run_child(args, "--child-pages")
        pages, seeding["pages_load"] = measured["pages"], measured["load"]
        seeding["pages_others"] = measured["others"]
        if not ready["/api/v1/registry"]:
            pages = [c for c in pages if not c["url"].startswith("/api/")]
    if args.only in (None, "exports"):
        for fmt in ("csv", "xlsx"):
            if not ready[f"/registry.{fmt}"]:
                continue
            print(f"[{name}] /registry.{fmt} ...", flush=True)
            out = tmp / f"registry.{fmt}"
            figures = run_child(args, "--child-export", fmt, "--out", str(out))
            figures["rows"], figures["sample"] = count_rows(out, fmt)
            # The CSV's header row; the XLSX's title block above its header (the sheet's
            # title and the region) and the header itself.
            above = 1 if fmt == "csv" else XLSX_HEADER_ROW
            figures["rows_ok"] = figures["rows"] == seeding["entries"] + above
            out.unlink()
            if args.traced in (fmt, "all"):
                traced = run_child(args, "--child-export", fmt, "--out", str(out), "--tracemalloc")
                out.unlink()
                figures["tracemalloc_mb"] = traced["tracemalloc_mb"]
                figures["tracemalloc_seconds"] = traced["seconds"]
            exports.append(figures)
    print()
    print(report(name, seeding, pages, exports))
    for e in exports:
        print(f"\n/registry.{e['format']} header and first row: {e['sample']}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"database": name, "seeding": seeding, "pages": pages, "exports": exports},
                ensure_ascii=False,
                indent=1,
                default=str,
            )
        )


if __name__ == "__main__":
    main()
