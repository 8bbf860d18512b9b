"""The Russian interface: the catalog is complete and up to date with the sources, the
compiled catalog is what the portal serves (Russian by default, English after the switch),
and dates read DD.MM.YYYY in the portal's time zone.

The module compiles the catalog itself when the ``.mo`` is missing or older than the ``.po``
(the ``.mo`` files are not committed), at import time, so that every test of the session,
collected after it or not, sees the compiled catalog.
"""

from __future__ import annotations

import os
import re
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import render_template_string
from flask_babel import refresh

from review_portal.main.templating import format_date

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "review_portal" / "translations"
RU_PO = TRANSLATIONS / "ru" / "LC_MESSAGES" / "messages.po"
BABEL_CFG = ROOT / "babel.cfg"
#: The keywords of ``pybabel extract`` in the Makefile (``extract``).
KEYWORDS = {
    **DEFAULT_KEYWORDS,
    "_l": None,
    "lazy_gettext": None,
    "_lp": ((1, "c"), 2),
    "lazy_pgettext": ((1, "c"), 2),
}

PLACEHOLDER_RE = re.compile(r"%\(\w+\)[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]")


def read_catalog(path: Path = RU_PO):
    with path.open("rb") as f:
        return read_po(f, locale="ru")


def compile_stale_catalogs() -> None:
    """Compile every ``.po`` under the translations folder whose ``.mo`` is missing or older.

    Writes only beside the ``.po`` (through a temporary file and an atomic rename, so a
    concurrent reader never sees half a file).
    """
    for po in TRANSLATIONS.glob("*/LC_MESSAGES/*.po"):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        catalog = read_catalog(po)
        fd, tmp = tempfile.mkstemp(dir=po.parent, prefix=".messages-", suffix=".mo")
        try:
            with os.fdopen(fd, "wb") as f:
                write_mo(f, catalog)
            os.chmod(tmp, 0o644)  # mkstemp makes it private; the portal reads it too
            os.replace(tmp, mo)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


compile_stale_catalogs()


def placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER_RE.findall(text))


def entries(catalog):
    return [m for m in catalog if m.id]


def msgid(message) -> str:
    return message.id[0] if isinstance(message.id, tuple) else message.id


def translations_of(message) -> list[str]:
    strings = message.string if isinstance(message.string, tuple) else (message.string,)
    return list(strings)


def extracted_msgids() -> set[tuple[str, str | None]]:
    """The messages the sources hold now, as ``pybabel extract -F babel.cfg`` finds them."""
    with BABEL_CFG.open() as f:
        method_map, options_map = parse_mapping_cfg(f, str(BABEL_CFG))
    found = set()
    for _filename, _lineno, message, _comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        text = message[0] if isinstance(message, tuple) else message
        if text:
            found.add((text, context))
    return found


# --- The catalog ---------------------------------------------------------------------------


def test_catalog_is_russian_with_russian_plural_forms():
    catalog = read_catalog()

    assert str(catalog.locale) == "ru"
    assert catalog.num_plurals == 3
    assert catalog.plural_expr == (
        "(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2)"
    )
    assert not catalog.fuzzy


def test_every_entry_is_translated_and_not_fuzzy():
    catalog = read_catalog()
    messages = entries(catalog)
    assert len(messages) > 100, "the catalog is unexpectedly small"

    untranslated = [msgid(m) for m in messages if not all(s.strip() for s in translations_of(m))]
    fuzzy = [msgid(m) for m in messages if m.fuzzy]

    assert not untranslated, f"untranslated entries: {untranslated}"
    assert not fuzzy, f"fuzzy entries: {fuzzy}"


def test_every_translation_keeps_the_placeholders_of_its_msgid():
    catalog = read_catalog()
    wrong = []
    for message in entries(catalog):
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        expected = sorted(set(PLACEHOLDER_RE.findall(" ".join(ids))))
        for string in translations_of(message):
            if sorted(set(placeholders(string))) != expected:
                wrong.append((msgid(message), string))

    assert not wrong, f"placeholders changed: {wrong}"


def test_translations_use_russian_quotes():
    catalog = read_catalog()
    english_quotes = [
        (msgid(m), s)
        for m in entries(catalog)
        for s in translations_of(m)
        if any(q in s for q in '"“”')
    ]

    assert not english_quotes, f"use «ёлочки» in Russian text: {english_quotes}"


def test_domain_terms_follow_the_glossary():
    translated = {m.id: m.string for m in entries(read_catalog())}

    assert translated["Recommended for inclusion in the registry"] == (
        "Рекомендована к включению в реестр"
    )
    assert translated["Sent for revision"] == "Направлена на доработку"
    assert translated["Not recommended"] == "Не рекомендована"
    assert translated["Social and humanitarian"] == "Социально-гуманитарная"
    assert translated["Mixed: in person and by correspondence"] == "Очно-заочная"
    assert (
        "№ 152-ФЗ «О персональных данных»"
        in translated["I consent to the processing of my personal data (Federal Law 152-FZ)"]
    )


def test_catalog_is_up_to_date_with_the_sources():
    catalog = read_catalog()
    known = {(msgid(m), m.context) for m in entries(catalog)}

    extracted = extracted_msgids()
    missing = sorted(text for text, context in extracted - known)

    assert extracted, "nothing was extracted: check babel.cfg"
    assert not missing, (
        "messages in the code that the Russian catalog lacks; run `make extract` and "
        f"translate them in {RU_PO.relative_to(ROOT)}: {missing}"
    )


