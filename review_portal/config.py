"""Configuration classes: development (SQLite under the instance folder), testing and
production.

``DATABASE_URL`` selects the database in every configuration. Production refuses to start
unless ``SECRET_KEY`` and ``DATABASE_URL`` come from the environment, and then unless its
hardening holds (:func:`production_problems`: a real secret and a separate audit anchor
key, HTTPS with secure cookies and HSTS, a content security policy, a request size limit,
shared throttle counters, the number of trusted proxies).

The instance folder holds what the portal writes when ``DATABASE_URL`` and ``STORAGE_DIR``
do not say otherwise: the development SQLite file ``review_portal.sqlite`` and the file
storage ``storage/``. It is, in this order (:func:`instance_dir`):

1. ``INSTANCE_DIR`` from the environment, when set;
2. in a source checkout (the package beside the project's ``pyproject.toml``, as ``make run``
   and an editable install use it), ``instance/`` at the checkout's root, whatever the
   current directory;
3. otherwise (the package installed from a wheel, in ``site-packages``), ``instance/`` in
   the current working directory: an installed package never writes inside itself.

Production sets ``DATABASE_URL`` and ``STORAGE_DIR`` and so uses no instance folder.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

#: The package's own folder (``review_portal/``).
PACKAGE_DIR = Path(__file__).resolve().parent


def source_root(package_dir: Path = PACKAGE_DIR) -> Path | None:
    """The root of the source checkout the package runs from, or ``None`` when it is
    installed (no ``pyproject.toml`` of this project beside it)."""
    pyproject = package_dir.parent / "pyproject.toml"
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return package_dir.parent if project.get("name") == "review-portal" else None


def instance_dir(
    environ=os.environ, package_dir: Path = PACKAGE_DIR, cwd: Path | None = None
) -> Path:
    """The instance folder, as the module's docstring says: ``INSTANCE_DIR``, else the
    checkout's ``instance/``, else ``instance/`` of the current directory (absolute)."""
    if environ.get("INSTANCE_DIR"):
        return Path(environ["INSTANCE_DIR"]).expanduser().absolute()
    root = source_root(package_dir)
    if root is not None:
        return root / "instance"
    return (cwd or Path.cwd()) / "instance"


#: Read once at import, like the other settings.
INSTANCE_DIR = instance_dir()

#: The development key: never accepted in production.
DEVELOPMENT_SECRET_KEY = "dev-secret-key-change-me"
#: The development key of the audit chain's anchors: never accepted in production.
DEVELOPMENT_AUDIT_ANCHOR_KEY = "dev-audit-anchor-key-change-me"


class ConfigurationError(RuntimeError):
    """Raised when the configuration cannot run (a required variable is missing)."""


