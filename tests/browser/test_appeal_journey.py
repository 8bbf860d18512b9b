"""An appeal in a real browser, each person in their own session, every step through the
portal's pages and checked as the person sees it (in Russian):

1. the provider of a rejected program opens the result, files an appeal with reasons for two
   criteria;
2. the coordinator finds it under «Апелляции», accepts it after the confirmation page: a
   panel of two experts who never scored the program is assigned;
3. each panel expert accepts, reads the provider's reasons and the original scores without
   names, scores the contested criteria only and submits;
4. the coordinator upholds the appeal (the panel's computed decision) after the confirmation;
5. the provider's bell counts the unread notifications; opening the newest leads to the
   appeal page, where the new conclusion downloads;
6. anyone opens the verification page of the old conclusion: «Заменено» with the new number.

Only what is nobody's step here (the decided review, its experts, the panel's experts, the
coordinator) is written with the services before the browser starts.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

import pytest
from sqlalchemy import func, select

from review_portal.appeals.models import Appeal
from review_portal.conclusions.models import Conclusion
from review_portal.enums import AppealState, ConclusionStatus, Decision, Direction
from review_portal.extensions import db
from review_portal.notifications.models import Notification
from review_portal.reviews.services import decide_review
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

PROGRAM = "Мир электроники: от схемы к устройству"
PROVIDER_EMAIL = "ivanova@elektron.example"
COORDINATOR_EMAIL = "appeals@rmc67.example"
PANEL = {
    "Крылова Марина Олеговна": "krylova@experts.example",
    "Лебедев Игорь Павлович": "lebedev@experts.example",
}
REASONS = {
    "C1": "Цель и задачи программы сформулированы в разделе 1.2 пояснительной записки.",
    "D1": "Учебный план приведён в разделе 2; объём соответствует заявленным 144 часам.",
}


@dataclass
class Journey:
    appeal_id: int
    old_number: str
    new_number: str
    original_experts: list[str]
    provider_pdf: bytes
    audits: dict[str, Audit] = field(default_factory=dict)


def prepare(portal: Portal) -> tuple[int, int, str, list[str]]:
    """A rejected program (two sheets of 8 of 20) with its conclusion issued, the panel's
    experts, the coordinator and the provider's account."""
    with portal.app.app_context():
        coordinator = factories.CoordinatorFactory(email=COORDINATOR_EMAIL)
        review, assignments = factories.scored_review(
            factories.with_total(8), factories.with_total(8), title=PROGRAM
        )
        decide_review(review, coordinator, review.computed_decision)
        assert review.decision == Decision.REJECTED
        factories.ApplicantFactory(organization=review.program.organization, email=PROVIDER_EMAIL)
        for name, email in PANEL.items():
            factories.expert(directions=[Direction.TECHNICAL], email=email, full_name=name)
        db.session.commit()
        return (
            review.id,
            review.conclusions[-1].id,
            review.conclusions[-1].number,
            [a.expert.full_name for a in assignments],
        )


