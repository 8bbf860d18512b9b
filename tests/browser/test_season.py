"""A whole season in a real browser: the people of one program's assessment, each in their own
browser session, do everything through the portal's pages, and every step checks what the
person sees (in Russian). On the way the main pages are audited with axe-core.

The journey (the module-scoped ``season``):

1. a provider registers the organization through the registration form and waits;
2. the coordinator approves the registration;
3. the provider creates the program, uploads its PDF and submits it;
4. the coordinator accepts it into expertise and runs the automatic assignment, a dry run
   first, then applies the plan;
5. the first expert accepts and scores in two browser sessions, relying on autosave: the
   scores of the first session are there in the second;
6. the second expert accepts and scores far lower: the totals diverge, so the rubric sends
   the review to a third expert, who accepts and scores;
7. the coordinator confirms the computed decision (a conclusion is issued) and publishes the
   registry;
8. the provider reads the decision and downloads the conclusion;
9. an anonymous visitor finds the program in the registry with a filter, opens the
   verification page of its conclusion and downloads the PDF.

The journey runs once per database, in the module-scoped fixture ``season``: each step
asserts as it goes, so a broken step fails there (with screenshots and HTML of every open
page). The tests then check what it left behind: the rows in the database, the downloaded
PDFs against the stored conclusion, and the accessibility audits, one test per page.

Only the preconditions that are no one's step here (the coordinator's account, the region's
settings, municipalities, approved experts and an earlier admitted program) are written with
the services and factories before the browser starts.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select

from review_portal.assignment.models import Assignment
from review_portal.conclusions.models import Conclusion
from review_portal.enums import AccountStatus, AssignmentRole, Decision, Direction
from review_portal.extensions import db
from review_portal.programs.models import Program
from review_portal.registry.models import RegistryEntry
from review_portal.settings.services import set_setting
from review_portal.workflow import ReviewState
from tests import factories
from tests.browser.helpers import (
    Audit,
    Portal,
    Windows,
    artifacts_folder,
    audit,
    describe_violations,
    expect,
    flash,
    log_in,
    open_menu_link,
    pdf_bytes_of_link,
    score,
)

PROGRAM = "Робототехника: первые шаги в конструировании"
PROVIDER_EMAIL = "orlova@robotech.example"
PROVIDER_PASSWORD = "Provider-pass-2026"
PROVIDER_NAME = "Орлова Анна Викторовна"
COORDINATOR_EMAIL = "coordinator@rmc67.example"

MUNICIPALITY = "Сафоновский район"
#: The experts: other municipalities and other home organizations than the provider's, so the
#: default municipality policy ("different") allows each of them.
EXPERTS = {
    "Андреев Алексей Викторович": ("andreev@experts.example", "Ярцевский район"),
    "Егорова Светлана Михайловна": ("egorova@experts.example", "Вяземский район"),
    "Никитина Ольга Сергеевна": ("nikitina@experts.example", "город Десногорск"),
}

#: The first expert's scores (all 2: 20 of 20), the second's (13 of 20: 7 points, 35 % apart,
#: and below the 70 % admission threshold: divergent) and the third's (19 of 20).
FIRST = factories.points(2)
SECOND = factories.points(2, 2, 2, 2, 2, 1, 1, 1, 0, 0)
THIRD = factories.points(2, 2, 2, 2, 2, 2, 2, 2, 2, 1)
#: Criteria the first expert scores in the first browser session (autosaved, then closed).
FIRST_SESSION = ("A1", "A2", "B1", "B2", "B3")


@dataclass
class Season:
    program_id: int
    review_id: int
    number: str
    initial_experts: list[str]
    third_expert: str
    provider_pdf: bytes
    public_pdf: bytes
    #: Page name → its axe-core audit (serious and critical violations).
    audits: dict[str, Audit] = field(default_factory=dict)


def prepare_region(portal: Portal) -> None:
    """What no step of this journey creates: the center's settings and coordinator, the
    municipalities, three approved technical experts and an admitted arts program waiting
    for the registry's next publication (so that the registry's filter has something to
    leave out)."""
    with portal.app.app_context():
        coordinator = factories.CoordinatorFactory(
            email=COORDINATOR_EMAIL, full_name="Семёнова Людмила Александровна"
        )
        for key, value in {
            "region_code": "67",
            "region_name": "Смоленская область",
            "center_name": "Региональный модельный центр дополнительного образования детей",
            "head_name": "Семёнова Людмила Александровна",
            "head_position": "Руководитель регионального модельного центра",
        }.items():
            set_setting(key, value, actor=coordinator)
        municipalities = {
            name: factories.MunicipalityFactory(name=name)
            for name in [MUNICIPALITY, "город Смоленск"] + [m for _, m in EXPERTS.values()]
        }
        for n, (name, (email, municipality)) in enumerate(EXPERTS.items(), start=1):
            factories.expert(
                directions=[Direction.TECHNICAL],
                municipality=municipalities[municipality],
                capacity=3,
                email=email,
                full_name=name,
            ).expert_profile.home_organization_name = f"МБОУ «Средняя школа № {n + 10}»"
        factories.admitted_program(
            coordinator=coordinator,
            title="Вокальная студия «Камертон»",
            direction=Direction.ARTS,
            organization=factories.OrganizationFactory(
                municipality=municipalities["город Смоленск"]
            ),
        )
        db.session.commit()


@pytest.fixture(scope="module")
def season(portal: Portal, windows: Windows) -> Season:
    prepare_region(portal)
    audits: dict[str, Audit] = {}

    # --- 1. The provider registers and waits for the approval. ------------------------------
    provider = windows.open("provider")
    provider.goto("/login")
    expect(provider.get_by_role("heading", name="Войти")).to_be_visible()
    audits["login"] = audit(provider)
    provider.get_by_role("link", name="Регистрация поставщика образовательных услуг").click()
    expect(provider.locator("h1")).to_have_text("Регистрация поставщика образовательных услуг")
    provider.get_by_label("Тип поставщика").select_option(label="Частная организация")
    provider.get_by_label("Полное наименование организации").fill(
        "Автономная некоммерческая организация дополнительного образования «Роботех»"
    )
    provider.get_by_label("Сокращённое наименование организации").fill("АНО ДО «Роботех»")
    provider.get_by_label("ИНН", exact=True).fill(factories.make_inn(10))
    provider.get_by_label("Муниципальное образование").select_option(label=MUNICIPALITY)
    provider.get_by_label("Фамилия, имя, отчество").fill(PROVIDER_NAME)
    provider.get_by_label("Электронная почта").fill(PROVIDER_EMAIL)
    provider.get_by_label("Пароль", exact=True).fill(PROVIDER_PASSWORD)
    provider.get_by_label("Повторите пароль").fill(PROVIDER_PASSWORD)
    provider.locator("#consent").check()
    audits["registration"] = audit(provider)
    provider.get_by_role("button", name="Зарегистрироваться").click()
    expect(provider.locator("h1")).to_have_text("Заявка на регистрацию ожидает подтверждения")
    provider.goto("/")  # the provider waits: nothing else opens before the approval
    expect(provider.locator("h1")).to_have_text("Заявка на регистрацию ожидает подтверждения")

    # --- 2. The coordinator approves the registration. --------------------------------------
    coordinator = windows.open("coordinator")
    log_in(coordinator, COORDINATOR_EMAIL, factories.PASSWORD)
    open_menu_link(coordinator, "Администрирование", "Заявки на регистрацию")
    coordinator.get_by_role("link", name=PROVIDER_NAME).click()
    expect(coordinator.locator("h1")).to_have_text(PROVIDER_NAME)
    expect(coordinator.get_by_text("АНО ДО «Роботех»")).to_be_visible()
    coordinator.get_by_role("button", name="Подтвердить").click()
    expect(flash(coordinator)).to_have_text(f"Регистрация подтверждена: {PROVIDER_NAME}.")

    # --- 3. The provider, approved now, creates the program, uploads the PDF, submits. -------
    provider.reload()
    expect(provider.locator("h1")).to_have_text("АНО ДО «Роботех»")
    provider.get_by_role("link", name="Новая программа").click()
    expect(provider.locator("h1")).to_have_text("Новая программа")
    provider.locator("#title").fill(PROGRAM)
    provider.locator("#direction").select_option("technical")
    provider.locator("#level").select_option("introductory")
    provider.locator("#age_min").fill("7")
    provider.locator("#age_max").fill("11")
    provider.locator("#total_hours").fill("72")
    provider.locator("#duration_months").fill("9")
    provider.locator("#study_form").select_option("full_time")
    provider.locator("#municipality_id").select_option(label=MUNICIPALITY)
    provider.locator("#group_min").fill("8")
    provider.locator("#group_max").fill("12")
    provider.locator("#annotation").fill("Конструирование и программирование учебных роботов.")
    provider.get_by_role("button", name="Сохранить").click()
    expect(provider.locator("h1")).to_have_text(PROGRAM)
    program_id = int(provider.url.rstrip("/").rsplit("/", 1)[1])
    expect(provider.locator("#no-program-document")).to_be_visible()
    # The first file: the program document is chosen already.
    expect(provider.get_by_label("Документ программы", exact=True)).to_be_checked()
    provider.get_by_label("Файл").set_input_files(
        files=[{"name": "Программа Роботех.pdf", "mimeType": "application/pdf",
                "buffer": factories.MINIMAL_PDF}]
    )  # fmt: skip
    provider.get_by_role("button", name="Загрузить").click()
    expect(provider.locator("#documents")).to_contain_text("Программа Роботех.pdf")
    # Asked to confirm first (nothing is submitted by the first click).
    provider.get_by_role("button", name="Подать на экспертизу…").click()
    expect(provider.locator("#confirm-what")).to_contain_text("зафиксированы как версия 1")
    provider.get_by_role("button", name="Подать на экспертизу", exact=True).click()
    expect(flash(provider)).to_have_text("Программа подана на экспертизу.")
    expect(provider.locator("#program-state")).to_contain_text("Подана")

    # --- 4. The coordinator screens it and assigns experts: a dry run, then the plan. --------
    open_menu_link(coordinator, "Экспертиза", "Первичная проверка")
    coordinator.get_by_role("link", name=PROGRAM).click()
    expect(coordinator.locator("#program-state")).to_contain_text("Подана")
    coordinator.get_by_role("button", name="Принять на экспертизу").click()
    expect(flash(coordinator)).to_have_text("Программа принята на экспертизу.")
    expect(coordinator.locator("main")).to_contain_text(
        "Нет программ, ожидающих первичной проверки."
    )
    open_menu_link(coordinator, "Экспертиза", "Распределение")
    expect(coordinator.locator("h1")).to_have_text("Автоматическое распределение")
    coordinator.get_by_role("button", name="Пробный расчёт").click()
    expect(coordinator.locator("#plan-summary")).to_have_text(
        "Заполнено мест: 2 из 2. Программ в плане: 1."
    )
    plan_row = coordinator.locator("#plan tbody tr", has_text=PROGRAM)
    planned = [name for name in EXPERTS if name in plan_row.inner_text()]
    assert len(planned) == 2, plan_row.inner_text()
    with portal.app.app_context():
        assert db.session.scalars(select(Assignment)).all() == [], "a dry run wrote assignments"
    audits["assignment plan"] = audit(coordinator)
    coordinator.get_by_role("button", name="Применить план").click()
    # Applying is a job: its page follows it to the end and tells what it did.
    expect(coordinator.locator("h1")).to_contain_text("Автоматическое распределение")
    expect(coordinator.locator("#job-status")).to_have_attribute("data-status", "done")
    expect(coordinator.locator("#job-result")).to_have_text(
        "Создано назначений: 2; заполнено мест: 2 из 2."
    )

    # --- 5. The first expert: two browser sessions, the first one saved by autosave only. ----
    first, second = planned
    expert = windows.open("expert-1")
    log_in(expert, EXPERTS[first][0], factories.PASSWORD)
    expert.get_by_role("link", name="Мои назначения", exact=True).click()
    row = expert.locator("#to-accept tr.assignment", has_text=PROGRAM)
    expect(row).to_be_visible()
    audits["assignments"] = audit(expert)
    row.get_by_role("button", name="Принять").click()
    expect(flash(expert)).to_contain_text("Вы приняли назначение.")
    expert.locator("#in-progress tr.assignment", has_text=PROGRAM).get_by_role(
        "link", name="Экспертный лист"
    ).click()
    expect(expert.locator("h1")).to_have_text(f"Экспертный лист: {PROGRAM}")
    audits["score sheet"] = audit(expert)
    score(expert, {c: FIRST[c] for c in FIRST_SESSION})
    expect(expert.locator("#save-indicator")).to_have_text(re.compile(r"^Сохранено в \d\d:\d\d$"))
    sheet_url = expert.url
    windows.close(expert)

    expert = windows.open("expert-1-again")
    log_in(expert, EXPERTS[first][0], factories.PASSWORD)
    expert.goto(sheet_url)
    for criterion in FIRST_SESSION:
        expect(
            expert.locator(f"#criterion-{criterion}").get_by_label("2 — выражен полностью")
        ).to_be_checked()
    expect(expert.locator("#criterion-B4").get_by_role("radio", checked=True)).to_have_count(0)
    score(expert, {c: v for c, v in FIRST.items() if c not in FIRST_SESSION})
    finish_sheet(expert, "Программа выстроена последовательно; рекомендую к включению.")
    expect(expert.locator("#sheet-totals")).to_contain_text("20 из 20 баллов")

    # --- 6. The second expert scores far lower; the third expert settles it. ----------------
    expert_2 = windows.open("expert-2")
    accept_and_open_sheet(expert_2, EXPERTS[second][0])
    score(expert_2, SECOND, comment="Раздел требует доработки: {criterion}.")
    # Submitted too early: the sheet says what is missing, next to the fields.
    expert_2.get_by_role("button", name="Отправить…", exact=True).click()
    expect(expert_2.locator("#sheet-errors")).to_contain_text(
        "Экспертный лист пока нельзя отправить: исправьте отмеченные поля."
    )
    expect(expert_2.locator("#sheet-error-list li")).to_have_text(
        [
            "Общие рекомендации — Напишите общие рекомендации.",
            "Отсутствие конфликта интересов — Подтвердите отсутствие конфликта интересов.",
        ]
    )
    expect(expert_2.locator("#error-confirmation")).to_have_text(
        "Подтвердите отсутствие конфликта интересов."
    )
    expect(expert_2.locator("#error-recommendations")).not_to_be_empty()
    audits["score sheet with errors"] = audit(expert_2)
    finish_sheet(expert_2, "Доработать условия реализации и оценочные материалы.")
    expect(expert_2.locator("#sheet-totals")).to_contain_text("13 из 20 баллов")
    windows.close(expert_2)

    coordinator.get_by_role("link", name="Координатор РМЦ", exact=True).click()
    expect(coordinator.locator("#in-reconciliation")).to_have_text("1")
    (third,) = [name for name in EXPERTS if name not in planned]
    expert_3 = windows.open("expert-3")
    accept_and_open_sheet(expert_3, EXPERTS[third][0], third_expert=True)
    score(expert_3, THIRD, comment="Уточнить режим занятий: {criterion}.")
    finish_sheet(expert_3, "Программа соответствует требованиям.")
    windows.close(expert_3)

    # --- 7. The coordinator confirms the computed decision and publishes the registry. ------
    open_menu_link(coordinator, "Экспертиза", "Решения")
    coordinator.get_by_role("link", name=PROGRAM).first.click()
    expect(coordinator.locator("#computed-decision")).to_have_text(
        "Рекомендована к включению в реестр"
    )
    audits["decision"] = audit(coordinator)
    expect(coordinator.locator("#resolution")).to_contain_text(
        "Оценки экспертов разошлись. Привлечён третий эксперт"
    )
    # The two closest totals count: the first expert's 20 and the third's 19.
    with portal.app.app_context():
        seats = {a.expert.full_name: a.seat for a in db.session.scalars(select(Assignment)).all()}
    assert seats[third] == 3
    expect(coordinator.locator("#counted")).to_have_text(f"Эксперт {seats[first]}, Эксперт 3")
    # (20 + 19) / 2 = 19.5 of 20.
    expect(coordinator.locator("#final-total")).to_contain_text("19,5 из 20 баллов (97,5 %)")
    coordinator.get_by_label(re.compile("^Рекомендована к включению в реестр")).check()
    coordinator.get_by_role("button", name="Принять решение…").click()
    expect(coordinator.locator("#confirm-what")).to_contain_text(
        "Будет выдано экспертное заключение с очередным номером года (сейчас — 67-"
    )
    audits["confirmation"] = audit(coordinator)
    coordinator.get_by_role("button", name="Принять решение и выдать заключение").click()
    expect(flash(coordinator)).to_have_text("Решение принято: Рекомендована к включению в реестр.")
    number_link = coordinator.locator("#conclusions-table tbody th a").first
    number = number_link.inner_text().removeprefix("№").strip()
    assert re.fullmatch(r"67-\d{4}-\d{5}", number), number

    coordinator.get_by_role("link", name="Реестр", exact=True).click()
    coordinator.get_by_role("link", name="Изменения, ожидающие публикации").click()
    expect(coordinator.locator("main")).to_contain_text(PROGRAM)
    coordinator.get_by_role("button", name="Опубликовать").click()
    expect(flash(coordinator)).to_contain_text(
        "Опубликована публикация № 1 реестра «Сертифицированные программы»: 2 записи."
    )

    # --- 8. The provider reads the decision and downloads the conclusion. -------------------
    # The bell says what is new: the registration approved, the program accepted for
    # review and the decision, all unread.
    provider.goto("/home")
    expect(provider.locator("#nav-unread")).to_have_text("3")
    expect(provider.locator("#nav-bell")).to_have_attribute(
        "aria-label", "Уведомления: 3 непрочитанных"
    )
    provider.locator("#nav-bell").click()
    expect(provider.locator("h1")).to_have_text("Уведомления")
    expect(provider.locator("#notifications li").first).to_contain_text(
        f"Решение по вашей программе: {PROGRAM}"
    )
    audits["notifications"] = audit(provider)
    # Opening it marks it read and leads to the program.
    provider.get_by_role("button", name=f"Решение по вашей программе: {PROGRAM}").click()
    expect(provider).to_have_url(re.compile(rf"/programs/{program_id}$"))
    expect(provider.locator("#nav-unread")).to_have_text("2")
    expect(provider.locator("#program-state")).to_contain_text("Рекомендована к включению в реестр")
    audits["program"] = audit(provider)
    provider.get_by_role("link", name="Результат экспертизы, 1-й круг").click()
    expect(provider.locator("#decision-text")).to_have_text("Рекомендована к включению в реестр")
    audits["result"] = audit(provider)
    for n in (1, 2, 3):
        expect(provider.locator("#result-scores thead")).to_contain_text(f"Эксперт {n}")
    page_text = provider.locator("main").inner_text()
    assert not [name for name in EXPERTS if name in page_text], "expert names shown"
    provider_pdf = pdf_bytes_of_link(
        provider, provider.get_by_role("link", name="Открыть документ (PDF)")
    )

    # --- 9. Anyone: the registry, a filter, the verification page and the PDF. -------------
    visitor = windows.open("visitor")
    visitor.goto("/")
    visitor.get_by_role("link", name="Реестр", exact=True).click()
    entries = visitor.locator("#entries tbody tr")
    expect(entries).to_have_count(2)
    visitor.get_by_label("Направленность").select_option(label="Техническая")
    visitor.get_by_label("Муниципальное образование").select_option(label=MUNICIPALITY)
    visitor.get_by_role("button", name="Найти").click()
    expect(entries).to_have_count(1)
    expect(entries.first.locator(".registry-title")).to_have_text(PROGRAM)
    audits["registry"] = audit(visitor)
    entries.first.get_by_role("link", name=re.compile(re.escape(number))).click()
    expect(visitor.locator("h1")).to_have_text(f"Экспертное заключение № {number}")
    expect(visitor.locator("#status-valid")).to_have_text("Заключение действительно и действует.")
    expect(visitor.locator("#program-title")).to_have_text(PROGRAM)
    audits["verification"] = audit(visitor)
    shown_sha256 = visitor.locator("#file-sha256").inner_text().strip()
    public_pdf = pdf_bytes_of_link(
        visitor, visitor.get_by_role("link", name="Открыть документ (PDF)")
    )
    assert hashlib.sha256(public_pdf).hexdigest() == shown_sha256

    with portal.app.app_context():
        review_id = db.session.get(Program, program_id).current_review_id
    return Season(
        program_id=program_id,
        review_id=review_id,
        number=number,
        initial_experts=planned,
        third_expert=third,
        provider_pdf=provider_pdf,
        public_pdf=public_pdf,
        audits=audits,
    )


def accept_and_open_sheet(page, email: str, third_expert: bool = False) -> None:
    """Log in as the expert, accept the program's assignment and open its score sheet."""
    log_in(page, email, factories.PASSWORD)
    page.get_by_role("link", name="Мои назначения", exact=True).click()
    row = page.locator("#to-accept tr.assignment", has_text=PROGRAM)
    if third_expert:
        expect(row).to_contain_text("Третий эксперт")
    row.get_by_role("button", name="Принять").click()
    expect(flash(page)).to_contain_text("Вы приняли назначение.")
    page.locator("#in-progress tr.assignment", has_text=PROGRAM).get_by_role(
        "link", name="Экспертный лист"
    ).click()
    expect(page.locator("h1")).to_have_text(f"Экспертный лист: {PROGRAM}")


