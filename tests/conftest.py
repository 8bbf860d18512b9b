"""Test fixtures: the application on each database, a per-test transaction rolled back at the
end (so tests never see each other's rows), factories and a login helper.

Every test that uses the database runs on SQLite and, when ``TEST_DATABASE_URL`` is set, on
PostgreSQL too; an unreachable PostgreSQL is then an error, never a skip.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager

import hypothesis
import pytest
import sqlalchemy as sa
from flask import g, request_started
from flask_migrate import upgrade
from flask_sqlalchemy.session import _app_ctx_id

from review_portal import create_app
from review_portal.extensions import db
from review_portal.throttling import limiter_of
from review_portal.unit_of_work import AFTER_COMMIT
from tests import factories


def _worker_database(url: str | None) -> str | None:
    """Under pytest-xdist each worker process gets a PostgreSQL database of its own beside
    ``TEST_DATABASE_URL`` (``<name>_gw0``, ...), created when missing, so workers never wipe
    each other's schema; the environment variable is set to it for every module that reads
    it (the browser tests' own databases are named after it too)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    base = sa.engine.make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"{base.database}_{worker}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            exists = connection.exec_driver_sql(
                "SELECT 1 FROM pg_database WHERE datname = %(name)s", {"name": name}
            ).first()
            if not exists:
                connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()
    own = sa.engine.make_url(url).set(database=name).render_as_string(hide_password=False)
    os.environ["TEST_DATABASE_URL"] = own
    return own


TEST_DATABASE_URL = _worker_database(os.environ.get("TEST_DATABASE_URL"))

# CI runs the property tests on a fixed sequence of examples, so a landing is never decided
# by chance; developers' runs keep exploring new ones.
hypothesis.settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    hypothesis.settings.load_profile("ci")
BACKENDS = ["sqlite"] + (["postgresql"] if TEST_DATABASE_URL else [])


