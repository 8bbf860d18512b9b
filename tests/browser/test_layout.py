"""Layout at a common laptop width (1366 px), measured in a real browser: the staff's
navigation bar keeps to two rows and its menus open from the keyboard; the program card in
the score sheet's side column never runs a label into its value."""

from __future__ import annotations

import pytest

from review_portal.extensions import db
from tests import factories
from tests.browser.helpers import expect, log_in

WIDTH, HEIGHT = 1366, 800
COORDINATOR_EMAIL = "layout-coordinator@example.org"


@pytest.fixture(scope="module")
def people(portal):
    """A coordinator and an expert with a program to score (ids and e-mails)."""
    with portal.app.app_context():
        factories.AdminFactory(email=COORDINATOR_EMAIL)
        review, (assignment,) = factories.scored_review(factories.points(2), submit=False)
        db.session.commit()
        return {"expert": assignment.expert.email, "assignment": assignment.id}


def wide_page(windows, name):
    page = windows.open(name)
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    return page


def test_the_staff_bar_keeps_to_two_rows_and_opens_by_keyboard(windows, people):
    page = wide_page(windows, "coordinator")
    log_in(page, COORDINATOR_EMAIL, factories.PASSWORD)
    page.goto("/coordinator")
    links = page.locator("#nav > ul.navbar-nav > li.nav-item")
    tops = {round(box["y"]) for box in (links.nth(i).bounding_box() for i in range(links.count()))}
    assert len(tops) <= 2, f"the bar's entries lie on {len(tops)} rows"
    # Keyboard only: focus the menu's button, open it, move to its first link, follow it.
    button = page.get_by_role("button", name="Экспертиза", exact=True)
    button.focus()
    page.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("link", name="Первичная проверка", exact=True)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{windows.portal.url}/screening")


def test_the_program_card_beside_the_sheet_keeps_labels_off_values(windows, people):
    page = wide_page(windows, "expert")
    log_in(page, people["expert"], factories.PASSWORD)
    page.goto(f"/sheets/{people['assignment']}")
    card = page.locator("dl.program-card")
    labels, values = card.locator("dt"), card.locator("dd")
    assert labels.count() == values.count() > 10
    for i in range(labels.count()):
        label, value = labels.nth(i).bounding_box(), values.nth(i).bounding_box()
        apart = (
            label["x"] + label["width"] <= value["x"] + 0.5
            or label["y"] + label["height"] <= value["y"] + 0.5
        )
        assert apart, f"{labels.nth(i).inner_text()!r} overlaps its value"
        # Nothing inside the label is wider than the label itself.
        assert labels.nth(i).evaluate("e => e.scrollWidth <= e.clientWidth + 1")