class BaseConfig:
    SECRET_KEY = os.environ.get("SECRET_KEY", DEVELOPMENT_SECRET_KEY)
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL") or (
        f"sqlite:///{INSTANCE_DIR / 'review_portal.sqlite'}"
    )
    #: The key the audit chain's head is signed with (HMAC-SHA256) every day and at every
    #: registry publication; separate from ``SECRET_KEY`` and kept outside the database, so
    #: that someone who can write to the database cannot sign a rewritten chain.
    AUDIT_ANCHOR_KEY = os.environ.get("AUDIT_ANCHOR_KEY", DEVELOPMENT_AUDIT_ANCHOR_KEY)
    #: Retired anchor keys, comma-separated: the anchors they signed still verify.
    AUDIT_ANCHOR_PREVIOUS_KEYS = [
        key.strip()
        for key in os.environ.get("AUDIT_ANCHOR_PREVIOUS_KEYS", "").split(",")
        if key.strip()
    ]
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}
    SQLALCHEMY_TRACK_MODIFICATIONS = False

    #: Where uploaded files and issued PDFs live (outside the web root).
    STORAGE_DIR = os.environ.get("STORAGE_DIR") or str(INSTANCE_DIR / "storage")
    MAX_UPLOAD_MB = int(os.environ.get("MAX_UPLOAD_MB", "20"))
    #: Werkzeug refuses larger requests before reading them (a file plus its form fields).
    MAX_CONTENT_LENGTH = (MAX_UPLOAD_MB + 1) * 1024 * 1024
    #: Limits on reading a document (review_portal/programs/extract.py): the XML of a
    #: DOCX or ODT inflated, all of an archive inflated, paragraphs, PDF pages. A document
    #: past one is refused at upload (ZIP sizes) or not compared ("too large to compare").
    DOCUMENT_MAX_XML_MB = int(os.environ.get("DOCUMENT_MAX_XML_MB", "20"))
    DOCUMENT_MAX_UNPACKED_MB = int(os.environ.get("DOCUMENT_MAX_UNPACKED_MB", "100"))
    DOCUMENT_MAX_PARAGRAPHS = int(os.environ.get("DOCUMENT_MAX_PARAGRAPHS", "50000"))
    DOCUMENT_MAX_PAGES = int(os.environ.get("DOCUMENT_MAX_PAGES", "1000"))

    BABEL_DEFAULT_LOCALE = "ru"
    BABEL_DEFAULT_TIMEZONE = os.environ.get("TIMEZONE", "Europe/Moscow")
    LANGUAGES = ("ru", "en")

    BOOTSTRAP_SERVE_LOCAL = True
    WTF_CSRF_TIME_LIMIT = None

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"

    #: Storage of the throttling counters (Flask-Limiter on a ``limits`` URI): memory for
    #: one process, ``redis://...`` when several web processes share the work.
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    #: A limit counts the requests of its last window (no burst at a window's edge).
    RATELIMIT_STRATEGY = "moving-window"
    #: While the storage is unreachable each process counts in its own memory (and tries
    #: the storage again now and then): an outage of Redis neither stops logins nor the limits.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    #: The limits (``limits`` strings; review_portal/accounts/throttle.py says why these).
    #: Failed logins for one e-mail from one address (or from a browser trusted for it).
    LOGIN_LIMIT_PER_PAIR = os.environ.get("LOGIN_LIMIT_PER_PAIR", "5 per 15 minutes")
    #: Failed logins from one address over all e-mails (many people may share an address).
    LOGIN_LIMIT_PER_ADDRESS = os.environ.get("LOGIN_LIMIT_PER_ADDRESS", "50 per 15 minutes")
    #: Submissions of the two registration forms from one address.
    REGISTRATION_LIMIT_PER_ADDRESS = os.environ.get("REGISTRATION_LIMIT_PER_ADDRESS", "60 per hour")
    #: Password-reset requests from one address, and for one e-mail (from anywhere: past
    #: it nothing is sent, and the answer stays the same).
    PASSWORD_RESET_LIMIT_PER_ADDRESS = os.environ.get(
        "PASSWORD_RESET_LIMIT_PER_ADDRESS", "10 per hour"
    )
    PASSWORD_RESET_LIMIT_PER_EMAIL = os.environ.get("PASSWORD_RESET_LIMIT_PER_EMAIL", "3 per hour")
    #: Documents uploaded to the public verification page from one address.
    VERIFY_UPLOAD_LIMIT_PER_ADDRESS = os.environ.get(
        "VERIFY_UPLOAD_LIMIT_PER_ADDRESS", "60 per hour"
    )

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
    #: Development only (ignored in production): a Maildir that receives what is delivered
    #: without ``SMTP_HOST``, read at ``/dev/mail``; empty: such mail goes to the log.
    DEV_MAILBOX_DIR = ""
    #: Development only: seconds between the web process's looks at the outbox when jobs
    #: run in its threads (due mail is then sent by a ``send_mail`` job); 0: never.
    DEV_MAIL_EVERY = 0

    #: Background jobs: with a broker (``redis://127.0.0.1:6379/0``) they run on Celery
    #: workers (``flask --app review_portal.wsgi worker``); without one, in a thread of the
    #: web process.
    CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
    #: Seconds before Redis gives an unacknowledged task to another worker: longer than the
    #: longest job, or a job still running would be started a second time.
    CELERY_VISIBILITY_TIMEOUT = int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", str(6 * 3600)))
    #: The queue of this portal's tasks (several portals may share one Redis).
    CELERY_QUEUE = os.environ.get("CELERY_QUEUE", "review_portal")
    #: Seconds a send to the broker may wait for a connection (then two quick retries):
    #: an unreachable broker leaves the job queued instead of holding the request.
    CELERY_SEND_TIMEOUT = float(os.environ.get("CELERY_SEND_TIMEOUT", "3"))
    #: Seconds between two heartbeats of a running job (besides one at each committed unit).
    JOB_HEARTBEAT_SECONDS = float(os.environ.get("JOB_HEARTBEAT_SECONDS", "15"))
    #: Seconds without a heartbeat after which a running job counts as abandoned (its worker
    #: died): the sweeper requeues it. Several heartbeats long.
    JOB_STALE_AFTER_SECONDS = float(os.environ.get("JOB_STALE_AFTER_SECONDS", "120"))
    #: Seconds between two sweeps (Celery beat's ``sweep_jobs``).
    JOB_SWEEP_SECONDS = float(os.environ.get("JOB_SWEEP_SECONDS", "60"))

    #: Public base URL used in e-mails and on documents.
    PUBLIC_URL = os.environ.get("PUBLIC_URL", "http://127.0.0.1:5000")

    #: Reverse proxies in front of the portal whose ``X-Forwarded-For/-Proto/-Host`` headers
    #: are believed (0: none; the client's address and scheme are the connection's own).
    TRUSTED_PROXY_HOPS = int(os.environ.get("TRUSTED_PROXY_HOPS", "0"))
    #: The content security policy of every page: nothing but the portal's own scripts,
    #: styles, fonts and images (a closed network has nothing else anyway).
    CONTENT_SECURITY_POLICY = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'none'"
    )
    #: ``Strict-Transport-Security`` on HTTPS answers (production: a year); 0 sends none.
    HSTS_SECONDS = 0

    #: The level of what is logged (to standard error): DEBUG, INFO, WARNING, ERROR.
    LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
    #: ``text`` or ``json`` (one JSON object per line); empty: json in production, else text.
    LOG_FORMAT = os.environ.get("LOG_FORMAT", "")

    TESTING = False
    DEBUG = False
    PRODUCTION = False


