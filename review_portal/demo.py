"""The demo region (``flask --app review_portal.wsgi seed-demo``): a Smolensk-like region
with its real municipalities, provider organizations of every type, experts of every
direction, staff accounts, pending registrations and programs in every state reachable so
far.

Everything is created through the services (so the audit log tells the same story) and
looked up by its natural key first, so seeding twice creates nothing the second time. The
data are fixed and the generated numbers (ИНН, ОГРН) come from a seeded generator, so every
run builds the same region. Nothing here commits: the CLI does.
"""

from __future__ import annotations

import functools
import io
import random
from dataclasses import dataclass, field

from markupsafe import escape
from sqlalchemy import select
from werkzeug.datastructures import FileStorage

from review_portal.accounts.models import User
from review_portal.accounts.services import (
    NewUser,
    create_approved_user,
    find_user_by_email,
    published_password,
    register_expert,
    register_provider,
)
from review_portal.assignment.services import accept_assignment, run_assignment
from review_portal.audit.services import record_event
from review_portal.db import utcnow
from review_portal.enums import (
    AccountStatus,
    Direction,
    DocumentKind,
    Level,
    OrganizationType,
    ProgramType,
    Role,
    StudyForm,
)
from review_portal.experts.models import ExpertProfile
from review_portal.extensions import db
from review_portal.organizations.models import Municipality, Organization
from review_portal.organizations.queries import inn_holder
from review_portal.organizations.validators import with_inn_check_digits
from review_portal.programs.documents import add_document
from review_portal.programs.models import Program
from review_portal.programs.services import (
    accept_submission,
    create_program,
    return_submission,
    submit_program,
    update_program,
    withdraw_program,
)
from review_portal.settings.services import get_setting, set_setting

#: One password for every demo account (10+ characters, letters and digits).
DEMO_PASSWORD = "Demo-2026-pass"
DEMO_DOMAIN = "demo.rmc67.ru"
#: Seed of the generator of registration numbers: same seed, same region.
SEED = 672026

SETTINGS = {
    "region_code": "67",
    "region_name": "Смоленская область",
    "center_name": (
        "Региональный модельный центр дополнительного образования детей Смоленской области"
    ),
    "head_name": "Семёнова Людмила Александровна",
    "head_position": "Руководитель регионального модельного центра",
}

#: The 27 municipal formations of the district level: two cities of regional significance
#: and the 25 districts, named as the administrative-territorial units of the region's law
#: (several districts have since become municipal okrugs within the same borders).
MUNICIPALITIES = (
    "город Смоленск",
    "город Десногорск",
    "Велижский район",
    "Вяземский район",
    "Гагаринский район",
    "Глинковский район",
    "Демидовский район",
    "Дорогобужский район",
    "Духовщинский район",
    "Ельнинский район",
    "Ершичский район",
    "Кардымовский район",
    "Краснинский район",
    "Монастырщинский район",
    "Новодугинский район",
    "Починковский район",
    "Рославльский район",
    "Руднянский район",
    "Сафоновский район",
    "Смоленский район",
    "Сычёвский район",
    "Темкинский район",
    "Угранский район",
    "Хиславичский район",
    "Холм-Жирковский район",
    "Шумячский район",
    "Ярцевский район",
)

SMOLENSK = "город Смоленск"
DESNOGORSK = "город Десногорск"
VYAZMA = "Вяземский район"
ROSLAVL = "Рославльский район"
SAFONOVO = "Сафоновский район"
YARTSEVO = "Ярцевский район"
GAGARIN = "Гагаринский район"

S = OrganizationType.STATE
M = OrganizationType.MUNICIPAL
P = OrganizationType.PRIVATE
IE = OrganizationType.INDIVIDUAL_ENTREPRENEUR

T = Direction.TECHNICAL
N = Direction.NATURAL_SCIENCE
SP = Direction.PHYSICAL_SPORTS
A = Direction.ARTS
L = Direction.TOURISM_LOCAL_HISTORY
H = Direction.SOCIAL_HUMANITARIAN


@dataclass(frozen=True)
class OrgSpec:
    kind: OrganizationType
    full_name: str
    short_name: str
    municipality: str
    address: str
    #: The organization's applicant user (``provider<N>@...``).
    contact: str


