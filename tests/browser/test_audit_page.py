"""The audit log in a real browser at 1366 px: a coordinator reads a varied log as sentences,
filters it by kind of event through the form, opens a record's raw details; the table fits
the window (no scrolling region) and axe-core finds no serious or critical violation.

The records are written with the services before the browser starts (a decided review and
its conclusion, a setting, a change of roles, sign-ins) plus a few written directly: an old
action nobody describes and a long reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from review_portal.accounts.services import update_user
from review_portal.audit.services import record_event
from review_portal.enums import Role
from review_portal.extensions import db
from review_portal.reviews.services import decide_review
from review_portal.settings.services import set_setting
from tests import factories
from tests.browser.helpers import (
    Audit,
    Portal,
    Windows,
    artifacts_folder,
    audit,
    describe_violations,
    expect,
    log_in,
)

PROGRAM = "Юный исследователь природы родного края"
COORDINATOR = ("Ковалёва Ирина Петровна", "kovaleva@rmc67.example")


@dataclass
class Seen:
    program_id: int
    conclusion_number: str
    audits: dict[str, Audit] = field(default_factory=dict)
    overflow: dict[str, int] = field(default_factory=dict)
    screenshot: Path | None = None


def prepare(portal: Portal) -> tuple[int, str]:
    with portal.app.app_context():
        name, email = COORDINATOR
        coordinator = factories.CoordinatorFactory(full_name=name, email=email)
        review, _ = factories.scored_review(
            factories.with_total(8), factories.with_total(8), title=PROGRAM
        )
        decide_review(review, coordinator, review.computed_decision)
        set_setting("deadline_working_days", 12, coordinator)
        admin = factories.AdminFactory(full_name="Петров Сергей Иванович")
        user = factories.UserFactory(full_name="Орлова Анна Викторовна", roles=[Role.EXPERT])
        update_user(
            user,
            admin,
            full_name=user.full_name,
            roles=[Role.EXPERT, Role.COORDINATOR],
            active=True,
            municipality_id=None,
            organization_id=None,
        )
        record_event(
            "legacy.import_note",
            object_type="widget",
            object_id="7",
            after={"note": "Старая запись без описания " + "очень длинное значение " * 40},
        )
        record_event(
            "expert.suspend",
            actor=coordinator,
            object_type="user",
            object_id=review.assignments[0].expert_id,
            before={"suspended": False},
            after={"suspended": True, "reason": "Длительная командировка " * 20},
        )
        db.session.commit()
        return review.program_id, review.conclusions[-1].number


@pytest.fixture(scope="module")
def seen(portal: Portal, windows: Windows, tmp_path_factory) -> Seen:
    program_id, number = prepare(portal)
    result = Seen(program_id, number)
    page = windows.open("coordinator")
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, COORDINATOR[1], factories.PASSWORD)

    page.goto("/audit/")
    expect(page.locator("h1")).to_have_text("Журнал аудита")
    decision = page.locator(".audit-sentence", has_text="— решение по программе")
    expect(decision).to_have_text(
        f"Ковалёва И. П. — решение по программе «{PROGRAM}»: не рекомендована"
    )
    result.overflow["all"] = page.evaluate(
        "() => { const r = document.querySelector('.table-responsive');"
        " return r.scrollWidth - r.clientWidth; }"
    )
    result.audits["all events"] = audit(page)
    result.screenshot = tmp_path_factory.mktemp("audit") / "audit-1366.png"
    page.screenshot(path=str(result.screenshot), full_page=True)

    # The raw record of the decision, as it was written.
    row = page.locator("tr.audit-event", has=decision)
    row.get_by_text("Подробности").click()
    expect(row.locator("code", has_text="review.decide")).to_be_visible()
    expect(row.locator("pre.audit-raw").first).to_contain_text('"computed_decision"')
    result.audits["details open"] = audit(page)

    # Only the decisions and conclusions, through the form.
    page.get_by_label("Вид события").select_option(label="Решения и заключения")
    page.get_by_role("button", name="Показать").click()
    expect(page.locator(".audit-sentence", has_text="выдача заключения")).to_have_text(
        f"Ковалёва И. П. — выдача заключения № {number} по программе «{PROGRAM}»"
    )
    expect(page.locator(".audit-sentence", has_text="вход в портал")).to_have_count(0)
    expect(page.locator(".audit-sentence", has_text="изменение настройки")).to_have_count(0)
    result.audits["filtered"] = audit(page)
    return result


def test_the_log_reads_in_words_and_fits_1366_px(seen: Seen):
    assert seen.overflow["all"] <= 0, f"the table is {seen.overflow['all']} px too wide"
    assert seen.screenshot is not None and seen.screenshot.stat().st_size > 10_000


def test_the_conclusion_link_opens_its_verification_page(seen: Seen, windows: Windows):
    page = windows.open("coordinator again")
    log_in(page, COORDINATOR[1], factories.PASSWORD)
    page.goto("/audit/?group=decisions")
    page.get_by_role("link", name=f"№ {seen.conclusion_number}").first.click()
    expect(page).to_have_url(f"{windows.portal.url}/verify/{seen.conclusion_number}")
    page.go_back()
    page.get_by_role("link", name=f"«{PROGRAM}»").first.click()
    expect(page).to_have_url(f"{windows.portal.url}/programs/{seen.program_id}")


@pytest.mark.parametrize("page_name", ["all events", "details open", "filtered"])
def test_audit_page_has_no_serious_accessibility_violations(seen: Seen, page_name, request):
    audited = seen.audits[page_name]
    if audited.violations:
        audited.save(artifacts_folder(request.node.nodeid))
        pytest.fail(describe_violations(page_name, audited), pytrace=False)
