"""Configurations: production refuses to start without its secrets; DATABASE_URL selects the
database everywhere."""

from __future__ import annotations

import pytest

from config import ConfigurationError, DevelopmentConfig, get_config
from review_portal import create_app
from tests.test_demo import PRODUCTION_SETTINGS


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


def test_unknown_configuration_is_refused():
    with pytest.raises(ConfigurationError, match="Unknown configuration 'staging'"):
        get_config("staging")


def test_postgresql_url_uses_psycopg3(tmp_path):
    app = create_app(
        "testing", SQLALCHEMY_DATABASE_URI="postgresql://postgres@127.0.0.1:5432/nowhere"
    )
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")