#: Provider organizations; the N-th has the applicant ``provider<N>@demo.rmc67.ru``.
ORGANIZATIONS = (
    OrgSpec(
        S,
        "Смоленское областное государственное бюджетное учреждение дополнительного "
        "образования «Центр детского технического творчества»",
        "СОГБУ ДО «Центр детского технического творчества»",
        SMOLENSK,
        "г. Смоленск, ул. Кирова, д. 21",
        "Волков Сергей Николаевич",
    ),
    OrgSpec(
        M,
        "Муниципальное бюджетное учреждение дополнительного образования «Дом детского "
        "творчества» города Смоленска",
        "МБУ ДО «ДДТ» г. Смоленска",
        SMOLENSK,
        "г. Смоленск, ул. Ленина, д. 14",
        "Кравцова Ольга Викторовна",
    ),
    OrgSpec(
        P,
        "Автономная некоммерческая организация дополнительного образования «Школа "
        "программирования и робототехники «Кодограф»",
        "АНО ДО «Кодограф»",
        SMOLENSK,
        "г. Смоленск, ул. Октябрьской Революции, д. 9",
        "Тарасов Илья Владимирович",
    ),
    OrgSpec(
        IE,
        "Индивидуальный предприниматель Морозов Дмитрий Игоревич",
        "ИП Морозов Д. И.",
        SMOLENSK,
        "г. Смоленск, ул. Николаева, д. 3",
        "Морозов Дмитрий Игоревич",
    ),
    OrgSpec(
        M,
        "Муниципальное бюджетное учреждение дополнительного образования «Дом детского "
        "творчества» г. Вязьмы Смоленской области",
        "МБУ ДО «ДДТ» г. Вязьмы",
        VYAZMA,
        "Смоленская обл., г. Вязьма, ул. Ленина, д. 32",
        "Журавлёва Наталья Петровна",
    ),
    OrgSpec(
        S,
        "Смоленское областное государственное бюджетное учреждение дополнительного "
        "образования «Центр детско-юношеского туризма и краеведения»",
        "СОГБУ ДО «Центр туризма и краеведения»",
        SMOLENSK,
        "г. Смоленск, ул. Большая Советская, д. 27",
        "Лысенко Андрей Михайлович",
    ),
    OrgSpec(
        P,
        "Общество с ограниченной ответственностью «Детский спортивный клуб «Олимп»",
        "ООО «ДСК «Олимп»",
        VYAZMA,
        "Смоленская обл., г. Вязьма, ул. Кронштадтская, д. 5",
        "Новиков Артур Евгеньевич",
    ),
    OrgSpec(
        M,
        "Муниципальное бюджетное учреждение дополнительного образования «Станция юных "
        "натуралистов» г. Рославля",
        "МБУ ДО «СЮН» г. Рославля",
        ROSLAVL,
        "Смоленская обл., г. Рославль, ул. Пролетарская, д. 44",
        "Ефимова Галина Сергеевна",
    ),
    OrgSpec(
        M,
        "Муниципальное бюджетное учреждение дополнительного образования «Дом детского "
        "творчества» г. Сафоново",
        "МБУ ДО «ДДТ» г. Сафоново",
        SAFONOVO,
        "Смоленская обл., г. Сафоново, ул. Советская, д. 18",
        "Исаева Татьяна Александровна",
    ),
    OrgSpec(
        M,
        "Муниципальное бюджетное общеобразовательное учреждение «Средняя школа № 5» "
        "г. Ярцево Смоленской области",
        "МБОУ «СШ № 5» г. Ярцево",
        YARTSEVO,
        "Смоленская обл., г. Ярцево, ул. Гагарина, д. 11",
        "Соболев Виктор Андреевич",
    ),
    OrgSpec(
        M,
        "Муниципальное бюджетное учреждение дополнительного образования «Центр детского "
        "творчества» муниципального образования «город Десногорск» Смоленской области",
        "МБУ ДО «ЦДТ» г. Десногорска",
        DESNOGORSK,
        "Смоленская обл., г. Десногорск, 2 микрорайон, д. 6",
        "Фомина Елена Игоревна",
    ),
    OrgSpec(
        M,
        "Муниципальное бюджетное учреждение дополнительного образования «Детская школа "
        "искусств» г. Гагарина",
        "МБУ ДО «ДШИ» г. Гагарина",
        GAGARIN,
        "Смоленская обл., г. Гагарин, ул. Советская, д. 40",
        "Мельникова Алла Владимировна",
    ),
    OrgSpec(
        S,
        "Смоленское областное государственное бюджетное учреждение дополнительного "
        "образования «Детско-юношеский центр «Смена»",
        "СОГБУ ДО «ДЮЦ «Смена»",
        VYAZMA,
        "Смоленская обл., г. Вязьма, ул. Московская, д. 12",
        "Беляев Олег Викторович",
    ),
    OrgSpec(
        P,
        "Частное учреждение дополнительного образования «Лингвистический центр «Диалог»",
        "ЧУ ДО «Лингвистический центр «Диалог»",
        SMOLENSK,
        "г. Смоленск, пр-т Гагарина, д. 8",
        "Сазонова Вероника Олеговна",
    ),
    OrgSpec(
        M,
        "Муниципальное бюджетное учреждение дополнительного образования «Центр "
        "дополнительного образования» Починковского района Смоленской области",
        "МБУ ДО «ЦДО» Починковского района",
        "Починковский район",
        "Смоленская обл., г. Починок, ул. Советская, д. 5",
        "Карпова Светлана Юрьевна",
    ),
    OrgSpec(
        IE,
        "Индивидуальный предприниматель Белова Екатерина Андреевна",
        "ИП Белова Е. А.",
        DESNOGORSK,
        "Смоленская обл., г. Десногорск, 3 микрорайон, д. 2",
        "Белова Екатерина Андреевна",
    ),
    OrgSpec(
        S,
        "Смоленское областное государственное бюджетное профессиональное "
        "образовательное учреждение «Рославльский колледж технологий и сервиса»",
        "СОГБПОУ «Рославльский колледж технологий и сервиса»",
        ROSLAVL,
        "Смоленская обл., г. Рославль, ул. Ленина, д. 20",
        "Голубев Михаил Степанович",
    ),
    OrgSpec(
        P,
        "Общество с ограниченной ответственностью «Студия танца «Грация»",
        "ООО «Студия танца «Грация»",
        YARTSEVO,
        "Смоленская обл., г. Ярцево, ул. Победы, д. 7",
        "Щербакова Анжелика Романовна",
    ),
    OrgSpec(
        IE,
        "Индивидуальный предприниматель Журавлёв Павел Николаевич",
        "ИП Журавлёв П. Н.",
        "Смоленский район",
        "Смоленская обл., Смоленский р-н, д. Нагать, ул. Лесная, д. 4",
        "Журавлёв Павел Николаевич",
    ),
    OrgSpec(
        IE,
        "Индивидуальный предприниматель Сергеева Анна Викторовна",
        "ИП Сергеева А. В.",
        "Дорогобужский район",
        "Смоленская обл., г. Дорогобуж, ул. Карла Маркса, д. 15",
        "Сергеева Анна Викторовна",
    ),
)


@dataclass(frozen=True)
class ExpertSpec:
    full_name: str
    municipality: str
    #: A provider's number (1-based, as in ``provider<N>``) or the name of another employer.
    home: int | str
    position: str
    directions: tuple[Direction, ...]
    experience_years: int
    capacity: int = 4


