"""The conclusion's PDF as a reader gets it: issued through the real decision services, then
read back — its text (pypdf), its fonts, its QR code (pypdfium2 + zxing-cpp), long texts
across pages, escaping of user text — and the renderer's safety: the asset fetcher's
whitelist, failures that roll the decision back without consuming a number, and rendering
in a spawned worker process.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import re
import warnings
from datetime import date
from pathlib import Path

import pypdf
import pypdfium2 as pdfium
import pytest
import zxingcpp
from fontTools.ttLib import TTFont
from sqlalchemy import select

from review_portal.conclusions import render
from review_portal.conclusions.models import ConclusionCounter
from review_portal.conclusions.render import AssetRefused, RenderError
from review_portal.conclusions.services import (
    ConclusionError,
    format_number,
    revoke_conclusion,
    stored_pdf,
)
from review_portal.enums import Decision
from review_portal.reviews.services import ReviewError, decide_review
from review_portal.settings.services import set_setting
from tests import factories

CENTER = "Региональный модельный центр дополнительного образования детей Смоленской области"
REGION = "Смоленская область"
ADDRESS = "214000, г. Смоленск, ул. Ленина, д. 1"
HEAD_NAME = "Иванова Мария Петровна"
HEAD_POSITION = "Директор регионального модельного центра"
MARKUP = "<script>alert(1)</script> & <b>жирный</b>"


@pytest.fixture
def center(session):
    for key, value in {
        "center_name": CENTER,
        "region_name": REGION,
        "center_address": ADDRESS,
        "region_code": "67",
        "head_name": HEAD_NAME,
        "head_position": HEAD_POSITION,
    }.items():
        set_setting(key, value)
    session.flush()


@pytest.fixture
def contents(monkeypatch) -> list[dict]:
    """The content dictionaries rendered during the test, in order (a spy on render_pdf)."""
    seen: list[dict] = []
    original = render.render_pdf

    def spy(content, *args, **kwargs):
        seen.append(content)
        return original(content, *args, **kwargs)

    monkeypatch.setattr(render, "render_pdf", spy)
    return seen


def latest_conclusion(session, review):
    session.expire(review, ["conclusions"])
    return review.conclusions[-1]


def issue(session, review, decision=None, justification=None):
    """Decide ``review`` through the services; the conclusion issued and its stored bytes."""
    coordinator = factories.CoordinatorFactory()
    decide_review(review, coordinator, decision or review.computed_decision, justification)
    conclusion = latest_conclusion(session, review)
    return conclusion, stored_pdf(conclusion)


def page_texts(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages]


def squeeze(text: str) -> str:
    """Text without any whitespace: line breaks fall anywhere in a wrapped paragraph."""
    return "".join(text.split())


def embedded_fonts(pdf: bytes) -> list[tuple[str, str]]:
    """(PDF font name, family in the embedded font file's name table) of every page font."""
    found = []
    for page in pypdf.PdfReader(io.BytesIO(pdf)).pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descendants = font.get("/DescendantFonts")
            target = descendants[0].get_object() if descendants else font
            descriptor = target["/FontDescriptor"].get_object()
            family = ""
            for key in ("/FontFile2", "/FontFile3", "/FontFile"):
                if key in descriptor:
                    data = descriptor[key].get_object().get_data()
                    family = TTFont(io.BytesIO(data))["name"].getDebugName(1)
            found.append((str(descriptor["/FontName"]), family))
    return found


def page_qr_codes(pdf: bytes) -> list[list[str]]:
    """The texts of the QR codes each page shows (PDFium renders, zxing-cpp reads)."""
    document = pdfium.PdfDocument(pdf)
    found = []
    for index in range(len(document)):
        image = document[index].render(scale=3).to_pil()
        found.append([code.text for code in zxingcpp.read_barcodes(image)])
    return found


def without_running(page: str, running: list[str]) -> str:
    """``page`` without whitespace and without the last occurrence of each running text."""
    page = squeeze(page)
    for text in running:
        at = page.rfind(squeeze(text))
        if at >= 0:
            page = page[:at] + page[at + len(squeeze(text)) :]
    return page


def decided_review():
    review, _ = factories.scored_review(factories.with_total(16), factories.with_total(15))
    return review


def test_issued_conclusion_text_has_every_part_of_the_document(session, center, contents):
    review = decided_review()
    conclusion, pdf = issue(session, review)
    content = contents[-1]
    pages = page_texts(pdf)
    text = "\n".join(pages)
    flat = squeeze(text)

    assert conclusion.number.startswith("67-")
    assert f"Экспертное заключение № {conclusion.number}" in text
    assert f"Дата выдачи: {content['issued_on']}" in text
    assert squeeze(review.version.title) in flat
    assert squeeze(content["program"]["organization"]) in flat
    assert squeeze(content["rubric"]["title"]) in flat
    for section in content["sections"]:
        for criterion in section["criteria"]:
            assert criterion["id"] in text
            assert squeeze(criterion["title"])[:40] in flat
    assert "Эксперт 1" in text and "Эксперт 2" in text
    assert content["total"] == "15.5" and content["percent"] == "77.5"
    assert "Итоговая сумма баллов: 15,5 из 20" in text
    assert "77,5 %" in text
    assert "рекомендована к включению в реестр при ≥ 70 %" in squeeze_spaces(text)
    assert "Решение: программа рекомендована к включению в реестр" in text
    assert "Рекомендации эксперта по программе." in text
    assert squeeze(content["final_rule"]) in flat
    # Header and footer (with the verification line) on every page.
    for number, page in enumerate(pages, start=1):
        assert CENTER in page and REGION in page and ADDRESS in page
        assert f"стр. {number} из {len(pages)}" in page
        assert squeeze(
            f"Экспертное заключение № {conclusion.number} от {content['issued_on']}"
        ) in squeeze(page)
        assert squeeze(f"Проверка подлинности: {content['verify_url']}") in squeeze(page)
        assert squeeze(f"SHA-256 содержания: {content['content_sha256']}") in squeeze(page)
    assert "стр. 1 из" in pages[0]
    # Signature, seal and verification note.
    assert squeeze(HEAD_NAME) in flat and squeeze(HEAD_POSITION) in flat and "М.П." in text
    assert content["verify_url"] in text
    assert conclusion.content_sha256 == content["content_sha256"]
    assert conclusion.content_sha256 in text
    assert "контрольная сумма содержания" in squeeze_spaces(text)
    assert "Решение соответствует расчётному результату." in squeeze_spaces(text)
    # Anonymous: the experts' names are nowhere.
    assert "Эксперт-Тайный" not in text


def squeeze_spaces(text: str) -> str:
    return " ".join(text.split())


def test_issued_conclusion_embeds_only_the_packaged_font_and_a_readable_qr(
    session, center, contents
):
    review = decided_review()
    conclusion, pdf = issue(session, review)
    verify_url = contents[-1]["verify_url"]
    assert verify_url.endswith(f"/verify/{conclusion.number}")

    fonts = embedded_fonts(pdf)
    assert fonts
    for name, family in fonts:
        assert "Portal-Serif" in name, name
        assert family == "DejaVu Serif", (name, family)

    # The QR code is in the foot of every page.
    assert page_qr_codes(pdf) == [[verify_url]] * len(pypdf.PdfReader(io.BytesIO(pdf)).pages)


def test_long_title_and_recommendations_break_across_pages_unclipped(session, center, contents):
    title = ("Программа «Робототехника и программирование микроконтроллеров» " * 8)[:479] + "."
    assert len(title) == 480
    long_word = "Сверхдлинноесловобезпробелов" * 8
    recommendation = (
        f"{long_word} "
        + "Рекомендуется расширить практическую часть программы и добавить проектную работу. " * 36
    )[:3000]
    assert len(recommendation) == 3000
    scores = [factories.with_total(16), factories.with_total(15)]
    review, assignments = factories.scored_review(*scores, submit=False, title=title)
    for assignment, values in zip(assignments, scores, strict=True):
        factories.submit_scores(assignment, values, recommendations=recommendation)
    session.refresh(review)
    conclusion, pdf = issue(session, review)

    pages = page_texts(pdf)
    assert len(pages) >= 3
    # The criteria table starts on page 1 and goes on to page 2 under its repeated header.
    assert "A1" in pages[0]
    header = re.compile(r"№\s*Критерий\s*Эксперт 1\s*Эксперт 2\s*Итоговый\s*балл")
    assert header.search(pages[0]) and header.search(pages[1])
    assert "D3" in pages[1]
    # Nothing clipped: the whole title and both recommendations are in the text, once the
    # running header and footer are taken out of the pages.
    content = contents[-1]
    body = ""
    for number, page in enumerate(pages, start=1):
        body += without_running(
            page,
            [
                CENTER,
                REGION,
                ADDRESS,
                f"Экспертное заключение № {conclusion.number} от {content['issued_on']}",
                f"Проверка подлинности: {content['verify_url']}",
                f"SHA-256 содержания: {content['content_sha256']}",
                f"стр. {number} из {len(pages)}",
            ],
        )
    assert squeeze(title) in body
    assert body.count(squeeze(recommendation)) == 2
    # ... and no glyph lies in the side margins (25 mm left, 15 mm right) or off the page.
    document = pdfium.PdfDocument(pdf)
    for index in range(len(document)):
        page = document[index]
        width, height = page.get_size()
        left_limit, right_limit = 25 * 72 / 25.4 - 1, width - 15 * 72 / 25.4 + 1
        text_page = page.get_textpage()
        for char in range(text_page.count_chars()):
            left, bottom, right, top = text_page.get_charbox(char)
            if right > left:
                assert left >= left_limit and right <= right_limit
                assert bottom >= 0 and top <= height


def test_user_text_is_printed_literally_and_override_and_supersession_are_noted(session, center):
    review, assignments = factories.scored_review(
        factories.with_total(16), factories.with_total(15), submit=False
    )
    for assignment, total in zip(assignments, (16, 15), strict=True):
        factories.submit_scores(
            assignment, factories.with_total(total), recommendations=f"Учесть: {MARKUP}"
        )
    session.refresh(review)
    first, _ = issue(session, review)
    revoke_conclusion(first, factories.CoordinatorFactory(), "Ошибка в данных программы")
    justification = f"Программа требует доработки: {MARKUP}"
    second, pdf = issue(session, review, Decision.REVISION_REQUIRED, justification)

    pages = page_texts(pdf)
    text = "\n".join(pages)
    assert second.number != first.number
    assert f"Заменяет заключение № {first.number}" in text
    # The override reads as one account, on one page: the computed result, that the
    # coordinator decided otherwise, why, then the decision and the signature.
    last = squeeze(pages[-1])
    account = [
        squeeze(
            "Расчётное решение по итоговой сумме баллов и пороговым значениям: программа "
            "рекомендована к включению в реестр."
        ),
        squeeze("Координатор принял решение, отличное от расчётного"),
        # Lines wrap anywhere in the user's text ("</" + "b>"): compare without whitespace.
        squeeze(f"Обоснование: {justification}"),
        squeeze("Решение: программа направлена на доработку"),
        squeeze(HEAD_NAME),
        "М.П.",
    ]
    positions = [last.find(part) for part in account]
    assert -1 not in positions and positions == sorted(positions), positions
    assert "Решение соответствует расчётному результату" not in squeeze_spaces(text)
    assert squeeze(text).count(squeeze(f"Учесть: {MARKUP}")) == 2
    assert "&amp;" not in text and "&lt;" not in text


def test_asset_fetcher_serves_only_the_packaged_whitelist():
    package = Path(render.__file__).parent
    for name, (relative, media_type) in render.ASSETS.items():
        response = render.asset_fetcher(f"portal-asset:{name}")
        assert response.read() == (package / relative).read_bytes()
        assert response.content_type == media_type
    for url in (
        "file:///etc/passwd",
        "http://example.org/x.png",
        "https://example.org/conclusion.css",
        "data:text/css,body{color:red}",
        "data:image/png;base64,iVBORw0KGgo=",
        "portal-asset:../render.py",
        "portal-asset:fonts/../../render.py",
        "portal-asset:/etc/passwd",
        "portal-asset:static/conclusion.css",
        "portal-asset:fonts/LICENSE",
        "PORTAL-ASSET:conclusion.css",
        "fonts/DejaVuSerif.ttf",
        "/etc/passwd",
        "",
    ):
        with pytest.raises(AssetRefused):
            render.asset_fetcher(url)


@pytest.mark.parametrize(
    "markup",
    [
        '<img src="file:///etc/passwd">',
        '<img src="http://example.org/x.png">',
        '<img src="data:image/png;base64,iVBORw0KGgo=">',
        '<link rel="stylesheet" href="file:///etc/passwd">',
        '<link rel="stylesheet" href="http://example.org/style.css">',
        "<style>@import url(file:///etc/passwd);</style>",
        '<img src="../../../../etc/passwd">',
        '<img src="portal-asset:fonts/LICENSE">',
    ],
)
def test_render_refuses_documents_reaching_outside_the_whitelist(markup):
    """A refused URL stops the rendering with a clean RenderError: nothing of it is printed."""
    html = f"<html><body><p>Заключение</p>{markup}<p>root:x:0:0</p></body></html>"
    with pytest.raises(RenderError, match="refused URL"):
        render.render_html_bare(html)


def test_render_never_falls_back_to_a_system_font():
    """Only the packaged font exists for the renderer: a generic family asked for, or a glyph
    DejaVu Serif lacks (★, 😀, 中), still comes out in it, and the text stays extractable."""
    html = (
        '<html><head><link rel="stylesheet" href="portal-asset:conclusion.css"></head><body>'
        "<p>Проверка шрифта: съешь же ещё этих мягких французских булок ≥ № «»</p>"
        '<p style="font-family: sans-serif">Без засечек ★ 😀 中</p>'
        '<p style="font-family: monospace; font-weight: bold; font-style: italic">Моно</p>'
        "</body></html>"
    )
    pdf = render.render_html_bare(html)
    # Read with PDFium: pypdf garbles the text of a page holding a .notdef glyph, which only
    # characters missing from the font cause.
    text = pdfium.PdfDocument(pdf)[0].get_textpage().get_text_range()
    assert "съешь же ещё этих мягких французских булок ≥ № «»" in text
    assert "Без засечек ★ 😀 中" in text and "Моно" in text
    fonts = embedded_fonts(pdf)
    assert {family for _, family in fonts} == {"DejaVu Serif"}
    assert all("Portal-Serif" in name for name, _ in fonts)


def test_content_missing_a_field_fails_the_render(app):
    with app.app_context(), pytest.raises(RenderError, match="UndefinedError"):
        render.render_pdf({"number": "67-2026-00001", "verify_url": "https://x/verify/1"})


def test_render_failure_rolls_the_decision_back_without_consuming_a_number(
    session, center, monkeypatch
):
    review = decided_review()
    year = date.today().year

    def last_value():
        return (
            session.execute(
                select(ConclusionCounter.last_value).where(ConclusionCounter.year == year)
            ).scalar_one_or_none()
            or 0
        )

    before = last_value()
    with monkeypatch.context() as patch:
        # The document asks for a file outside the whitelist: WeasyPrint really fails.
        patch.setattr(
            render, "conclusion_html", lambda content, *template: '<img src="file:///etc/passwd">'
        )
        savepoint = session.begin_nested()
        with pytest.raises(ReviewError) as raised:
            decide_review(review, factories.CoordinatorFactory(), review.computed_decision)
        savepoint.rollback()
    conclusion_error = raised.value.__cause__
    assert isinstance(conclusion_error, ConclusionError)
    assert isinstance(conclusion_error.__cause__, RenderError)
    assert "refused URL" in str(conclusion_error.__cause__)
    assert last_value() == before
    assert review.decision is None
    session.expire(review, ["conclusions"])
    assert review.conclusions == []

    conclusion, _ = issue(session, review)
    assert conclusion.number == format_number("67", year, before + 1)


def render_in_worker(content: dict) -> bytes:
    """Run in a spawned process: a fresh application, no database, only the content."""
    from review_portal import create_app
    from review_portal.conclusions.render import render_pdf

    app = create_app("testing", SQLALCHEMY_DATABASE_URI="sqlite://")
    with app.app_context():
        return render_pdf(content)


def test_render_in_a_spawned_worker_gives_the_same_bytes(session, center, contents):
    review = decided_review()
    conclusion, pdf = issue(session, review)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        worker_pdf = pool.apply(render_in_worker, (contents[-1],))
    assert worker_pdf == pdf
    assert conclusion.sha256 == hashlib.sha256(worker_pdf).hexdigest()


def render_bare_in_worker(html: str) -> bytes:
    return render.render_html_bare(html)


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="no fork on this platform"
)
def test_render_in_a_forked_worker_builds_its_own_fonts_and_gives_the_same_bytes():
    html = (
        '<html><head><link rel="stylesheet" href="portal-asset:conclusion.css"></head>'
        "<body><h1>Экспертное заключение</h1><p><b>Решение</b>: <i>проверка</i></p></body></html>"
    )
    parent = render.render_html_bare(html)
    fonts_folder = render.font_configuration()._folder
    with warnings.catch_warnings():
        # Python ≥ 3.12 warns about fork in a process with threads (a test runner may have
        # some); the child only renders.
        warnings.simplefilter("ignore", DeprecationWarning)
        with multiprocessing.get_context("fork").Pool(1) as pool:
            child = pool.apply(render_bare_in_worker, (html,))
    assert child == parent
    # The child's font configuration was its own: the parent's fonts are still there.
    assert fonts_folder.exists()
    assert render.render_html_bare(html) == parent
