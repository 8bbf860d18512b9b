"""Configurations: production refuses to start without its secrets; DATABASE_URL selects the
database everywhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from review_portal import create_app
from review_portal.config import (
    ConfigurationError,
    DevelopmentConfig,
    development_public_url,
    get_config,
    instance_dir,
    source_root,
)
from tests.test_demo import PRODUCTION_SETTINGS

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({}, "SECRET_KEY, DATABASE_URL"),
        ({"SECRET_KEY": "s3cret"}, "DATABASE_URL"),
        ({"DATABASE_URL": "sqlite:////tmp/x.sqlite"}, "SECRET_KEY"),
    ],
)
def test_production_refuses_to_start_naming_what_is_missing(monkeypatch, env, missing):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigurationError) as error:
        create_app("production")
    assert str(error.value).endswith(missing)


SECRET = "from-the-environment-and-long-enough-to-sign"


def test_production_takes_secret_and_database_from_environment(monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path / 'prod.sqlite'}"
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.setenv("DATABASE_URL", url)
    app = create_app("production", **PRODUCTION_SETTINGS)
    assert app.config["SECRET_KEY"] == SECRET
    assert app.config["SQLALCHEMY_DATABASE_URI"] == url
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_development_defaults_to_sqlite_under_instance(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert get_config("development") is DevelopmentConfig
    assert DevelopmentConfig.SQLALCHEMY_DATABASE_URI.endswith("instance/review_portal.sqlite")


def test_instance_dir_of_a_checkout_is_its_root_whatever_the_current_directory(tmp_path):
    """``make run`` and the editable install: ``instance/`` beside ``pyproject.toml``."""
    assert source_root() == ROOT
    assert instance_dir({}, cwd=tmp_path) == ROOT / "instance"


def test_instance_dir_of_an_installed_package_is_in_the_current_directory(tmp_path):
    """From a wheel the package sits in ``site-packages``: nothing is written there."""
    package = tmp_path / "site-packages" / "review_portal"
    package.mkdir(parents=True)
    work = tmp_path / "work"
    assert source_root(package) is None
    assert instance_dir({}, package_dir=package, cwd=work) == work / "instance"


def test_instance_dir_ignores_another_projects_pyproject(tmp_path):
    package = tmp_path / "vendor" / "review_portal"
    package.mkdir(parents=True)
    (tmp_path / "vendor" / "pyproject.toml").write_text('[project]\nname = "other"\n')
    assert source_root(package) is None
    assert instance_dir({}, package_dir=package, cwd=tmp_path) == tmp_path / "instance"


def test_instance_dir_variable_wins_and_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert instance_dir({"INSTANCE_DIR": str(tmp_path / "data")}) == tmp_path / "data"
    assert instance_dir({"INSTANCE_DIR": "relative"}) == tmp_path / "relative"
    package = tmp_path / "site-packages" / "review_portal"
    environ = {"INSTANCE_DIR": str(tmp_path / "data")}
    assert instance_dir(environ, package_dir=package, cwd=tmp_path) == tmp_path / "data"


def printed_by_a_new_process(code: str, environ: dict) -> list[str]:
    """The lines ``python -c code`` prints in a new process with ``environ`` (the
    configuration is read at import, as in the ``flask`` process)."""
    return subprocess.run(
        [sys.executable, "-c", code],
        env=environ,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()


def test_instance_dir_variable_places_the_development_database_and_storage(tmp_path):
    """Read at import, in a new process as ``flask`` starts one."""
    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "STORAGE_DIR")} | {
        "INSTANCE_DIR": str(tmp_path)
    }
    printed = printed_by_a_new_process(
        "from review_portal.config import DevelopmentConfig as c;"
        "print(c.SQLALCHEMY_DATABASE_URI); print(c.STORAGE_DIR)",
        environ,
    )
    assert printed == [f"sqlite:///{tmp_path}/review_portal.sqlite", f"{tmp_path}/storage"]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "http://127.0.0.1:5000"),
        ({"PORT": "5101"}, "http://127.0.0.1:5101"),
        ({"PORT": "5101", "PUBLIC_URL": "https://portal.example"}, "https://portal.example"),
        ({"PORT": "http://evil.example"}, "http://127.0.0.1:5000"),
        ({"PORT": "99999"}, "http://127.0.0.1:5000"),
        ({"PORT": "٥١٠١"}, "http://127.0.0.1:5000"),
    ],
)
def test_development_public_url_follows_port(environ, expected):
    assert development_public_url(environ) == expected


def test_port_sets_the_development_public_url_of_a_new_process():
    """``PORT=5101 make run``: the development configuration, read at import in the
    ``flask`` process, links to port 5101."""
    environ = {k: v for k, v in os.environ.items() if k != "PUBLIC_URL"} | {"PORT": "5101"}
    printed = printed_by_a_new_process(
        "from review_portal import config; print(config.DevelopmentConfig.PUBLIC_URL)", environ
    )
    assert printed == ["http://127.0.0.1:5101"]


def test_unknown_configuration_is_refused():
    with pytest.raises(ConfigurationError, match="Unknown configuration 'staging'"):
        get_config("staging")


def test_postgresql_url_uses_psycopg3(tmp_path):
    app = create_app(
        "testing", SQLALCHEMY_DATABASE_URI="postgresql://postgres@127.0.0.1:5432/nowhere"
    )
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")