#: Experts; the N-th has the account ``expert<N>@demo.rmc67.ru``.
EXPERTS = (
    ExpertSpec("Андреев Алексей Викторович", SAFONOVO, 9, "педагог дополнительного образования", (T,), 14),
    ExpertSpec("Егорова Светлана Михайловна", YARTSEVO, "МБОУ «Средняя школа № 7» г. Ярцево", "учитель информатики", (T,), 11),
    ExpertSpec("Никитина Ольга Сергеевна", DESNOGORSK, 11, "методист", (T, N), 19),
    ExpertSpec("Павлов Игорь Александрович", SMOLENSK, 1, "заведующий отделом технического творчества", (T,), 22),
    ExpertSpec("Соколова Марина Юрьевна", ROSLAVL, 8, "педагог дополнительного образования", (N,), 16),
    ExpertSpec("Васильев Константин Олегович", SMOLENSK, "МБОУ «Средняя школа № 33» г. Смоленска", "учитель биологии", (N,), 9),
    ExpertSpec("Григорьева Татьяна Николаевна", VYAZMA, "МБОУ «Средняя школа № 10» г. Вязьмы", "учитель химии", (N,), 24),
    ExpertSpec("Фёдоров Андрей Петрович", GAGARIN, "МБОУ «Средняя школа № 1» г. Гагарина", "учитель физики", (N, T), 17),
    ExpertSpec("Кузнецова Елена Владимировна", SMOLENSK, 2, "педагог дополнительного образования", (A,), 20),
    ExpertSpec("Смирнов Роман Геннадьевич", VYAZMA, 7, "тренер-преподаватель", (SP,), 12),
    ExpertSpec("Орлова Наталья Анатольевна", ROSLAVL, "МБОУ «Средняя школа № 1» г. Рославля", "учитель физической культуры", (SP,), 21),
    ExpertSpec("Козлов Виталий Сергеевич", SAFONOVO, "МБУ ДО «Спортивная школа» г. Сафоново", "тренер-преподаватель", (SP, L), 15),
    ExpertSpec("Лебедева Ирина Геннадьевна", GAGARIN, 12, "преподаватель", (A,), 26),
    ExpertSpec("Морозова Анна Дмитриевна", YARTSEVO, 18, "педагог-хореограф", (A,), 8),
    ExpertSpec("Волкова Людмила Ивановна", DESNOGORSK, "МБОУ «Средняя школа № 3» г. Десногорска", "учитель музыки", (A, H), 23),
    ExpertSpec("Белов Сергей Александрович", "Смоленский район", "МБОУ «Печерская средняя школа»", "учитель истории", (L,), 13),
    ExpertSpec("Зайцева Ольга Викторовна", SMOLENSK, 6, "методист", (L,), 18),
    ExpertSpec("Максимов Евгений Борисович", "Ельнинский район", "МБОУ «Средняя школа № 1» г. Ельни", "руководитель школьного музея", (L, H), 27),
    ExpertSpec("Тихонова Юлия Сергеевна", "Починковский район", 15, "педагог дополнительного образования", (H,), 7),
    ExpertSpec("Богданова Валентина Петровна", "Дорогобужский район", "МБОУ «Дорогобужская средняя школа № 2»", "учитель английского языка", (H,), 25),
    ExpertSpec("Ковалёв Артём Игоревич", ROSLAVL, 17, "преподаватель спецдисциплин", (T,), 10),
    ExpertSpec("Сорокина Дарья Алексеевна", "Смоленский район", "МБОУ «Пригорская средняя школа»", "учитель географии", (N, L), 12),
    ExpertSpec("Ершов Максим Валерьевич", SMOLENSK, "МБОУ «Средняя школа № 17» г. Смоленска", "учитель физической культуры", (SP,), 14),
    ExpertSpec("Полякова Ксения Романовна", VYAZMA, 5, "педагог дополнительного образования", (A,), 9),
    ExpertSpec("Гусев Николай Анатольевич", "Демидовский район", "МБОУ «Средняя школа № 1» г. Демидова", "учитель истории и обществознания", (L,), 30),
    ExpertSpec("Медведева Оксана Викторовна", SMOLENSK, 14, "методист", (H,), 15),
    ExpertSpec("Киселёв Денис Олегович", YARTSEVO, 10, "учитель технологии", (T,), 11),
    ExpertSpec("Антонова Галина Викторовна", "Кардымовский район", "МБОУ «Кардымовская средняя школа»", "учитель физической культуры", (SP,), 28),
    ExpertSpec("Романов Владимир Степанович", "Велижский район", "МБОУ «Средняя школа № 1» г. Велижа", "педагог-организатор", (L, SP), 19),
    ExpertSpec("Жукова Марина Алексеевна", "Сычёвский район", "МБОУ «Средняя школа № 1» г. Сычёвки", "заместитель директора по воспитательной работе", (H,), 21),
)  # fmt: skip

QUALIFICATION = {
    T: "Высшее техническое образование; высшая квалификационная категория; "
    "курсы «Экспертиза дополнительных общеобразовательных программ» (72 ч)",
    N: "Высшее педагогическое образование (биология, химия); высшая квалификационная "
    "категория; руководитель исследовательских проектов школьников",
    SP: "Высшее образование по физической культуре и спорту; первая квалификационная "
    "категория; судья по виду спорта",
    A: "Высшее образование в области искусств; высшая квалификационная категория; "
    "член жюри областных конкурсов детского творчества",
    L: "Высшее историческое образование; инструктор детско-юношеского туризма; "
    "руководитель краеведческого объединения",
    H: "Высшее педагогическое образование; высшая квалификационная категория; "
    "опыт разработки программ социально-гуманитарной направленности",
}