def test_catalog_holds_no_message_the_sources_dropped():
    """A text that left the code stays in the catalog only as clutter that a translator
    keeps maintaining (and a reader takes for a message the portal still shows)."""
    known = {(msgid(m), m.context) for m in entries(read_catalog())}
    unused = sorted(text for text, context in known - extracted_msgids())
    assert not unused, f"entries no source uses any more; delete them from {RU_PO.name}: {unused}"


def test_compiled_catalog_is_current():
    mo = RU_PO.with_suffix(".mo")

    assert mo.exists()
    assert mo.stat().st_mtime >= RU_PO.stat().st_mtime


# --- The interface -------------------------------------------------------------------------


def label_of(html: str, field: str) -> str:
    match = re.search(rf'<label[^>]*for="{field}"[^>]*>([^<]*)</label>', html)
    assert match, f"no label for {field}"
    return match.group(1).strip()


def heading(html: str) -> str:
    match = re.search(r"<h1>(.*?)</h1>", html, re.S)
    assert match, "page has no <h1>"
    return match.group(1).strip()


def test_login_page_is_in_russian_by_default(client):
    response = client.get("/login")
    html = response.get_data(as_text=True)

    assert response.status_code == 200
    assert '<html lang="ru">' in html
    assert heading(html) == "Войти"
    assert '<button class="btn btn-primary" type="submit">Войти</button>' in html
    assert label_of(html, "email") == "Электронная почта"
    assert label_of(html, "password") == "Пароль"
    assert "Забыли пароль?" in html
    assert "<title>Войти — Портал экспертизы ДООП</title>" in html
    assert "Log in" not in html
    assert "Forgot your password?" not in html


def test_not_found_page_is_in_russian_by_default(client):
    response = client.get("/no-such-page")
    html = response.get_data(as_text=True)

    assert response.status_code == 404
    assert '<html lang="ru">' in html
    assert heading(html) == "404 — Страница не найдена"
    assert "Запрашиваемая страница или объект не найдены." in html
    assert "Page not found" not in html


def test_lists_of_people_and_of_organizations_name_their_name_column_apart(client, auth, session):
    """An expert has an ФИО; an organization has an наименование (the same English "Name"
    was once translated «ФИО» on both lists)."""
    from tests.factories import CoordinatorFactory, ExpertProfileFactory, OrganizationFactory

    OrganizationFactory()
    ExpertProfileFactory()
    auth.login(CoordinatorFactory())
    organizations = client.get("/organizations").get_data(as_text=True)
    experts = client.get("/experts").get_data(as_text=True)

    assert '<th scope="col">Наименование организации</th>' in organizations
    assert "ФИО" not in organizations
    assert '<th scope="col">ФИО</th>' in experts


def test_form_errors_are_in_russian(client, auth):
    response = client.post("/login", data={"csrf_token": auth.token("/login")})
    html = response.get_data(as_text=True)

    assert "Это поле обязательно для заполнения." in html
    assert "This field is required." not in html


def switch_language(client, auth, language: str, page: str = "/login"):
    return client.post(
        "/language",
        data={"language": language, "next": page, "csrf_token": auth.token(page)},
    )


def test_language_switch_turns_the_interface_english_and_back(client, auth):
    response = switch_language(client, auth, "en")

    assert response.status_code == 302
    assert response.headers["Location"].endswith("/login")

    html = client.get("/login").get_data(as_text=True)
    assert '<html lang="en">' in html
    assert heading(html) == "Log in"
    assert label_of(html, "email") == "E-mail"
    assert label_of(html, "password") == "Password"
    assert "Войти" not in html
    assert 'name="language" value="ru"' in html

    response = client.get("/no-such-page")
    html = response.get_data(as_text=True)
    assert response.status_code == 404
    assert '<html lang="en">' in html
    assert heading(html) == "404 — Page not found"
    assert "There is no such page or object." in html

    switch_language(client, auth, "ru")
    html = client.get("/login").get_data(as_text=True)
    assert '<html lang="ru">' in html
    assert label_of(html, "password") == "Пароль"


def test_unknown_language_is_ignored(client, auth):
    switch_language(client, auth, "de")

    html = client.get("/login").get_data(as_text=True)
    assert '<html lang="ru">' in html


# --- Dates ---------------------------------------------------------------------------------


@pytest.fixture
def request_context(app, session):
    with app.test_request_context("/"):
        refresh()  # no locale or time zone cached from an earlier request
        yield


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (date(2026, 3, 7), "07.03.2026"),
        (date(2025, 12, 31), "31.12.2025"),
        # 21:30 UTC on 31 December is 00:30 on 1 January in Moscow (UTC+3).
        (datetime(2025, 12, 31, 21, 30, tzinfo=UTC), "01.01.2026"),
        (datetime(2025, 12, 31, 21, 30), "01.01.2026"),  # naive values are UTC
        (datetime(2025, 12, 31, 20, 59, tzinfo=UTC), "31.12.2025"),
        (None, ""),
    ],
)
def test_date_filter_formats_dd_mm_yyyy_in_moscow_time(request_context, value, expected):
    assert format_date(value) == expected
    assert render_template_string("{{ value|date }}", value=value) == expected
