"""The public page of one registry entry (``/registry/<number>``), the registry table's links
to it, and the public home page with the center's contacts.

The page shows the latest publication only: what the snapshot froze, the certified version's
annotation, the provider's contacts; never a draft, a pending entry or a removed one."""

from __future__ import annotations

import html as html_lib
import json
import re
from urllib.parse import quote

import pytest
from sqlalchemy import select

from review_portal.enums import RegistryEntryStatus, RegistryKind
from review_portal.extensions import db
from review_portal.registry.models import RegistrySnapshotItem
from review_portal.registry.queries import web_address
from review_portal.registry.services import exclude_program, publish_registry
from review_portal.settings.services import set_setting
from tests import factories

LD_JSON = re.compile(r'<script type="application/ld\+json">(.*?)</script>', re.S)


@pytest.fixture
def coordinator(session):
    return factories.CoordinatorFactory()


def published(coordinator, **fields):
    """An admitted program published in the certified registry: (program, item)."""
    program, conclusion, entry = factories.admitted_program(coordinator=coordinator, **fields)
    snapshot = publish_registry(RegistryKind.CERTIFIED, coordinator)
    item = db.session.execute(
        select(RegistrySnapshotItem).where(
            RegistrySnapshotItem.snapshot_id == snapshot.id,
            RegistrySnapshotItem.entry_id == entry.id,
        )
    ).scalar_one()
    return program, item


def page(client, url, status=200) -> str:
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)[:1500]
    return response.get_data(as_text=True)