@dataclass(frozen=True)
class ProgramSpec:
    provider: int
    state: str
    title: str
    direction: Direction
    level: Level
    ages: tuple[int, int]
    total_hours: int
    duration_months: int
    annotation: str
    study_form: StudyForm = StudyForm.FULL_TIME
    group: tuple[int, int] = (8, 15)
    extra: dict = field(default_factory=dict)
    reason: str | None = None


#: Target states: draft, submitted, returned, in_review, withdrawn, and ``resubmitted``
#: (returned once, fixed and submitted again: a second version).
PROGRAMS = (
    ProgramSpec(
        1, "in_review", "Робототехника: от идеи до модели", T, Level.BASIC, (10, 14), 144, 9,
        "Учащиеся конструируют и программируют роботов на базе образовательных наборов, "
        "осваивают основы механики, электроники и алгоритмизации, готовят проекты к "
        "региональным соревнованиям по робототехнике.",
        group=(8, 12),
    ),
    ProgramSpec(
        1, "draft", "Беспилотные авиационные системы", T, Level.ADVANCED, (13, 17), 144, 9,
        "Программа знакомит с устройством и программированием квадрокоптеров, основами "
        "аэродинамики и правилами безопасных полётов; итог обучения — командный проект по "
        "аэрофотосъёмке.",
        group=(6, 10),
    ),
    ProgramSpec(
        1, "submitted", "3D-моделирование и прототипирование", T, Level.BASIC, (11, 15), 72, 9,
        "Обучающиеся создают трёхмерные модели в свободно распространяемых редакторах, "
        "готовят их к печати и изготавливают прототипы на 3D-принтере.",
        extra={"uses_distance_learning": True},
    ),
    ProgramSpec(
        1, "returned", "Юный радиоэлектронщик", T, Level.INTRODUCTORY, (9, 12), 72, 9,
        "Первое знакомство с электрическими цепями, пайкой и сборкой простых "
        "радиоэлектронных устройств по схемам.",
        reason="Объём программы в карточке (72 часа) не совпадает с учебным планом в тексте "
        "программы (108 часов). Исправьте карточку или учебный план и отправьте программу "
        "повторно.",
    ),
    ProgramSpec(
        1, "withdrawn", "Судомоделирование", T, Level.INTRODUCTORY, (8, 12), 144, 9,
        "Изготовление моделей судов из дерева и пластика, знакомство с историей флота и "
        "основами морского дела.",
    ),
    ProgramSpec(
        1, "resubmitted", "Начальное техническое моделирование", T, Level.INTRODUCTORY,
        (7, 9), 36, 4,
        "Младшие школьники учатся читать простые чертежи, работать с бумагой, картоном и "
        "конструктором, изготавливают действующие модели машин и самолётов.",
        reason="Не указан возраст обучающихся в пояснительной записке; уточните возрастной "
        "диапазон и продолжительность занятий для младших школьников.",
    ),
    ProgramSpec(
        2, "in_review", "Вокальная студия «Камертон»", A, Level.BASIC, (7, 14), 144, 9,
        "Эстрадный и академический вокал: постановка голоса, дыхание, сценическое движение, "
        "ансамблевое пение; выступления на городских концертах и конкурсах.",
        group=(10, 15),
    ),
    ProgramSpec(
        2, "submitted", "Школа вожатого", H, Level.BASIC, (14, 17), 72, 9,
        "Подготовка старшеклассников к работе помощниками вожатых в летних лагерях: "
        "игровые технологии, основы конфликтологии, организация коллективных творческих дел.",
        study_form=StudyForm.PART_TIME,
    ),
    ProgramSpec(
        2, "draft", "Театральная студия «Маска»", A, Level.INTRODUCTORY, (7, 11), 72, 9,
        "Актёрское мастерство, сценическая речь и пластика для младших школьников; "
        "постановка спектакля по произведениям детской литературы.",
    ),
    ProgramSpec(
        3, "in_review", "Программирование на Python", T, Level.BASIC, (12, 16), 108, 9,
        "Основы языка Python, алгоритмы и структуры данных, разработка небольших игр и "
        "телеграм-ботов; часть занятий проходит с применением дистанционных технологий.",
        extra={"uses_distance_learning": True},
        group=(6, 12),
    ),
    ProgramSpec(
        3, "submitted", "Scratch: первые шаги в программировании", T, Level.INTRODUCTORY,
        (7, 10), 36, 4,
        "Знакомство с визуальным программированием: анимации, интерактивные открытки и "
        "простые игры в среде Scratch.",
        group=(6, 10),
    ),
    ProgramSpec(
        4, "in_review", "Шахматы: от новичка до разрядника", SP, Level.BASIC, (7, 14), 72, 9,
        "Дебютная теория, тактические приёмы и эндшпиль; участие в турнирах с обсчётом "
        "рейтинга и подготовка к выполнению юношеских разрядов.",
        group=(6, 12),
    ),
    ProgramSpec(
        4, "draft", "Шахматная азбука", SP, Level.INTRODUCTORY, (5, 7), 36, 8,
        "Игровое знакомство дошкольников с шахматной доской, фигурами и правилами игры; "
        "развитие внимания, памяти и логического мышления.",
        extra={"adapted_for_disabilities": True},
        group=(5, 10),
    ),
    ProgramSpec(
        5, "in_review", "Юный эколог", N, Level.INTRODUCTORY, (8, 12), 72, 9,
        "Наблюдения за природой родного края, простые опыты с водой, почвой и растениями, "
        "участие в экологических акциях Вяземского района.",
    ),
    ProgramSpec(
        5, "returned", "Мастерская «Умелые руки»", A, Level.INTRODUCTORY, (7, 11), 72, 9,
        "Декоративно-прикладное творчество: работа с природными материалами, бумагой, "
        "текстилем и солёным тестом.",
        reason="В программе отсутствуют оценочные материалы и формы аттестации; дополните "
        "раздел «Комплекс организационно-педагогических условий».",
    ),
    ProgramSpec(
        5, "submitted", "Вяземский край: история и люди", L, Level.BASIC, (11, 15), 72, 9,
        "Исследование истории Вязьмы и района по музейным и архивным материалам, "
        "экскурсии, встречи со старожилами, создание виртуальной экспозиции.",
    ),
    ProgramSpec(
        6, "in_review", "Школа юного туриста", L, Level.BASIC, (10, 15), 144, 9,
        "Техника пешеходного туризма, ориентирование на местности, топография, основы "
        "безопасности и первой помощи; походы выходного дня по Смоленской области.",
        group=(10, 15),
    ),
    ProgramSpec(
        6, "submitted", "Смоленская крепостная стена: история и архитектура", L,
        Level.INTRODUCTORY, (10, 14), 36, 4,
        "Экскурсионный курс о строительстве и обороне Смоленской крепости, её башнях и "
        "судьбе в разные эпохи; итог — авторская экскурсия, подготовленная обучающимися.",
    ),
    ProgramSpec(
        7, "in_review", "Футбол для начинающих", SP, Level.INTRODUCTORY, (6, 9), 108, 9,
        "Общая физическая подготовка и обучение основам техники и тактики футбола, "
        "игровые занятия и товарищеские матчи.",
        group=(10, 18),
    ),
    ProgramSpec(
        7, "withdrawn", "Общая физическая подготовка с элементами лёгкой атлетики", SP,
        Level.BASIC, (10, 14), 108, 9,
        "Развитие выносливости, силы и координации; бег, прыжки и метания, подготовка к "
        "сдаче нормативов комплекса ГТО.",
    ),
    ProgramSpec(
        8, "in_review", "Юный натуралист: растения и животные родного края", N,
        Level.INTRODUCTORY, (7, 10), 72, 9,
        "Уход за обитателями живого уголка и растениями учебно-опытного участка, "
        "наблюдения и фенологический дневник, знакомство с Красной книгой Смоленской области.",
        extra={"adapted_for_disabilities": True},
    ),
    ProgramSpec(
        8, "draft", "Биологическая исследовательская лаборатория", N, Level.ADVANCED,
        (14, 17), 144, 9,
        "Учебные исследования по ботанике, зоологии и экологии с использованием цифровой "
        "лаборатории; подготовка работ к научно-практическим конференциям школьников.",
        group=(6, 10),
    ),
    ProgramSpec(
        9, "submitted", "Основы робототехники", T, Level.INTRODUCTORY, (8, 11), 72, 9,
        "Сборка и программирование простых моделей роботов из образовательного "
        "конструктора, командные проекты и соревнования внутри объединения.",
    ),
    ProgramSpec(
        10, "in_review", "Финансовая грамотность", H, Level.BASIC, (12, 15), 36, 9,
        "Семейный бюджет, банковские продукты, защита от финансового мошенничества; "
        "деловые игры и решение практических кейсов.",
    ),
    ProgramSpec(
        11, "in_review", "Медиастудия «Новый взгляд»", H, Level.BASIC, (12, 17), 144, 9,
        "Школьная журналистика, фото- и видеосъёмка, монтаж и ведение новостной страницы "
        "центра; программа реализуется в сетевой форме со средними школами города.",
        extra={"network_form": True, "uses_distance_learning": True},
        group=(8, 12),
    ),
    ProgramSpec(
        12, "draft", "Хоровое пение", A, Level.BASIC, (8, 14), 144, 9,
        "Развитие певческого голоса и музыкального слуха, разучивание произведений русской "
        "и зарубежной классики и народных песен Смоленщины.",
        group=(12, 25),
    ),
    ProgramSpec(
        14, "in_review", "Английский язык для младших школьников", H, Level.INTRODUCTORY,
        (7, 10), 72, 9,
        "Игровое освоение английской лексики и простых грамматических конструкций, песни, "
        "стихи и мини-спектакли на английском языке.",
        group=(6, 10),
    ),
    ProgramSpec(
        15, "draft", "Основы журналистики", H, Level.BASIC, (13, 17), 72, 9,
        "Жанры журналистики, интервью и репортаж, выпуск районной детской газеты.",
    ),
    ProgramSpec(
        16, "in_review", "Изостудия «Палитра»", A, Level.BASIC, (7, 12), 144, 9,
        "Рисунок, живопись и композиция; работа акварелью, гуашью и пастелью, пленэры и "
        "выставки работ обучающихся.",
        group=(6, 12),
    ),
    ProgramSpec(
        18, "submitted", "Современный танец", A, Level.BASIC, (8, 14), 144, 9,
        "Основы джаз-модерн и контемпорари, развитие гибкости, координации и "
        "музыкальности, постановка концертных номеров.",
        group=(10, 16),
    ),
    ProgramSpec(
        19, "in_review", "Туристский клуб «Следопыт»", L, Level.BASIC, (11, 16), 108, 9,
        "Подготовка к многодневным походам, спортивное ориентирование, краеведческие "
        "исследования в окрестностях Смоленска.",
        group=(8, 12),
    ),
    ProgramSpec(
        20, "submitted", "Подготовка к школе «Умка»", H, Level.INTRODUCTORY, (5, 7), 72, 8,
        "Развитие речи, знакомство с буквами и звуками, математические представления и "
        "мелкая моторика для будущих первоклассников.",
        group=(6, 10),
    ),
)  # fmt: skip