def finish_sheet(page, recommendations: str) -> None:
    page.get_by_label("Общие рекомендации").fill(recommendations)
    page.locator("#confirmed").check()
    page.get_by_role("button", name="Отправить…", exact=True).click()
    expect(page.locator("#confirm-what")).to_contain_text("лист будет заблокирован")
    page.get_by_role("button", name="Отправить экспертный лист").click()
    expect(flash(page)).to_have_text("Экспертный лист отправлен.")
    expect(page.locator("#sheet-status")).to_have_text("Отправлен")


def test_season_leaves_the_program_admitted_and_published(season: Season, portal: Portal):
    with portal.app.app_context():
        program = db.session.get(Program, season.program_id)
        assert program.state == ReviewState.ADMITTED
        assert program.organization.status == AccountStatus.APPROVED
        review = program.current_review
        assert review.decision == Decision.ADMITTED
        assert review.divergent
        roles = sorted(
            (a.role, a.expert.full_name)
            for a in db.session.scalars(select(Assignment).where(Assignment.review_id == review.id))
        )
        assert roles == sorted(
            [(AssignmentRole.INITIAL, name) for name in season.initial_experts]
            + [(AssignmentRole.THIRD, season.third_expert)]
        )
        sheets = {a.expert.full_name: a.sheet for a in review.assignments}
        assert all(sheet.submitted_at is not None for sheet in sheets.values())
        first = sheets[season.initial_experts[0]]
        assert {s.criterion_id: s.value for s in first.scores} == FIRST
        conclusion = db.session.scalars(
            select(Conclusion).where(Conclusion.number == season.number)
        ).one()
        entry = db.session.scalars(
            select(RegistryEntry).where(RegistryEntry.program_id == program.id)
        ).one()
        assert entry.conclusion_id == conclusion.id
        assert entry.registry_number is not None