def postgres_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def reset_postgres_schema(url: str) -> None:
    """Drop everything in the test database's public schema (it belongs to the tests)."""
    engine = sa.create_engine(postgres_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql("DROP SCHEMA public CASCADE")
        connection.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()


def make_app(backend: str, tmp_path, **overrides):
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.sqlite'}"
    else:
        url = TEST_DATABASE_URL
        reset_postgres_schema(url)
    app = create_app(
        "testing",
        SQLALCHEMY_DATABASE_URI=url,
        STORAGE_DIR=str(tmp_path / "storage"),
        **overrides,
    )
    with app.app_context():
        upgrade()
    return app


@pytest.fixture(scope="session", params=BACKENDS)
def app(request, tmp_path_factory):
    app = make_app(request.param, tmp_path_factory.mktemp(request.param))
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def backend(app) -> str:
    with app.app_context():
        return db.engine.dialect.name


@pytest.fixture(autouse=True)
def _reset_throttle(request):
    """Each test starts with empty throttling counters (the session's application, with
    its own memory storage, serves many tests)."""
    if "app" not in request.fixturenames:
        yield
        return
    limiter_of(request.getfixturevalue("app")).reset()
    yield


@pytest.fixture
def session(app):
    """The test's database session: everything it and its requests do is rolled back."""
    with app.app_context():
        connection = db.engine.connect()
        transaction = connection.begin()
        original = db.session
        # A plain Session: Flask-SQLAlchemy's own would pick the engine over ``bind``.
        factory = sa.orm.sessionmaker(bind=connection, join_transaction_mode="create_savepoint")
        db.session = sa.orm.scoped_session(factory, scopefunc=_app_ctx_id)
        try:
            yield db.session
        finally:
            db.session.remove()
            db.session = original
            transaction.rollback()
            connection.close()


@pytest.fixture
def client(app, session):
    """A browser. Each request starts with an empty ``g``, as a real request does.

    The ``session`` fixture keeps one application context open for the whole test, so every
    request would otherwise reuse its ``g`` and carry Flask-Login's user, Flask-WTF's CSRF
    token and Flask-Babel's locale from one request (and one client) into the next. Every
    request also starts with the test's own writes committed (see ``clear``).
    """

    def clear(sender, **extra):
        g._get_current_object().__dict__.clear()
        # What the test wrote before the request is in the database, as it would be for a
        # real request (released to the test's savepoint; the test's transaction still rolls
        # it all back at the end): a request that fails rolls back its own work only.
        db.session.commit()
        # The request runs only the after-commit work it registers itself, as with a session
        # of its own: audit records the test wrote stay queued for a later chaining step
        # (so the statements a request makes do not depend on what the test did before it).
        db.session.info.pop(AFTER_COMMIT, None)

    with request_started.connected_to(clear, app):
        yield app.test_client()


CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


class Auth:
    def __init__(self, client):
        self.client = client

    def token(self, path: str = "/") -> str:
        """The CSRF token of the page at ``path`` (after its redirects), as a browser has it."""
        return csrf_from(self.client.get(path, follow_redirects=True).get_data(as_text=True))

    def login(self, user_or_email, password: str = factories.PASSWORD, remember=False):
        email = getattr(user_or_email, "email", user_or_email)
        token = self.token("/login")
        data = {"email": email, "password": password, "csrf_token": token}
        if remember:
            data["remember"] = "y"
        return self.client.post("/login", data=data)

    def logout(self):
        return self.client.post("/logout", data={"csrf_token": self.token("/")})

    def post(self, path: str, data: dict | None = None, token_from: str = "/", **kwargs):
        """POST with a CSRF token taken from a page, as a browser would."""
        data = dict(data or {})
        data.setdefault("csrf_token", self.token(token_from))
        return self.client.post(path, data=data, **kwargs)


@pytest.fixture
def auth(client):
    return Auth(client)


def _aux_postgres_url(name: str) -> str:
    """A URL of a scratch database beside the test database, created empty."""
    base = sa.engine.make_url(postgres_url(TEST_DATABASE_URL))
    scratch = f"{base.database}_{name}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        connection.exec_driver_sql(f'CREATE DATABASE "{scratch}"')
    admin.dispose()
    return base.set(database=scratch).render_as_string(hide_password=False)


@pytest.fixture(params=BACKENDS)
def scratch_database_url(request, tmp_path):
    """An empty database of its own, for tests that commit (migrations, concurrency)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'scratch.sqlite'}"
        return
    url = _aux_postgres_url("scratch")
    yield url
    drop_postgres_database(url)


def drop_postgres_database(url: str) -> None:
    """Drop the database of ``url`` (an :func:`_aux_postgres_url`), connections and all."""
    base = sa.engine.make_url(url)
    admin = sa.create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{base.database}" WITH (FORCE)')
    admin.dispose()


@contextmanager
def migrated_app(database_url: str, tmp_path, **config):
    """A testing application on ``database_url`` (its files under ``tmp_path``), migrated to
    the newest revision; its session and connections are closed when the block ends."""
    app = create_app(
        "testing",
        SQLALCHEMY_DATABASE_URI=database_url,
        STORAGE_DIR=str(tmp_path / "storage"),
        **config,
    )
    with app.app_context():
        upgrade()
    try:
        yield app
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def scratch_app(scratch_database_url, tmp_path):
    """An application on a scratch database, migrated to the newest revision."""
    with migrated_app(scratch_database_url, tmp_path) as app:
        yield app


@pytest.fixture
def english(client):
    """The browser switched to English, for assertions on interface texts by their msgid."""
    with client.session_transaction() as browser_session:
        browser_session["locale"] = "en"
    return client


@pytest.fixture
def discussion_rubric(app, session, tmp_path, monkeypatch):
    """A real rubric file like the default one whose divergence is resolved by discussion,
    in a rubric folder of this test, active for general developmental programs."""
    import shutil

    import yaml

    from review_portal.enums import ProgramType
    from review_portal.rubrics.registry import RUBRIC_DIR, choose_active_rubric, get_rubric
    from tests.factories import CoordinatorFactory

    folder = tmp_path / "rubrics"
    folder.mkdir()
    data = yaml.safe_load((RUBRIC_DIR / "dop-general.yaml").read_text(encoding="utf-8"))
    data["id"] = "dop-discussion"
    data["divergence"]["resolution"] = "discussion"
    shutil.copy(RUBRIC_DIR / "dop-general.yaml", folder / "dop-general.yaml")
    (folder / "dop-discussion.yaml").write_text(
        yaml.safe_dump(data, allow_unicode=True), encoding="utf-8"
    )
    monkeypatch.setitem(app.config, "RUBRIC_DIR", str(folder))
    rubric = get_rubric("dop-discussion", 1)
    choose_active_rubric(ProgramType.GENERAL_DEVELOPMENTAL, rubric, CoordinatorFactory())
    return rubric