#: The pending self-registrations waiting on the coordinator's approval screen.
PENDING_PROVIDER_EMAIL = f"newprovider@{DEMO_DOMAIN}"
PENDING_EXPERT_EMAIL = f"newexpert@{DEMO_DOMAIN}"

COORDINATOR_EMAIL = f"coordinator@{DEMO_DOMAIN}"
ADMIN_EMAIL = f"admin@{DEMO_DOMAIN}"
MUNICIPAL_EMAIL = f"municipal@{DEMO_DOMAIN}"


def provider_email(number: int) -> str:
    return f"provider{number}@{DEMO_DOMAIN}"


def expert_email(number: int) -> str:
    return f"expert{number}@{DEMO_DOMAIN}"


# --- registration numbers -------------------------------------------------------------


def _digits(rng: random.Random, count: int) -> str:
    return "".join(str(rng.randint(0, 9)) for _ in range(count))


def make_inn(rng: random.Random, length: int) -> str:
    """An ИНН of the region (starting with its code 67) with correct control digits."""
    return with_inn_check_digits("67" + _digits(rng, 7 if length == 10 else 8))


def make_ogrn(rng: random.Random, individual: bool) -> str:
    """An ОГРН (13 digits) or ОГРНИП (15 digits) registered in the region, with its check digit."""
    year = f"{rng.randint(2, 22):02d}"
    if individual:
        body = "3" + year + "67" + _digits(rng, 9)
        return body + str(int(body) % 13 % 10)
    body = "1" + year + "67" + _digits(rng, 7)
    return body + str(int(body) % 11 % 10)