@pytest.fixture(scope="module")
def journey(portal: Portal, windows: Windows) -> Journey:
    review_id, conclusion_id, old_number, original_experts = prepare(portal)
    audits: dict[str, Audit] = {}

    # --- 1. The provider files the appeal. ------------------------------------------------
    provider = windows.open("provider")
    log_in(provider, PROVIDER_EMAIL, factories.PASSWORD)
    provider.goto(f"/reviews/{review_id}/result")
    provider.get_by_role("link", name=re.compile(r"^Подать апелляцию \(до ")).click()
    expect(provider.locator("h1")).to_have_text(f"Апелляция на заключение № {old_number}")
    audits["appeal form"] = audit(provider)
    provider.get_by_role("button", name="Подать апелляцию").click()
    expect(provider.locator("#appeal-error")).to_have_text(
        "Изложите доводы хотя бы по одному оспариваемому критерию."
    )
    for criterion, text in REASONS.items():
        provider.locator(f"#reason_{criterion}").fill(text)
    provider.get_by_role("button", name="Подать апелляцию").click()
    expect(flash(provider)).to_contain_text(f"Апелляция на заключение № {old_number} подана.")
    expect(provider.locator("#appeal-state")).to_have_text("Подана, ожидает решения центра")

    # --- 2. The coordinator accepts it. ---------------------------------------------------
    coordinator = windows.open("coordinator")
    log_in(coordinator, COORDINATOR_EMAIL, factories.PASSWORD)
    open_menu_link(coordinator, "Экспертиза", "Апелляции")
    coordinator.locator("#appeals-table").get_by_role("link", name=PROGRAM).click()
    expect(coordinator.locator("#appeal-arguments")).to_contain_text(REASONS["C1"])
    audits["appeal"] = audit(coordinator)
    coordinator.get_by_role("button", name="Принять апелляцию…").click()
    expect(coordinator.locator("#confirm-what")).to_contain_text(
        "Коллегия оценивает оспариваемые критерии: C1, D1."
    )
    coordinator.get_by_role("button", name="Принять апелляцию", exact=True).click()
    expect(flash(coordinator)).to_have_text("Апелляция принята; назначено экспертов в коллегию: 2.")

    # --- 3. The panel scores the contested criteria. --------------------------------------
    for name, email in PANEL.items():
        expert = windows.open(name)
        log_in(expert, email, factories.PASSWORD)
        expert.get_by_role("link", name="Мои назначения", exact=True).click()
        expert.locator("#to-accept tr.assignment", has_text=PROGRAM).get_by_role(
            "button", name="Принять"
        ).click()
        expect(flash(expert)).to_contain_text("Вы приняли назначение.")
        expert.locator("#in-progress tr.assignment", has_text=PROGRAM).get_by_role(
            "link", name="Экспертный лист"
        ).click()
        expect(expert.locator("#appeal-context-C1")).to_contain_text(REASONS["C1"])
        expect(expert.locator("#appeal-context-C1")).to_contain_text("Эксперт 1: 0")
        expect(expert.locator("#criterion-A1")).to_contain_text("Не оспаривается")
        text = expert.locator("main").inner_text()
        assert not [n for n in original_experts if n in text], "original experts named"
        if "panel sheet" not in audits:
            audits["panel sheet"] = audit(expert)
        score(expert, {"C1": 2, "D1": 2})
        expert.get_by_label("Общие рекомендации").fill("Доводы организации обоснованы.")
        expert.locator("#confirmed").check()
        expert.get_by_role("button", name="Отправить…", exact=True).click()
        expert.get_by_role("button", name="Отправить экспертный лист").click()
        expect(flash(expert)).to_have_text("Экспертный лист отправлен.")

    # --- 4. The coordinator upholds the appeal. -------------------------------------------
    coordinator.reload()
    expect(coordinator.locator("#appeal-panel")).to_contain_text("Ожидает решения")
    expect(coordinator.locator("#decision")).to_have_value("revision_required")
    coordinator.get_by_role("button", name="Принять решение…").click()
    expect(coordinator.locator("#confirm-what")).to_contain_text("Апелляция будет удовлетворена")
    audits["appeal confirmation"] = audit(coordinator)
    coordinator.get_by_role("button", name="Подтвердить решение по апелляции").click()
    expect(flash(coordinator)).to_contain_text("Апелляция удовлетворена; выдано заключение №")
    new_number = coordinator.locator("#appeal-new-conclusion a").first.inner_text()
    new_number = new_number.removeprefix("№").strip()
    assert re.fullmatch(r"00-\d{4}-\d{5}", new_number), new_number

    # --- 5. The provider: the bell, the notification, the new conclusion. -----------------
    with portal.app.app_context():
        from review_portal.accounts.models import User

        unread = db.session.execute(
            select(func.count())
            .select_from(Notification)
            .join(User, Notification.user_id == User.id)
            .where(Notification.read_at.is_(None), User.email == PROVIDER_EMAIL)
        ).scalar_one()
    # Accepted, then upheld (the provider's account was made after the first decision).
    assert unread == 2
    provider.goto("/home")
    expect(provider.locator("#nav-unread")).to_have_text(str(unread))
    provider.locator("#nav-bell").click()
    newest = provider.locator("#notifications li").first
    expect(newest).to_contain_text(f"Апелляция удовлетворена: {PROGRAM}")
    newest.get_by_role("button").first.click()
    expect(provider).to_have_url(re.compile(r"/appeals/\d+$"))
    expect(provider.locator("#nav-unread")).to_have_text(str(unread - 1))
    expect(provider.locator("#appeal-state")).to_have_text("Удовлетворена")
    provider_pdf = pdf_bytes_of_link(provider, provider.locator("#new-conclusion-pdf"))

    # --- 6. The old conclusion's verification page. ---------------------------------------
    visitor = windows.open("visitor")
    visitor.goto(f"/verify/{old_number}")
    expect(visitor.locator("#status-superseded")).to_contain_text(
        f"Заменено заключением № {new_number}"
    )
    expect(visitor.locator("#status-superseded")).to_contain_text("по результатам апелляции")
    audits["verification of a superseded conclusion"] = audit(visitor)

    with portal.app.app_context():
        appeal_id = db.session.execute(select(Appeal.id)).scalar_one()
    return Journey(
        appeal_id=appeal_id,
        old_number=old_number,
        new_number=new_number,
        original_experts=original_experts,
        provider_pdf=provider_pdf,
        audits=audits,
    )


def test_appeal_is_upheld_and_the_new_conclusion_supersedes_the_old(
    journey: Journey, portal: Portal
):
    from review_portal.conclusions.services import stored_pdf

    with portal.app.app_context():
        appeal = db.session.get(Appeal, journey.appeal_id)
        assert appeal.state == AppealState.UPHELD
        assert appeal.contested == ["C1", "D1"]
        old = db.session.execute(
            select(Conclusion).where(Conclusion.number == journey.old_number)
        ).scalar_one()
        new = db.session.execute(
            select(Conclusion).where(Conclusion.number == journey.new_number)
        ).scalar_one()
        assert old.status == ConclusionStatus.SUPERSEDED and old.superseded_by_id == new.id
        assert new.decision == Decision.REVISION_REQUIRED
        panel = appeal.panel_review
        assert sorted(a.expert.full_name for a in panel.assignments) == sorted(PANEL)
        assert appeal.program.current_review_id == panel.id
        stored = stored_pdf(new)
    assert journey.provider_pdf == stored
    assert hashlib.sha256(stored).hexdigest() == new.sha256


def test_no_appeal_page_broke_the_content_security_policy(journey: Journey, windows: Windows):
    assert windows.csp_violations == []


@pytest.mark.parametrize(
    "page_name",
    [
        "appeal form",
        "appeal",
        "panel sheet",
        "appeal confirmation",
        "verification of a superseded conclusion",
    ],
)
def test_appeal_page_has_no_serious_accessibility_violations(
    journey: Journey, page_name: str, request
):
    audited = journey.audits[page_name]
    if audited.violations:
        audited.save(artifacts_folder(request.node.nodeid))
        pytest.fail(describe_violations(page_name, audited), pytrace=False)
