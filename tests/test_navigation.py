"""The navigation bar: the center's staff, who have about twenty links, get them grouped in
drop-down menus (so the bar keeps to two rows at 1366 px, see tests/browser/test_layout.py);
a user with few links gets them all in the bar."""

from __future__ import annotations

import re

import pytest

from tests import factories


@pytest.fixture(autouse=True)
def _english(english):
    return english


def top_level(page: str) -> list[str]:
    """The labels of the bar's own entries (links and menu buttons), in order."""
    nav = page.split('id="nav"', 1)[1].split('id="nav-registry"', 1)[0]
    nav = re.sub(r'<ul class="dropdown-menu".*?</ul>', "", nav, flags=re.S)
    return [
        label.strip()
        for label in re.findall(r'class="nav-link[^"]*"[^>]*>([^<]+)</(?:a|button)>', nav, re.S)
    ]


def menu(page: str, label: str) -> list[tuple[str, str]]:
    """``(label, href)`` of the drop-down menu ``label``."""
    match = re.search(
        r'data-bs-toggle="dropdown" aria-expanded="false">'
        + re.escape(label)
        + r'</button>\s*<ul class="dropdown-menu"[^>]*>(.*?)</ul>',
        page,
        re.S,
    )
    assert match, f"no menu {label!r}"
    return [
        (text.strip(), href)
        for href, text in re.findall(r'href="([^"]+)">([^<]+)</a>', match.group(1))
    ]


def test_staff_get_their_links_grouped_in_menus(client, auth, session):
    auth.login(factories.AdminFactory())
    session.commit()
    page = client.get("/coordinator").get_data(as_text=True)
    assert top_level(page) == [
        "Coordinator",
        "Expertise",
        "Programs and experts",
        "Analytics",
        "Administration",
    ]
    assert menu(page, "Expertise") == [
        ("Screening", "/screening"),
        ("Assignment", "/assignments/run"),
        ("Overdue", "/assignments/overdue"),
        ("Reconciliation", "/reconciliations"),
        ("Decisions", "/decisions"),
        ("Appeals", "/appeals"),
    ]
    assert [label for label, _ in menu(page, "Programs and experts")] == [
        "Programs",
        "Organizations",
        "Experts",
        "Rubrics",
        "Import",
    ]
    assert [label for label, _ in menu(page, "Administration")] == [
        "Registrations",
        "Users",
        "Audit log",
        "Jobs",
        "Settings",
    ]
    # The menu of the page open is marked, and the page's own link in it.
    page = client.get("/decisions").get_data(as_text=True)
    assert re.search(r'class="nav-link dropdown-toggle active"[^>]*>Expertise</button>', page)
    assert '<a class="dropdown-item active" aria-current="page"' in page


def test_an_expert_gets_a_flat_bar(client, auth, session):
    user = factories.expert()
    session.commit()
    auth.login(user)
    page = client.get("/expert").get_data(as_text=True)
    assert top_level(page) == ["My assignments", "History", "My profile"]
    assert "dropdown" not in page.split('id="nav"', 1)[1].split('id="nav-registry"', 1)[0]


def test_a_coordinator_who_is_an_expert_gets_the_experts_menu_too(client, auth, session):
    from review_portal.enums import Role

    user = factories.ExpertUserFactory(roles=[Role.EXPERT, Role.COORDINATOR])
    session.commit()
    auth.login(user)
    page = client.get("/coordinator").get_data(as_text=True)
    assert top_level(page)[-1] == "Expert's work"
    assert [label for label, _ in menu(page, "Expert's work")] == [
        "My assignments",
        "History",
        "My profile",
    ]