@dataclass(frozen=True)
class _Numbers:
    org_inns: tuple[str, ...]
    org_ogrns: tuple[str, ...]
    school_inns: dict[str, str]
    pending_inn: str
    pending_ogrn: str
    pending_expert_home_inn: str


def _numbers() -> _Numbers:
    """Every generated number, drawn in a fixed order from one seeded generator."""
    rng = random.Random(SEED)
    seen: set[str] = set()

    def unique_inn(length: int) -> str:
        while True:
            inn = make_inn(rng, length)
            if inn not in seen:
                seen.add(inn)
                return inn

    org_inns, org_ogrns = [], []
    for spec in ORGANIZATIONS:
        individual = spec.kind == IE
        org_inns.append(unique_inn(12 if individual else 10))
        org_ogrns.append(make_ogrn(rng, individual))
    school_inns = {}
    for spec in EXPERTS:
        if isinstance(spec.home, str) and spec.home not in school_inns:
            school_inns[spec.home] = unique_inn(10)
    pending_inn = unique_inn(10)
    pending_ogrn = make_ogrn(rng, False)
    return _Numbers(
        tuple(org_inns),
        tuple(org_ogrns),
        school_inns,
        pending_inn,
        pending_ogrn,
        unique_inn(10),
    )


# --- the seeding steps ----------------------------------------------------------------


def _user(
    email: str,
    full_name: str,
    roles: list[Role],
    actor: User | None,
    **kwargs,
) -> User:
    """The approved account with this e-mail, created if missing (hashed once)."""
    user = find_user_by_email(email)
    if user is None:
        user = create_approved_user(email, DEMO_PASSWORD, full_name, roles, actor=actor, **kwargs)
    return user


def _seed_settings(actor: User) -> None:
    for key, value in SETTINGS.items():
        if get_setting(key) != value:
            set_setting(key, value, actor=actor)


def _seed_municipalities() -> dict[str, Municipality]:
    existing = {
        m.name: m
        for m in db.session.execute(
            select(Municipality).where(Municipality.name.in_(MUNICIPALITIES))
        ).scalars()
    }
    for name in MUNICIPALITIES:
        if name not in existing:
            municipality = Municipality(name=name)
            db.session.add(municipality)
            existing[name] = municipality
    db.session.flush()
    return existing


def _seed_organizations(
    numbers: _Numbers, municipalities: dict[str, Municipality], actor: User
) -> list[Organization]:
    organizations = []
    for number, spec in enumerate(ORGANIZATIONS, start=1):
        inn = numbers.org_inns[number - 1]
        organization = inn_holder(inn)
        if organization is None:
            organization = Organization(
                full_name=spec.full_name,
                short_name=spec.short_name,
                inn=inn,
                ogrn=numbers.org_ogrns[number - 1],
                kind=spec.kind,
                municipality_id=municipalities[spec.municipality].id,
                address=spec.address,
                email=provider_email(number),
                status=AccountStatus.APPROVED,
                approved_at=utcnow(),
            )
            db.session.add(organization)
            db.session.flush()
            record_event(
                "organization.create",
                actor=actor,
                object_type="organization",
                object_id=organization.id,
                after={"inn": inn, "kind": spec.kind, "short_name": spec.short_name},
            )
        _user(
            provider_email(number),
            spec.contact,
            [Role.APPLICANT],
            actor,
            organization_id=organization.id,
        )
        organizations.append(organization)
    return organizations


def _seed_experts(
    numbers: _Numbers,
    municipalities: dict[str, Municipality],
    organizations: list[Organization],
    actor: User,
) -> list[User]:
    experts = []
    for number, spec in enumerate(EXPERTS, start=1):
        user = _user(expert_email(number), spec.full_name, [Role.EXPERT], actor)
        if user.expert_profile is None:
            if isinstance(spec.home, int):
                home = organizations[spec.home - 1]
                home_id, home_name, home_inn = home.id, home.short_name, home.inn
            else:
                home_id, home_name, home_inn = None, spec.home, numbers.school_inns[spec.home]
            profile = ExpertProfile(
                user=user,
                municipality_id=municipalities[spec.municipality].id,
                home_organization_id=home_id,
                home_organization_name=home_name,
                home_organization_inn=home_inn,
                position=spec.position,
                qualification=QUALIFICATION[spec.directions[0]],
                experience_years=spec.experience_years,
                capacity=spec.capacity,
            )
            profile.set_directions(spec.directions)
            db.session.add(profile)
            db.session.flush()
            record_event(
                "expert.create_profile",
                actor=actor,
                object_type="user",
                object_id=user.id,
                after={"directions": sorted(d.value for d in profile.directions)},
            )
        experts.append(user)
    return experts


