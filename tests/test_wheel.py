"""The portal as a wheel: built, installed into an empty virtual environment, migrated and
served with nothing of the checkout in reach.

Once for the module (slow: a virtual environment and every runtime dependency):

1. the checkout's files (what git tracks or would add; no ``build/``, no compiled ``.mo``)
   are copied to a temporary folder;
2. a new virtual environment (``python -m venv``, no system site packages) gets the runtime
   lock file, ``pip install --require-hashes -r requirements/runtime.txt``, which also pins
   the build tools (setuptools, wheel, Babel);
3. the wheel is built from the copy in that environment, ``pip wheel --no-deps
   --no-build-isolation --check-build-dependencies``: nothing outside the lock is fetched,
   and the build must compile the translations itself (setup.py);
4. the wheel is installed with ``--no-deps``.

pip is the project environment's own, aimed at the new environment with ``--python``, so
its download cache is reused. Without the package index the install fails, and so does the
test, with pip's message: nothing here is skipped.

The portal then runs from the new environment with the current directory outside the
checkout and no ``PYTHONPATH``: ``flask --app review_portal.wsgi db upgrade`` on a fresh
SQLite file, gunicorn answering ``/healthz`` and the login page in Russian, and the
development defaults writing ``./instance`` of the current directory, never the installed
package's folder.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.processes import free_port, spawn, stop, wait_until
from tests.test_docs import repository_files

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "review_portal"
#: Generous: a cold package cache downloads every runtime dependency.
INSTALL_TIMEOUT = 1800
STEP_TIMEOUT = 180
#: What must not leak from the test run into the installed portal's processes.
ISOLATED_VARIABLES = (
    "PYTHONPATH",
    "PYTHONHOME",
    "FLASK_APP",
    "REVIEW_PORTAL_CONFIG",
    "DATABASE_URL",
    "STORAGE_DIR",
    "INSTANCE_DIR",
    "CELERY_BROKER_URL",
    "RATELIMIT_STORAGE_URI",
    "VIRTUAL_ENV",
)


def isolated_environ(**extra: str) -> dict[str, str]:
    """This process's environment without what would point a process at the checkout."""
    environ = {k: v for k, v in os.environ.items() if k not in ISOLATED_VARIABLES}
    return environ | extra


@dataclass
class Installed:
    wheel: Path
    venv: Path
    site_packages: Path
    workdir: Path

    def program(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def run(self, argv: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            argv,
            cwd=cwd,
            env=isolated_environ(**extra),
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT,
        )


def pip(venv: Path, *args: str, timeout: int = INSTALL_TIMEOUT) -> None:
    """This environment's pip, acting on ``venv``; a failure shows pip's own words."""
    command = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), *args]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=isolated_environ()
    )
    assert done.returncode == 0, (
        f"{' '.join(command)} failed (exit {done.returncode}); is the package index "
        f"reachable?\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    )


def copy_checkout(target: Path) -> Path:
    """The checkout's own files only: no build leftovers, no compiled catalogs."""
    for source in repository_files():
        relative = source.relative_to(ROOT)
        if relative.parts[0] in ("build", "dist") or relative.suffix == ".mo":
            continue
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)
    return target


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    base = tmp_path_factory.mktemp("wheel")
    source = copy_checkout(base / "source")
    assert not list(source.rglob("*.mo")), "the build must compile the catalogs itself"
    venv = base / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)],
        check=True,
        timeout=STEP_TIMEOUT,
    )
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()
    pip(
        venv,
        "install",
        "--no-compile",
        "--require-hashes",
        "-r",
        str(ROOT / "requirements" / "runtime.txt"),
    )
    dist = base / "dist"
    pip(
        venv,
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--check-build-dependencies",
        "--wheel-dir",
        str(dist),
        str(source),
    )
    (wheel,) = dist.glob("review_portal-*.whl")
    pip(venv, "install", "--no-deps", str(wheel))
    (site_packages,) = venv.glob("lib/python*/site-packages")
    workdir = base / "run"
    workdir.mkdir()
    return Installed(wheel=wheel, venv=venv, site_packages=site_packages, workdir=workdir)


def newest_revision() -> str:
    """The head revision: the migration files are named ``<date>_<revision>_<slug>.py``."""
    versions = ROOT / PACKAGE / "migrations" / "versions"
    return sorted(versions.glob("*.py"))[-1].name.split("_")[1]


