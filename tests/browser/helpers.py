"""What the browser tests do over and over: log in, score a sheet, fetch a PDF the way the
browser does, audit a page with axe-core; and the windows (browser contexts) of a test, saved
as screenshots and HTML when it fails.

Playwright is imported only inside the functions, so that this module imports (and the tests
are skipped with a reason, or fail under REQUIRE_BROWSER=1) where it is not installed.
"""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask

#: Milliseconds an action or an expectation may take before the step fails (a conclusion is
#: rendered by WeasyPrint during a request: a few seconds on a busy machine).
TIMEOUT_MS = 20_000

#: Where a failed test leaves its screenshots and page sources (``tests/artifacts`` is ignored
#: by git; CI may point ``BROWSER_ARTIFACTS`` elsewhere to keep them).
ARTIFACTS = Path(
    os.environ.get("BROWSER_ARTIFACTS") or Path(__file__).resolve().parents[1] / "artifacts"
)


def artifacts_folder(nodeid: str) -> Path:
    return ARTIFACTS / re.sub(r"[^\w.-]+", "_", nodeid)


#: The axe-core impacts that fail an audit.
FAILING_IMPACTS = ("serious", "critical")


@dataclass
class Portal:
    """The application and the address it is served at."""

    app: Flask
    url: str


@dataclass
class Windows:
    """Browser contexts (one per person, or per browser session of one person) opened by the
    tests of a module; every open page is saved as a screenshot and HTML on a failure."""

    browser: object
    portal: Portal
    contexts: list[tuple[str, object]] = field(default_factory=list)
    #: What the browser refused under the content security policy: ``(url, message)``.
    csp_violations: list[tuple[str, str]] = field(default_factory=list)

    def open(self, name: str):
        """A new context (its own cookies: a new browser session) and a page in it."""
        context = self.browser.new_context(
            base_url=self.portal.url, locale="ru-RU", accept_downloads=True
        )
        context.on("console", self._watch_console)
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        self.contexts.append((name, context))
        return context.new_page()

    def _watch_console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.csp_violations.append((message.page.url if message.page else "", message.text))

    def close(self, page) -> None:
        """Close the page's whole context, as closing the browser ends a session."""
        self.contexts = [(n, c) for n, c in self.contexts if c is not page.context]
        page.context.close()

    def close_all(self) -> None:
        for _, context in self.contexts:
            context.close()
        self.contexts.clear()

    def save_artifacts(self, folder: Path) -> list[Path]:
        """A full-page screenshot and the HTML of every open page, into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        saved = []
        for c, (name, context) in enumerate(self.contexts):
            for p, page in enumerate(context.pages):
                stem = folder / f"{c:02d}-{name}-{p}"
                try:
                    page.screenshot(path=stem.with_suffix(".png"), full_page=True)
                    saved.append(stem.with_suffix(".png"))
                    html = f"<!-- {page.url} -->\n{page.content()}"
                    stem.with_suffix(".html").write_text(html, encoding="utf-8")
                    saved.append(stem.with_suffix(".html"))
                except Exception as error:  # a crashed page: say so and save the others
                    stem.with_suffix(".error.txt").write_text(repr(error), encoding="utf-8")
                    saved.append(stem.with_suffix(".error.txt"))
        return saved


def expect(target, message: str | None = None):
    """Playwright's auto-waiting assertions."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target, message)


def flash(page):
    """The message the portal flashed on this page (after an action)."""
    return page.locator("#content > .alert")


def log_in(page, email: str, password: str) -> None:
    """Log in through the login form and check the person is logged in."""
    page.goto("/login")
    page.get_by_label("Электронная почта").fill(email)
    page.get_by_label("Пароль").fill(password)
    page.get_by_role("button", name="Войти").click()
    expect(page.get_by_role("button", name="Выйти")).to_be_visible()


def open_menu_link(page, menu: str, link: str) -> None:
    """Follow ``link`` of the navigation bar's drop-down ``menu`` (the center's staff have
    their links grouped), as a person does: open the menu, then click the link."""
    bar = page.get_by_role("navigation", name="Основная навигация")
    bar.get_by_role("button", name=menu, exact=True).click()
    bar.get_by_role("link", name=link, exact=True).click()