def _seed_pending(numbers: _Numbers, municipalities: dict[str, Municipality]) -> None:
    if find_user_by_email(PENDING_PROVIDER_EMAIL) is None:
        register_provider(
            NewUser(PENDING_PROVIDER_EMAIL, DEMO_PASSWORD, "Соловьёва Мария Андреевна"),
            full_name="Общество с ограниченной ответственностью «Детский центр «Радуга»",
            short_name="ООО «Детский центр «Радуга»",
            inn=numbers.pending_inn,
            ogrn=numbers.pending_ogrn,
            kind=OrganizationType.PRIVATE,
            municipality_id=municipalities[ROSLAVL].id,
            address="Смоленская обл., г. Рославль, ул. Красноармейская, д. 3",
            consent=True,
        )
    if find_user_by_email(PENDING_EXPERT_EMAIL) is None:
        register_expert(
            NewUser(PENDING_EXPERT_EMAIL, DEMO_PASSWORD, "Лапина Вера Николаевна"),
            municipality_id=municipalities[VYAZMA].id,
            home_organization_name="МБОУ «Средняя школа № 5» г. Вязьмы",
            home_organization_inn=numbers.pending_expert_home_inn,
            position="учитель информатики",
            directions=[T, N],
            qualification="Высшее педагогическое образование; первая квалификационная "
            "категория; руководитель кружка робототехники",
            experience_years=12,
            capacity=4,
            consent=True,
        )


def _seed_programs(
    organizations: list[Organization], experts: list[User], coordinator: User
) -> None:
    accepted: list[Program] = []
    for spec in PROGRAMS:
        organization = organizations[spec.provider - 1]
        exists = db.session.execute(
            select(Program.id).where(
                Program.organization_id == organization.id, Program.title == spec.title
            )
        ).first()
        if exists:
            continue
        applicant = find_user_by_email(provider_email(spec.provider))
        program = create_program(
            organization,
            applicant,
            title=spec.title,
            direction=spec.direction,
            level=spec.level,
            age_min=spec.ages[0],
            age_max=spec.ages[1],
            total_hours=spec.total_hours,
            duration_months=spec.duration_months,
            study_form=spec.study_form,
            group_min=spec.group[0],
            group_max=spec.group[1],
            annotation=spec.annotation,
            **spec.extra,
        )
        attach_program_document(program, applicant)
        if spec.state == "draft":
            continue
        submit_program(program, applicant)
        if spec.state == "withdrawn":
            withdraw_program(program, applicant)
        elif spec.state in ("returned", "resubmitted"):
            return_submission(program, coordinator, spec.reason)
            if spec.state == "resubmitted":
                # The provider fixes what the coordinator asked for: the card and the text.
                update_program(program, applicant, total_hours=program.total_hours + 36)
                attach_program_document(
                    program,
                    applicant,
                    plan="Учебный план приведён в соответствие с карточкой: "
                    f"{program.total_hours} ч.",
                )
                submit_program(program, applicant)
        elif spec.state == "in_review":
            accept_submission(program, coordinator)
            if spec.provider != 1:
                accepted.append(program)
    _assign_experts(coordinator)
    _score_reviews(accepted, coordinator)


def _assign_experts(coordinator: User) -> None:
    """The real automatic assignment of the open reviews; some experts have accepted."""
    result = run_assignment(coordinator, apply=True, seed=0)
    for assignment in result.created:
        if assignment.seat == 1 or assignment.review_id % 2 == 0:
            accept_assignment(assignment, assignment.expert)


#: The demo's scored reviews: the two experts' totals (of 20) and what the coordinator did.
SCORED = (
    ((16, 15), None),  # the experts agree: awaiting the coordinator's decision
    ((18, 17), "confirm"),  # admitted
    ((18, 10), None),  # divergent: in reconciliation, a third expert assigned
    ((8, 7), "confirm"),  # rejected
    ((15, 14), "override"),  # admitted by the rules, sent for revision with a justification
)

_COMMENTS = (
    "Раздел присутствует, но раскрыт формально; нужны конкретные формулировки.",
    "Не хватает обоснования; рекомендуется опереться на запросы детей и родителей.",
    "Часы учебного плана не совпадают с календарным графиком.",
    "Оценочные материалы не приложены.",
)

OVERRIDE_NOTE = (
    "Учебный план не согласован по часам с календарным учебным графиком (критерий B3): "
    "программа направляется на доработку, несмотря на сумму баллов."
)


def _demo_scores(total: int, rng: random.Random) -> tuple[dict[str, int], dict[str, str]]:
    """Scores of the default rubric adding up to ``total``: the blocking criteria first,
    the lost points spread over the others; a comment wherever one is required."""
    criteria = ["A1", "A2", "B1", "B2", "B3", "B4", "C1", "D1", "D2", "D3"]
    scores = dict.fromkeys(criteria, 2)
    lost = 20 - total
    others = criteria[2:]
    rng.shuffle(others)
    for criterion in others * 2:
        if lost == 0:
            break
        if scores[criterion] > 0:
            scores[criterion] -= 1
            lost -= 1
    comments = {c: rng.choice(_COMMENTS) for c, v in scores.items() if v < 2}
    return scores, comments


