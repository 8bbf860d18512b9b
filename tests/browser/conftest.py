"""Fixtures of the browser tests: the portal served on loopback with a database of its own,
headless Chromium driven by Playwright, and screenshots and page sources of every open page
saved when a test fails.

The browser is the system's Chromium (Debian's ``chromium`` package); nothing is downloaded
at run time (``playwright install`` is never run). Without Chromium or the ``playwright``
package the browser tests are skipped with the reason, unless ``REQUIRE_BROWSER=1`` (set by
``.ci/run``), in which case they fail.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade
from werkzeug.serving import WSGIRequestHandler, make_server

from review_portal import create_app
from review_portal.extensions import db
from tests.browser.helpers import Portal, Windows, artifacts_folder

#: Chromium flags: no sandbox (CI runs as root), no GPU, and nothing that reaches out of the
#: machine (component updates, sync, safe browsing lists, DNS of any host but loopback).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


def chromium_executable() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def browser_unavailable() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import axe_playwright_python  # noqa: F401
        import playwright.sync_api  # noqa: F401
    except ImportError as error:
        return f"the Python package {error.name!r} is not installed (pip install -e '.[dev]')"
    if chromium_executable() is None:
        return "no Chromium on PATH (apt-get install chromium)"
    return None


def require_browser() -> None:
    """Skip the test when there is no browser, or fail it when REQUIRE_BROWSER=1."""
    reason = browser_unavailable()
    if reason is None:
        return
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"REQUIRE_BROWSER=1 but the browser tests cannot run: {reason}")
    pytest.skip(f"browser tests skipped: {reason}")


class _QuietHandler(WSGIRequestHandler):
    """No line per request in the test output; errors are still logged."""

    def log_request(self, *args, **kwargs) -> None:
        pass


TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
#: SQLite always; PostgreSQL too when the suite has one (in a database of the browser tests'
#: own beside the test database, which the other tests use at the same time).
BACKENDS = ["sqlite"] + (["postgresql"] if TEST_DATABASE_URL else [])


def _postgres_admin(url: str) -> sa.Engine:
    base = sa.engine.make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    return sa.create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")


@contextmanager
def _database(backend: str, folder) -> Iterator[str]:
    """The URL of an empty database for one served portal, dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'portal.sqlite'}"
        return
    url = sa.engine.make_url(TEST_DATABASE_URL)
    url = url.set(database=f"{url.database}_browser")
    admin = _postgres_admin(TEST_DATABASE_URL)
    drop = f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'
    with admin.connect() as connection:
        connection.exec_driver_sql(drop)
        connection.exec_driver_sql(f'CREATE DATABASE "{url.database}"')
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(drop)
        admin.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def portal(request, tmp_path_factory) -> Iterator[Portal]:
    """The portal on a database of its own, migrated, served by a thread on 127.0.0.1."""
    require_browser()
    folder = tmp_path_factory.mktemp("portal")
    with _database(request.param, folder) as database_url:
        app = create_app(
            "testing", SQLALCHEMY_DATABASE_URI=database_url, STORAGE_DIR=str(folder / "storage")
        )
        with app.app_context():
            upgrade()
        server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
        url = f"http://127.0.0.1:{server.server_port}"
        # Documents print their verification URL: the one this browser can open.
        app.config["PUBLIC_URL"] = url
        thread = threading.Thread(target=server.serve_forever, name="portal", daemon=True)
        thread.start()
        try:
            yield Portal(app=app, url=url)
        finally:
            server.shutdown()
            thread.join(timeout=10)
            server.server_close()
            with app.app_context():
                db.engine.dispose()


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium of the system, driven by Playwright; closed when the module's tests
    are done, so neither the browser nor Playwright's event loop outlives them."""
    require_browser()
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(
            executable_path=chromium_executable(), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


#: The windows of the running test (module-scoped journeys included), for the failure hook.
_OPEN_WINDOWS: list[Windows] = []


@pytest.fixture(scope="module")
def windows(browser, portal) -> Iterator[Windows]:
    opened = Windows(browser=browser, portal=portal)
    _OPEN_WINDOWS.append(opened)
    try:
        yield opened
    finally:
        _OPEN_WINDOWS.remove(opened)
        opened.close_all()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failed setup or test, save every open page (screenshot and HTML) as artifacts."""
    report = yield
    if report.failed and report.when in ("setup", "call") and _OPEN_WINDOWS:
        folder = artifacts_folder(item.nodeid)
        saved = []
        for opened in _OPEN_WINDOWS:
            saved += opened.save_artifacts(folder)
        if saved:
            report.sections.append(("browser artifacts", "\n".join(str(path) for path in saved)))
    return report