def text_of(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</(?:dd|p|div|span|a|h1|strong)>', html, re.S)
    assert match, element_id
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


def test_entry_page_shows_what_a_parent_needs(client, coordinator):
    organization = factories.OrganizationFactory(
        short_name="МБУ ДО «Дом творчества»",
        address="214000, г. Смоленск, ул. Ленина, д. 5",
        phone="+7 (4812) 38-00-00",
        website="dom-tvorchestva.example",
    )
    program, item = published(
        coordinator,
        organization=organization,
        title="Юный конструктор",
        annotation="Дети собирают модели.\nВторой абзац.",
        age_min=8,
        age_max=12,
        total_hours=144,
        adapted_for_disabilities=True,
    )
    html = page(client, f"/registry/{item.registry_number}")
    assert text_of(html, "entry-title") == "Юный конструктор"
    assert "Дети собирают модели.\nВторой абзац." in html
    assert text_of(html, "entry-ages") == "8–12 лет"
    assert text_of(html, "entry-hours").startswith("144")
    assert text_of(html, "entry-direction") == item.direction.label
    assert text_of(html, "entry-level") == item.level.label
    assert text_of(html, "entry-form") == item.study_form.label
    assert text_of(html, "entry-ovz") == "да"
    assert text_of(html, "entry-municipality") == item.municipality_name
    assert text_of(html, "provider-name") == "МБУ ДО «Дом творчества»"
    assert text_of(html, "provider-address") == "214000, г. Смоленск, ул. Ленина, д. 5"
    assert 'href="tel:+74812380000"' in html
    assert 'href="https://dom-tvorchestva.example"' in html
    assert f'href="/verify/{item.conclusion_number}"' in html
    assert text_of(html, "entry-valid-until") == item.valid_until.strftime("%d.%m.%Y")

    data = json.loads(LD_JSON.search(html).group(1))
    assert data["@type"] == "Course"
    assert data["name"] == "Юный конструктор"
    assert data["courseCode"] == item.registry_number
    assert data["typicalAgeRange"] == "8-12"
    assert data["provider"]["@type"] == "EducationalOrganization"
    assert data["provider"]["telephone"] == "+7 (4812) 38-00-00"
    assert data["provider"]["url"] == "https://dom-tvorchestva.example"
    assert data["url"] == f"http://127.0.0.1:5000/registry/{quote(item.registry_number)}"


def test_structured_data_cannot_close_its_script(client, coordinator):
    title = "Программа </script><script>alert(1)</script> & «кавычки»"
    _, item = published(coordinator, title=title, annotation="</SCRIPT><!-- x")
    html = page(client, f"/registry/{item.registry_number}")
    block = LD_JSON.search(html).group(1)
    assert "<" not in block and ">" not in block
    data = json.loads(block)
    assert data["name"] == title
    assert data["description"] == "</SCRIPT><!-- x"
    assert "<script>alert(1)" not in html


def test_entry_page_shows_the_published_data_not_later_edits(client, coordinator):
    program, item = published(coordinator, title="Опубликованное название")
    program.title = "Черновик нового названия"
    program.annotation = "Черновик аннотации"
    db.session.flush()
    html = page(client, f"/registry/{item.registry_number}")
    assert "Опубликованное название" in html
    assert "Черновик" not in html


def test_table_titles_link_to_the_entry_pages(client, coordinator):
    _, item = published(coordinator, title="Шахматная школа")
    html = page(client, "/registry")
    href = f"/registry/{quote(item.registry_number)}"
    link = f'<a class="registry-title" href="{href}">Шахматная школа</a>'
    assert link in html
    # A past publication's rows do not link: the entry may have left the registry since.
    factories.admitted_program(coordinator=coordinator, title="Вторая программа")
    publish_registry(RegistryKind.CERTIFIED, coordinator)
    past = page(client, f"/registry?snapshot={item.snapshot_id}")
    assert 'class="registry-title" href=' not in past
    assert '<span class="registry-title">Шахматная школа</span>' in past


def test_pending_and_removed_entries_have_no_page(client, coordinator):
    program, item = published(coordinator, title="Уходящая программа")
    assert client.get(f"/registry/{item.registry_number}").status_code == 200
    exclude_program(program.current_review, coordinator, "Нарушены условия")
    # Still published until the next publication.
    assert client.get(f"/registry/{item.registry_number}").status_code == 200
    factories.admitted_program(coordinator=coordinator, title="Ожидающая программа")
    publish_registry(RegistryKind.CERTIFIED, coordinator)
    html = page(client, f"/registry/{item.registry_number}", 404)
    assert "Программа не найдена в реестре" in html
    # A pending entry has no number yet, and nothing the public can guess reaches it.
    _, _, pending = factories.admitted_program(
        coordinator=coordinator, title="Новая неопубликованная"
    )
    db.session.flush()
    assert pending.status == RegistryEntryStatus.PENDING_INCLUSION
    assert pending.registry_number is None  # numbered at its publication, not before
    for number in ("00-С-000003", "00-С-000004"):
        assert "Новая неопубликованная" not in client.get(f"/registry/{number}").get_data(
            as_text=True
        )


@pytest.mark.parametrize(
    "number",
    [
        "9" * 20,
        "00-С-" + "9" * 30,
        "x1" * 250,
        "00-%D0%A1-000001%20",
        "%E2%80%AE1",
        "٢",
        "-1",
        "null0",
    ],
)
def test_unknown_or_malformed_numbers_answer_a_russian_404(client, coordinator, number):
    published(coordinator)
    html = page(client, f"/registry/{number}", 404)
    assert "Программа не найдена в реестре" in html
    assert "x1" * 17 not in text_of(html, "not-found")  # the number shown is cut


@pytest.mark.parametrize("word", ["x" * 500, "%E2%80%AE", "null"])
def test_a_segment_without_a_digit_is_no_registry_number(client, coordinator, word):
    """Registry numbers have digits, the registry's own pages none: such a URL is not an
    entry's (the application's 404)."""
    published(coordinator)
    response = client.get(f"/registry/{word}")
    assert response.status_code == 404
    assert "Программа не найдена в реестре" not in response.get_data(as_text=True)


@pytest.mark.parametrize("number", ["1a%00b", "%001", "00-С-00000%1b1"])
def test_control_characters_in_the_number_are_refused(client, number):
    response = client.get(f"/registry/{number}")
    assert response.status_code == 400
    assert "недопустимые символы" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("text", "href"),
    [
        ("https://dom.example/kruzhki", "https://dom.example/kruzhki"),
        ("dom.example", "https://dom.example"),
        ("javascript:alert(1)", None),
        ("http://localhost", None),
        ("dom example.ru", None),
        ("site.ru]", None),
        ("[x.y", None),
        ("https://[::1", None),
        ("", None),
        (None, None),
    ],
)
def test_web_address_links_only_web_addresses(text, href):
    assert web_address(text) == href


# --- the public home page ---------------------------------------------------------------


def test_home_page_links_the_registry_verification_and_the_contacts(client, coordinator):
    html = page(client, "/")
    assert 'href="/registry"' in html and 'href="/verify"' in html
    assert 'id="center-contacts-missing"' in html
    set_setting("center_name", "РМЦ Смоленской области", coordinator)
    set_setting("center_address", "214000, г. Смоленск, ул. Ленина, д. 1", coordinator)
    set_setting("center_phone", "+7 (4812) 00-00-00", coordinator)
    set_setting("center_email", "rmc@rmc67.example", coordinator)
    db.session.flush()
    html = page(client, "/")
    assert text_of(html, "center-name") == "РМЦ Смоленской области"
    assert text_of(html, "center-address") == "214000, г. Смоленск, ул. Ленина, д. 1"
    assert 'href="tel:+74812000000"' in html
    assert 'href="mailto:rmc@rmc67.example"' in html
    assert 'id="center-contacts-missing"' not in html
