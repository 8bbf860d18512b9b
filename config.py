"""Configuration classes: development (SQLite under instance/), testing and production.

``DATABASE_URL`` selects the database in every configuration. Production refuses to start
unless ``SECRET_KEY`` and ``DATABASE_URL`` come from the environment.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = BASE_DIR / "instance"


class ConfigurationError(RuntimeError):
    """Raised when the configuration cannot run (a required variable is missing)."""


class BaseConfig:
    SECRET_KEY = os.environ.get("SECRET_KEY", "dev-secret-key-change-me")
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL") or (
        f"sqlite:///{INSTANCE_DIR / 'review_portal.sqlite'}"
    )
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}
    SQLALCHEMY_TRACK_MODIFICATIONS = False

    #: Where uploaded files and issued PDFs live (outside the web root).
    STORAGE_DIR = os.environ.get("STORAGE_DIR") or str(INSTANCE_DIR / "storage")
    MAX_UPLOAD_MB = int(os.environ.get("MAX_UPLOAD_MB", "20"))
    #: Werkzeug refuses larger requests before reading them (a file plus its form fields).
    MAX_CONTENT_LENGTH = (MAX_UPLOAD_MB + 1) * 1024 * 1024

    BABEL_DEFAULT_LOCALE = "ru"
    BABEL_DEFAULT_TIMEZONE = os.environ.get("TIMEZONE", "Europe/Moscow")
    LANGUAGES = ("ru", "en")

    BOOTSTRAP_SERVE_LOCAL = True
    WTF_CSRF_TIME_LIMIT = None

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"

    #: Storage of the login throttling counters (``limits`` URI): memory for one process,
    #: ``redis://...`` when several web processes share the work.
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    LOGIN_LIMIT_PER_ACCOUNT = os.environ.get("LOGIN_LIMIT_PER_ACCOUNT", "5 per 15 minutes")
    LOGIN_LIMIT_PER_ADDRESS = os.environ.get("LOGIN_LIMIT_PER_ADDRESS", "20 per 15 minutes")

    PASSWORD_RESET_HOURS = 2
    MAIL_SENDER = os.environ.get("MAIL_SENDER", "portal@rmc.example")
    #: Empty: messages are written to the log instead of being sent (development).
    SMTP_HOST = os.environ.get("SMTP_HOST", "")
    SMTP_PORT = int(os.environ.get("SMTP_PORT", "25"))
    #: Credentials for the SMTP server; both empty: no login (a relay that trusts the host).
    SMTP_USERNAME = os.environ.get("SMTP_USERNAME", "")
    SMTP_PASSWORD = os.environ.get("SMTP_PASSWORD", "")
    #: ``none`` (plain SMTP, e.g. a local relay on port 25), ``starttls`` (upgrade to TLS,
    #: usually port 587) or ``ssl`` (TLS from the first byte, usually port 465). Default:
    #: ``starttls`` when credentials are set (a password never travels in clear), else ``none``.
    SMTP_SECURITY = os.environ.get("SMTP_SECURITY", "").strip().lower() or (
        "starttls" if SMTP_USERNAME else "none"
    )
    #: A PEM file of extra trusted CAs for the server's certificate (e.g. a national or
    #: corporate root that the system store lacks); empty: the system's trusted CAs only.
    SMTP_CA_FILE = os.environ.get("SMTP_CA_FILE", "")
    #: Seconds to wait for the SMTP server before an attempt counts as failed.
    SMTP_TIMEOUT = int(os.environ.get("SMTP_TIMEOUT", "30"))
    #: Delivery attempts (with growing delays, about a day in all) before a message is
    #: marked failed; a failed message stays in the outbox for the coordinators to see.
    MAIL_MAX_ATTEMPTS = int(os.environ.get("MAIL_MAX_ATTEMPTS", "12"))

    #: Background jobs: with a broker (``redis://127.0.0.1:6379/0``) they run on Celery
    #: workers (``flask --app wsgi worker``); without one, in a thread of the web process.
    CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
    #: Seconds before Redis gives an unacknowledged task to another worker: longer than the
    #: longest job, or a job still running would be started a second time.
    CELERY_VISIBILITY_TIMEOUT = int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", str(6 * 3600)))
    #: The queue of this portal's tasks (several portals may share one Redis).
    CELERY_QUEUE = os.environ.get("CELERY_QUEUE", "review_portal")

    #: Public base URL used in e-mails and on documents.
    PUBLIC_URL = os.environ.get("PUBLIC_URL", "http://127.0.0.1:5000")

    TESTING = False
    DEBUG = False
    PRODUCTION = False


class DevelopmentConfig(BaseConfig):
    DEBUG = False


class TestingConfig(BaseConfig):
    TESTING = True
    SECRET_KEY = "testing-secret"
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL") or "sqlite://"
    WTF_CSRF_ENABLED = True
    PASSWORD_HASH_FAST = True
    SERVER_NAME = None


class ProductionConfig(BaseConfig):
    PRODUCTION = True
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True

    @classmethod
    def check(cls) -> None:
        missing = [name for name in ("SECRET_KEY", "DATABASE_URL") if not os.environ.get(name)]
        if missing:
            raise ConfigurationError(
                "Production configuration needs these environment variables: " + ", ".join(missing)
            )


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def get_config(name: str | None = None) -> type[BaseConfig]:
    """The configuration class for ``name`` (default: ``REVIEW_PORTAL_CONFIG`` or development)."""
    name = name or os.environ.get("REVIEW_PORTAL_CONFIG", "development")
    try:
        config = CONFIGS[name]
    except KeyError:
        raise ConfigurationError(
            f"Unknown configuration {name!r}; expected one of {sorted(CONFIGS)}"
        ) from None
    if config is ProductionConfig:
        ProductionConfig.check()
        # Class attributes were read at import time; take the environment as it is now.
        config.SECRET_KEY = os.environ["SECRET_KEY"]
        config.SQLALCHEMY_DATABASE_URI = os.environ["DATABASE_URL"]
    return config