def tables_of(database: Path) -> tuple[set[str], str]:
    """The tables of a SQLite file and its Alembic revision."""
    assert database.is_file(), f"{database} was not created"
    with closing(sqlite3.connect(database)) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        (version,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    return tables, version


def test_the_wheel_holds_the_package_and_nothing_beside_it(installed):
    names = zipfile.ZipFile(installed.wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {PACKAGE, installed.wheel.name.split("-py")[0] + ".dist-info"}
    # The configuration, the entry point and the migrations are the package's own.
    for module in ("config.py", "wsgi.py", "__init__.py"):
        assert f"{PACKAGE}/{module}" in names
    source_migrations = ROOT / PACKAGE / "migrations"
    for name in ("alembic.ini", "env.py", "script.py.mako"):
        assert f"{PACKAGE}/migrations/{name}" in names
    versions = sorted(p.name for p in (source_migrations / "versions").glob("*.py"))
    packed = sorted(Path(n).name for n in names if n.startswith(f"{PACKAGE}/migrations/versions/"))
    assert [n for n in packed if n.endswith(".py")] == versions
    # Every catalog compiled, none forgotten.
    catalogs = sorted((ROOT / PACKAGE / "translations").glob("*/LC_MESSAGES/*.po"))
    assert catalogs
    for po in catalogs:
        mo = po.with_suffix(".mo").relative_to(ROOT).as_posix()
        assert mo in names, f"{mo} is missing from the wheel"


def test_the_installed_package_is_the_wheels_and_needs_no_checkout(installed):
    printed = installed.run(
        [
            installed.program("python"),
            "-c",
            "import importlib.util, review_portal;"
            "print(review_portal.__file__);"
            "print(importlib.util.find_spec('config'), importlib.util.find_spec('migrations'))",
        ],
        cwd=installed.workdir,
    )
    assert printed.returncode == 0, printed.stderr
    location, missing = printed.stdout.splitlines()
    assert Path(location).is_relative_to(installed.site_packages)
    assert missing == "None None"


def test_flask_db_upgrade_migrates_a_fresh_sqlite_file(installed, tmp_path):
    database = tmp_path / "x.sqlite"
    flask = [installed.program("flask"), "--app", f"{PACKAGE}.wsgi"]
    done = installed.run(
        [*flask, "db", "upgrade"], installed.workdir, DATABASE_URL=f"sqlite:///{database}"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    tables, version = tables_of(database)
    assert version == newest_revision()
    assert {"users", "programs", "reviews", "audit_events"} <= tables
    # The installed copy of the migrations knows the same head as the checkout's.
    heads = installed.run(
        [*flask, "db", "heads"], installed.workdir, DATABASE_URL=f"sqlite:///{database}"
    )
    assert heads.stdout.split()[:2] == [newest_revision(), "(head)"], heads.stderr


def test_the_development_defaults_write_instance_in_the_current_directory(installed, tmp_path):
    """No DATABASE_URL, no STORAGE_DIR: ``./instance``, never the package's folder."""
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    flask = [installed.program("flask"), "--app", f"{PACKAGE}.wsgi"]
    done = installed.run([*flask, "db", "upgrade"], workdir)
    assert done.returncode == 0, done.stdout + done.stderr
    _, version = tables_of(workdir / "instance" / "review_portal.sqlite")
    assert version == newest_revision()
    printed = installed.run(
        [
            installed.program("python"),
            "-c",
            "from review_portal.config import DevelopmentConfig as c; print(c.STORAGE_DIR)",
        ],
        workdir,
    )
    assert printed.stdout.strip() == str(workdir / "instance" / "storage"), printed.stderr
    elsewhere = installed.run(
        [*flask, "db", "current"], workdir, INSTANCE_DIR=str(tmp_path / "chosen")
    )
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert (tmp_path / "chosen" / "review_portal.sqlite").exists()
    assert not list(installed.venv.rglob("instance")), "the installed package wrote into itself"


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def reached(url: str) -> tuple[int, str] | None:
    """``get(url)``, or None while nothing answers there."""
    try:
        return get(url)
    except (urllib.error.URLError, ConnectionError):
        return None


def test_gunicorn_serves_healthz_and_the_login_page_in_russian(installed, tmp_path):
    database = f"sqlite:///{tmp_path / 'served.sqlite'}"
    migrated = installed.run(
        [installed.program("flask"), "--app", f"{PACKAGE}.wsgi", "db", "upgrade"],
        installed.workdir,
        DATABASE_URL=database,
    )
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    port = free_port()
    log = tmp_path / "gunicorn.log"
    command = [installed.program("gunicorn"), "--workers", "1", "--bind", f"127.0.0.1:{port}"]
    server = spawn(
        [*command, f"{PACKAGE}.wsgi:app"],
        log,
        env=isolated_environ(DATABASE_URL=database),
        cwd=installed.workdir,
    )
    try:
        status, body = wait_until(
            lambda: reached(f"http://127.0.0.1:{port}/healthz"),
            "gunicorn answers /healthz",
            timeout=60,
            process=server,
            log=log,
        )
        assert (status, json.loads(body)) == (200, {"status": "ok", "database": "ok"})
        status, page = get(f"http://127.0.0.1:{port}/login")
        assert status == 200
        assert '<html lang="ru">' in page
        assert "<h1>Войти</h1>" in page, "the login page is not in Russian: no compiled catalog?"
        assert ">Log in<" not in page
    finally:
        stop(server, timeout=30)