def development_public_url(environ=os.environ) -> str:
    """``PUBLIC_URL`` when set, else the address ``flask run`` serves on: ``PORT`` (as
    ``make run`` uses it; ignored unless a port number) on 127.0.0.1, so the links in
    e-mails, PDFs and QR codes lead to the running portal."""
    if environ.get("PUBLIC_URL"):
        return environ["PUBLIC_URL"]
    port = environ.get("PORT", "")
    if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        port = "5000"
    return f"http://127.0.0.1:{int(port)}"


class DevelopmentConfig(BaseConfig):
    DEBUG = False
    PUBLIC_URL = development_public_url()
    DEV_MAILBOX_DIR = os.environ.get("DEV_MAILBOX_DIR", str(INSTANCE_DIR / "mail"))
    DEV_MAIL_EVERY = float(os.environ.get("DEV_MAIL_EVERY", "5"))


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
    PREFERRED_URL_SCHEME = "https"
    HSTS_SECONDS = int(os.environ.get("HSTS_SECONDS", str(365 * 24 * 3600)))
    #: In production the portal stands behind one reverse proxy unless told otherwise.
    TRUSTED_PROXY_HOPS = int(os.environ.get("TRUSTED_PROXY_HOPS", "1"))

    @classmethod
    def check(cls) -> None:
        missing = [name for name in ("SECRET_KEY", "DATABASE_URL") if not os.environ.get(name)]
        if missing:
            raise ConfigurationError(
                "Production configuration needs these environment variables: " + ", ".join(missing)
            )


#: Shortest production ``SECRET_KEY`` (characters): session cookies are signed with it.
MIN_SECRET_KEY_LENGTH = 32


def production_problems(config) -> list[str]:
    """What makes a production configuration unsafe to serve, each naming its setting
    (empty: it may start). Checked at start-up after every override."""
    problems = []
    secret = config.get("SECRET_KEY") or ""
    if secret == DEVELOPMENT_SECRET_KEY or len(secret) < MIN_SECRET_KEY_LENGTH:
        problems.append(
            f"SECRET_KEY must be a random string of at least {MIN_SECRET_KEY_LENGTH} characters"
        )
    anchor_key = config.get("AUDIT_ANCHOR_KEY") or ""
    if (
        anchor_key in (DEVELOPMENT_AUDIT_ANCHOR_KEY, secret)
        or len(anchor_key) < MIN_SECRET_KEY_LENGTH
    ):
        problems.append(
            f"AUDIT_ANCHOR_KEY must be a random string of at least {MIN_SECRET_KEY_LENGTH} "
            "characters from the environment, other than SECRET_KEY"
        )
    if not str(config.get("PUBLIC_URL", "")).startswith("https://"):
        problems.append("PUBLIC_URL must be the portal's https:// address (served over HTTPS)")
    for name in ("SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE"):
        if config.get(name) is not True:
            problems.append(f"{name} must be on (cookies only over HTTPS)")
    if not config.get("HSTS_SECONDS"):
        problems.append("HSTS_SECONDS must be positive (browsers keep to HTTPS)")
    if not config.get("CONTENT_SECURITY_POLICY"):
        problems.append("CONTENT_SECURITY_POLICY must be set")
    if not config.get("MAX_CONTENT_LENGTH"):
        problems.append("MAX_CONTENT_LENGTH must limit the size of a request")
    if str(config.get("RATELIMIT_STORAGE_URI", "")).startswith("memory://"):
        problems.append(
            "RATELIMIT_STORAGE_URI must be shared by every web process "
            "(e.g. redis://127.0.0.1:6379/0), not memory://"
        )
    hops = config.get("TRUSTED_PROXY_HOPS")
    if not isinstance(hops, int) or not 0 <= hops <= 5:
        problems.append("TRUSTED_PROXY_HOPS must be the number of reverse proxies (0 to 5)")
    return problems


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
        config.AUDIT_ANCHOR_KEY = os.environ.get("AUDIT_ANCHOR_KEY", "")
        config.SQLALCHEMY_DATABASE_URI = os.environ["DATABASE_URL"]
    return config