def test_conclusion_downloads_are_the_stored_pdf(season: Season, portal: Portal):
    from review_portal.conclusions.services import stored_pdf

    with portal.app.app_context():
        conclusion = db.session.scalars(
            select(Conclusion).where(Conclusion.number == season.number)
        ).one()
        stored = stored_pdf(conclusion)
        sha256 = conclusion.sha256
    assert stored.startswith(b"%PDF")
    assert season.provider_pdf == stored
    assert season.public_pdf == stored
    assert hashlib.sha256(stored).hexdigest() == sha256


#: The pages the issue names first, then the other pages of the journey.
AUDITED = (
    "login",
    "registry",
    "program",
    "score sheet",
    "verification",
    "score sheet with errors",
    "registration",
    "assignments",
    "assignment plan",
    "decision",
    "confirmation",
    "notifications",
    "result",
)


def test_no_page_broke_the_content_security_policy(season: Season, windows: Windows):
    """Every page of the journey works under the portal's policy (no inline script or
    style, nothing from elsewhere): the browser refused nothing."""
    assert windows.csp_violations == []


@pytest.mark.parametrize("page_name", AUDITED)
def test_page_has_no_serious_accessibility_violations(season: Season, page_name: str, request):
    audited = season.audits[page_name]
    if audited.violations:
        audited.save(artifacts_folder(request.node.nodeid))
        pytest.fail(describe_violations(page_name, audited), pytrace=False)
