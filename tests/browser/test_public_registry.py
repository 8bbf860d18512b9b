"""The public registry in a real browser, as a parent on a laptop and on a phone sees it:

1. on a 1366 px screen the registry's table fits the page (nothing scrolls sideways, the
   table's own box included), and on a 390 px phone the entries are cards that fit too;
2. the parent opens an entry's public page from the table: the annotation, the ages, the
   provider's contacts and the link to verify the conclusion;
3. axe-core finds no serious or critical violation on the registry and the entry page.

The programs are written with the services before the browser starts (long titles and
names, as real ones are), and the registry is published.
"""

from __future__ import annotations

import re

import pytest

from review_portal.enums import Direction, RegistryKind, StudyForm
from review_portal.extensions import db
from review_portal.registry.services import publish_registry
from tests import factories
from tests.browser.helpers import Portal, Windows, audit, describe_violations, expect

PROGRAM = "Юные исследователи природы родного края: экологическая мастерская для младших школьников"
ANNOTATION = "Дети изучают растения и животных своего края, ведут дневник наблюдений."
PROVIDER = "МБУ ДО «Центр детского творчества и экологического образования имени В. И. Вернадского»"


def prepare(portal: Portal) -> None:
    with portal.app.app_context():
        coordinator = factories.CoordinatorFactory()
        municipality = factories.MunicipalityFactory(
            name="Муниципальное образование «Вяземский район»"
        )
        organization = factories.OrganizationFactory(
            short_name=PROVIDER,
            municipality=municipality,
            address="215110, Смоленская обл., г. Вязьма, ул. Ленина, д. 25",
            phone="+7 (48131) 4-12-34",
            website="https://cdt-vyazma.example",
        )
        factories.admitted_program(
            coordinator=coordinator,
            organization=organization,
            title=PROGRAM,
            annotation=ANNOTATION,
            direction=Direction.NATURAL_SCIENCE,
            adapted_for_disabilities=True,
        )
        for n, direction in enumerate(
            [
                Direction.TECHNICAL,
                Direction.ARTS,
                Direction.SOCIAL_HUMANITARIAN,
                Direction.TOURISM_LOCAL_HISTORY,
            ]
            * 2
        ):
            factories.admitted_program(
                coordinator=coordinator,
                title=f"Программа дополнительного образования с длинным названием № {n + 1}",
                direction=direction,
                study_form=StudyForm.FULL_TIME,
            )
        publish_registry(RegistryKind.CERTIFIED, coordinator)
        db.session.commit()


def widths(page) -> dict:
    """The document's width and the registry table's box: what scrolls sideways."""
    return page.evaluate(
        """() => {
          const box = document.querySelector('#entries').parentElement;
          return {
            viewport: window.innerWidth,
            document: document.documentElement.scrollWidth,
            table: box.scrollWidth,
            box: box.clientWidth,
          };
        }"""
    )


@pytest.fixture(scope="module")
def visitor(portal: Portal, windows: Windows):
    prepare(portal)
    return windows.open("parent")


def test_the_registry_fits_a_laptop_and_a_phone(visitor):
    visitor.set_viewport_size({"width": 1366, "height": 900})
    visitor.goto("/registry")
    expect(visitor.locator("#entries tbody tr")).to_have_count(9)
    laptop = widths(visitor)
    assert laptop["document"] <= laptop["viewport"], laptop
    assert laptop["table"] <= laptop["box"], laptop
    # Every entry shows its conclusion and its dates without scrolling.
    row = visitor.locator("#entries tbody tr", has_text=PROGRAM)
    expect(row.locator(".conclusion-link")).to_be_in_viewport()
    expect(row.locator(".valid-until")).to_be_visible()

    visitor.set_viewport_size({"width": 390, "height": 844})
    visitor.goto("/registry")
    phone = widths(visitor)
    assert phone["document"] <= 390, phone
    assert phone["table"] <= phone["box"], phone
    card = visitor.locator("#entries tbody tr", has_text=PROGRAM)
    for part in (
        ".registry-number",
        ".registry-title",
        ".registry-municipality",
        ".conclusion-link",
        ".valid-until",
    ):
        expect(card.locator(part)).to_be_visible()
    text = card.inner_text()
    for shown in (PROVIDER, "Естественнонаучная", "лет", "Вяземский район"):
        assert shown in text, (shown, text)
    # A card is a block as wide as the page, not a table row.
    box = card.bounding_box()
    assert box["width"] <= 390 and box["height"] > 100, box


def test_a_parent_opens_an_entry_from_the_table(visitor):
    visitor.set_viewport_size({"width": 1366, "height": 900})
    visitor.goto("/registry")
    registry_audit = audit(visitor)
    assert not registry_audit.violations, describe_violations("registry", registry_audit)
    visitor.locator("#entries").get_by_role("link", name=PROGRAM).click()
    expect(visitor).to_have_url(re.compile(r"/registry/\d\d-%D0%A1-\d{6}$"))
    expect(visitor.locator("h1")).to_have_text(PROGRAM)
    expect(visitor.locator("#entry-annotation")).to_have_text(ANNOTATION)
    expect(visitor.locator("#entry-ovz")).to_have_text("да")
    expect(visitor.locator("#provider-name")).to_have_text(PROVIDER)
    expect(visitor.locator("#provider-phone a")).to_have_attribute("href", "tel:+74813141234")
    expect(visitor.locator("#provider-website a")).to_have_attribute(
        "href", "https://cdt-vyazma.example"
    )
    entry_audit = audit(visitor)
    assert not entry_audit.violations, describe_violations("registry entry", entry_audit)
    visitor.set_viewport_size({"width": 390, "height": 844})
    assert visitor.evaluate("document.documentElement.scrollWidth") <= 390
    visitor.locator("#entry-verify").click()
    expect(visitor.locator("#status")).to_contain_text("действительно")