def _score_reviews(programs: list[Program], coordinator: User) -> None:
    """The first reviews are scored by their experts through the real services and move on
    by the rubric's rules; some are decided by the coordinator."""
    from review_portal.enums import AssignmentStatus
    from review_portal.reviews.services import decide_review
    from review_portal.scoring.services import SheetInput, save_sheet, submit_sheet

    scenarios = iter(SCORED)
    for program in programs:
        review = program.current_review
        assignments = [a for a in review.assignments if a.status != AssignmentStatus.DECLINED]
        if len(assignments) != 2:
            continue
        scenario = next(scenarios, None)
        if scenario is None:
            break
        totals, action = scenario
        rng = random.Random(review.id)
        for assignment, total in zip(assignments, totals, strict=True):
            if assignment.status == AssignmentStatus.OFFERED:
                accept_assignment(assignment, assignment.expert)
            scores, comments = _demo_scores(total, rng)
            save_sheet(
                assignment,
                assignment.expert,
                SheetInput(
                    revision=0,
                    scores=scores,
                    comments=comments,
                    recommendations="Программа в целом соответствует требованиям; "
                    "рекомендуется уточнить планируемые результаты.",
                    confirmed=True,
                ),
            )
            submit_sheet(assignment, assignment.expert)
        if action == "confirm":
            decide_review(review, coordinator, review.computed_decision)
        elif action == "override":
            from review_portal.enums import Decision

            decide_review(review, coordinator, Decision.REVISION_REQUIRED, OVERRIDE_NOTE)


_DOCUMENT_HTML = """<html lang="ru"><head><meta charset="utf-8"><style>
body {{ font-family: "DejaVu Serif", serif; font-size: 12pt; }} h1 {{ font-size: 16pt; }}
</style></head><body>
<p>{organization}</p>
<h1>Дополнительная {kind} программа «{title}»</h1>
<p>Направленность: {direction}. Уровень: {level}. Возраст обучающихся: {age_min}–{age_max} лет.
Объём программы: {hours} ч. Срок реализации: {months} мес.</p>
<h2>1. Пояснительная записка</h2><p>{annotation}</p>
<h2>2. Цель и задачи</h2><p>Цель: развитие интереса и способностей обучающихся.</p>
<h2>3. Учебный план</h2><p>{plan}</p>
<h2>4. Планируемые результаты</h2><p>Результаты соотнесены с задачами программы.</p>
</body></html>"""

#: How the document's title names the program, by its type.
_DOCUMENT_KIND = {
    ProgramType.GENERAL_DEVELOPMENTAL: "общеобразовательная общеразвивающая",
    ProgramType.PRE_PROFESSIONAL: "предпрофессиональная",
}


@functools.lru_cache(maxsize=64)
def _render_pdf(html: str) -> bytes:
    import weasyprint

    return weasyprint.HTML(string=html).write_pdf()


def attach_program_document(
    program: Program,
    actor: User,
    plan: str = "Учебный план согласован по часам с календарным графиком.",
) -> None:
    """Give a demo or simulated program a real PDF program document, rendered from its card
    (a new one replaces the previous, as a provider's upload does)."""
    html = _DOCUMENT_HTML.format(
        plan=escape(plan),
        organization=escape(program.organization.full_name),
        kind=_DOCUMENT_KIND[ProgramType(program.program_type)],
        title=escape(program.title),
        direction=program.direction.label,
        level=program.level.label,
        age_min=program.age_min,
        age_max=program.age_max,
        hours=program.total_hours,
        months=program.duration_months,
        annotation=escape(program.annotation or ""),
    )
    upload = FileStorage(
        io.BytesIO(_render_pdf(html)),
        filename=f"Программа {program.id}.pdf",
        content_type="application/pdf",
    )
    add_document(program, actor, upload, DocumentKind.PROGRAM)


def _accounts() -> list[tuple[str, str, str]]:
    return [
        ("coordinator", COORDINATOR_EMAIL, DEMO_PASSWORD),
        ("admin", ADMIN_EMAIL, DEMO_PASSWORD),
        ("municipal", MUNICIPAL_EMAIL, DEMO_PASSWORD),
        *(("provider", provider_email(n), DEMO_PASSWORD) for n in range(1, len(ORGANIZATIONS) + 1)),
        *(("expert", expert_email(n), DEMO_PASSWORD) for n in range(1, len(EXPERTS) + 1)),
    ]


def seed_demo_region() -> list[tuple[str, str, str]]:
    """Create the demo region if missing and return its accounts as (role, e-mail, password).

    Adds the region's settings, its 27 municipalities, the provider organizations with their
    applicants, the experts with their profiles, the staff accounts, one pending provider
    and one pending expert registration, and programs in the states draft, submitted,
    returned, in_review (with two assigned experts) and withdrawn; five reviews are scored
    through the real services and reach awaiting_decision, reconciliation (with a third
    expert), admitted, rejected and revision_required (an override with its justification);
    the certified registry is published. Every object is looked
    up by its natural key first, so a second run adds nothing. Flushes, never commits.
    """
    with published_password(DEMO_PASSWORD):
        return _seed_demo_region()


def _seed_demo_region() -> list[tuple[str, str, str]]:
    numbers = _numbers()
    admin = _user(ADMIN_EMAIL, "Широков Алексей Викторович", [Role.ADMIN], None)
    coordinator = _user(COORDINATOR_EMAIL, "Ковалёва Ирина Павловна", [Role.COORDINATOR], admin)
    _seed_settings(admin)
    municipalities = _seed_municipalities()
    _user(
        MUNICIPAL_EMAIL,
        "Панова Елена Сергеевна",
        [Role.MUNICIPAL],
        admin,
        municipality_id=municipalities[VYAZMA].id,
    )
    organizations = _seed_organizations(numbers, municipalities, admin)
    experts = _seed_experts(numbers, municipalities, organizations, admin)
    _seed_pending(numbers, municipalities)
    _seed_programs(organizations, experts, coordinator)
    _publish_registry(coordinator)
    db.session.flush()
    return _accounts()


def _publish_registry(coordinator: User) -> None:
    """Publish the admitted demo programs, so the public registry has content (a second run
    finds nothing new and publishes nothing)."""
    from review_portal.enums import RegistryKind
    from review_portal.registry.queries import pending_changes
    from review_portal.registry.services import publish_registry

    if pending_changes(RegistryKind.CERTIFIED):
        publish_registry(RegistryKind.CERTIFIED, coordinator)
