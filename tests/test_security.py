"""HTTP hardening: the headers of every answer (content security policy, nosniff, referrer
policy, HSTS on HTTPS only), the trusted proxy hops, and the production start-up check that
names each unsafe setting."""

from __future__ import annotations

import pytest

from review_portal import create_app
from review_portal.config import ConfigurationError, ProductionConfig, production_problems
from tests.test_demo import PRODUCTION_SETTINGS

SECRET = "x" * 40


def app_with(tmp_path, **settings):
    return create_app(
        "testing",
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'security.sqlite'}",
        STORAGE_DIR=str(tmp_path / "storage"),
        **settings,
    )


def test_every_page_carries_the_policy_headers(client):
    for path in ("/login", "/registry", "/static/css/portal.css", "/no-such-page"):
        response = client.get(path)
        response.close()
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy, path
        assert "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy, path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["Referrer-Policy"] == "same-origin", path


def test_hsts_only_on_https_answers(tmp_path):
    app = app_with(tmp_path, HSTS_SECONDS=31536000)
    client = app.test_client()

    secure = client.get("/login", base_url="https://nok.rmc67.ru")
    plain = client.get("/login", base_url="http://nok.rmc67.ru")

    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "Strict-Transport-Security" not in plain.headers


@pytest.mark.parametrize(("hops", "believed"), [(1, True), (0, False)])
def test_forwarded_scheme_is_believed_only_from_trusted_proxies(tmp_path, hops, believed):
    app = app_with(tmp_path, HSTS_SECONDS=600, TRUSTED_PROXY_HOPS=hops)
    response = app.test_client().get(
        "/login", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    )
    assert ("Strict-Transport-Security" in response.headers) is believed


def production_config(**changes) -> dict:
    config = {
        name: getattr(ProductionConfig, name) for name in dir(ProductionConfig) if name.isupper()
    }
    config.update(SECRET_KEY=SECRET, **PRODUCTION_SETTINGS)
    config.update(changes)
    return config


def test_a_hardened_production_configuration_has_no_problem():
    assert production_problems(production_config()) == []


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"SECRET_KEY": "dev-secret-key-change-me"}, "SECRET_KEY"),
        ({"PUBLIC_URL": "http://nok.rmc67.ru"}, "PUBLIC_URL"),
        ({"SESSION_COOKIE_SECURE": False}, "SESSION_COOKIE_SECURE"),
        ({"REMEMBER_COOKIE_SECURE": False}, "REMEMBER_COOKIE_SECURE"),
        ({"HSTS_SECONDS": 0}, "HSTS_SECONDS"),
        ({"CONTENT_SECURITY_POLICY": ""}, "CONTENT_SECURITY_POLICY"),
        ({"MAX_CONTENT_LENGTH": None}, "MAX_CONTENT_LENGTH"),
        ({"RATELIMIT_STORAGE_URI": "memory://"}, "RATELIMIT_STORAGE_URI"),
        ({"TRUSTED_PROXY_HOPS": 9}, "TRUSTED_PROXY_HOPS"),
        ({"AUDIT_ANCHOR_KEY": ""}, "AUDIT_ANCHOR_KEY"),
        ({"AUDIT_ANCHOR_KEY": "dev-audit-anchor-key-change-me"}, "AUDIT_ANCHOR_KEY"),
        ({"AUDIT_ANCHOR_KEY": "short"}, "AUDIT_ANCHOR_KEY"),
        ({"AUDIT_ANCHOR_KEY": SECRET}, "AUDIT_ANCHOR_KEY"),
    ],
)
def test_each_unsafe_production_setting_is_named(changes, named):
    problems = production_problems(production_config(**changes))
    assert len(problems) == 1
    assert problems[0].startswith(named)


def test_production_refuses_to_start_without_its_own_audit_anchor_key(monkeypatch, tmp_path):
    """The anchor key comes from the environment and is not the session key: whoever can
    read SECRET_KEY (every web process) cannot sign the audit chain with it."""
    for name in ("SECRET_KEY", "SQLALCHEMY_DATABASE_URI", "AUDIT_ANCHOR_KEY"):
        monkeypatch.setattr(ProductionConfig, name, getattr(ProductionConfig, name))
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'prod.sqlite'}")
    settings = {k: v for k, v in PRODUCTION_SETTINGS.items() if k != "AUDIT_ANCHOR_KEY"}

    monkeypatch.delenv("AUDIT_ANCHOR_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="AUDIT_ANCHOR_KEY must be a random string"):
        create_app("production", **settings)
    monkeypatch.setenv("AUDIT_ANCHOR_KEY", SECRET)
    with pytest.raises(ConfigurationError, match="other than SECRET_KEY"):
        create_app("production", **settings)
    monkeypatch.setenv("AUDIT_ANCHOR_KEY", "y" * 40)
    assert create_app("production", **settings).config["AUDIT_ANCHOR_KEY"] == "y" * 40


def test_production_start_is_refused_naming_the_unsafe_settings(monkeypatch, tmp_path):
    monkeypatch.setattr(ProductionConfig, "SECRET_KEY", ProductionConfig.SECRET_KEY)
    monkeypatch.setattr(
        ProductionConfig, "SQLALCHEMY_DATABASE_URI", ProductionConfig.SQLALCHEMY_DATABASE_URI
    )
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'prod.sqlite'}")

    with pytest.raises(ConfigurationError) as error:
        create_app("production", PUBLIC_URL="http://nok.rmc67.ru")

    message = str(error.value)
    assert message.startswith("Production configuration is not safe: ")
    assert "PUBLIC_URL must be the portal's https:// address" in message
    assert "RATELIMIT_STORAGE_URI must be shared by every web process" in message