def score(page, scores: dict[str, int], comment: str | None = None) -> None:
    """Choose each criterion's score on the open score sheet; a score below 2 gets the
    comment (``{criterion}`` replaced by the criterion's id)."""
    labels = {0: "0 — не выражен", 1: "1 — выражен частично", 2: "2 — выражен полностью"}
    for criterion, value in scores.items():
        box = page.locator(f"#criterion-{criterion}")
        box.get_by_label(labels[value]).check()
        if value < 2:
            box.get_by_label("Комментарий").fill((comment or "").format(criterion=criterion))


def pdf_bytes_of_link(page, link) -> bytes:
    """Open the PDF a link points to, as the visitor does, and return its bytes.

    Chromium shows an inline PDF in its viewer: there is no download event, and the body the
    page's response reports is the viewer's wrapper. So the link is followed (and the
    answer checked), then the page fetches the same URL in the same session for the bytes
    (from the browser's cache, revalidated by its ETag)."""
    href = link.get_attribute("href")
    with page.expect_response(lambda response: response.url.endswith(href)) as opened:
        link.click()
    assert opened.value.status == 200, opened.value.status
    assert opened.value.header_value("content-type") == "application/pdf"
    page.go_back()
    fetched = page.evaluate(
        """async (url) => {
            const response = await fetch(url, {credentials: "same-origin"});
            const bytes = new Uint8Array(await response.arrayBuffer());
            let binary = "";
            for (const b of bytes) { binary += String.fromCharCode(b); }
            return {status: response.status, type: response.headers.get("Content-Type"),
                    body: btoa(binary)};
        }""",
        href,
    )
    assert fetched["status"] == 200, fetched["status"]
    assert fetched["type"] == "application/pdf", fetched["type"]
    return base64.b64decode(fetched["body"])


@dataclass
class Audit:
    """The serious and critical axe-core violations of a page, and the page as it was then
    (screenshot and HTML, kept only when there are violations)."""

    url: str
    violations: list[dict]
    screenshot: bytes | None = None
    html: str | None = None

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if self.screenshot is not None:
            (folder / "audited-page.png").write_bytes(self.screenshot)
        if self.html is not None:
            (folder / "audited-page.html").write_text(self.html, encoding="utf-8")


def audit(page) -> Audit:
    """Audit the page as it is now with axe-core.

    axe-core comes inside the ``axe-playwright-python`` package (its ``axe.min.js``) and is
    injected into the page: nothing is fetched. It waits for the page's ``load`` event first:
    a locator can find a row while the portal's stylesheet is still on its way, and the
    colours of Bootstrap alone (which a browser never paints, stylesheets in the head block
    the first paint) fail the contrast rule."""
    from axe_playwright_python.sync_playwright import Axe

    page.wait_for_load_state("load")
    results = Axe().run(page)
    failing = [v for v in results.response["violations"] if v["impact"] in FAILING_IMPACTS]
    if not failing:
        return Audit(url=page.url, violations=[])
    return Audit(
        url=page.url,
        violations=failing,
        screenshot=page.screenshot(full_page=True),
        html=page.content(),
    )


def describe_violations(name: str, audited: Audit) -> str:
    """The violations as a reader wants them: rule, impact, what to fix, and every element."""
    lines = [
        f"{len(audited.violations)} serious or critical accessibility violations "
        f"on the {name} page ({audited.url})"
    ]
    for violation in audited.violations:
        lines.append(
            f"\n* {violation['id']} ({violation['impact']}): "
            f"{violation['help']}\n  {violation['helpUrl']}"
        )
        for node in violation["nodes"]:
            target = " ".join(str(t) for t in node["target"])
            html = re.sub(r"\s+", " ", node["html"])[:300]
            lines.append(f"  - {target}\n    {html}")
            for summary_line in (node.get("failureSummary") or "").splitlines():
                lines.append(f"      {summary_line.strip()}")
    return "\n".join(lines)
