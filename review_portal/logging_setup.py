"""Logging: the configuration (``logging.config.dictConfig``) applied by the app factory, a
request id per request, and one access line per request.

* ``LOG_LEVEL`` (default ``INFO``) is the level of the root logger; ``LOG_FORMAT`` is ``text``
  (development) or ``json`` (production: one JSON object per line, with the record's extra
  fields such as ``request_id``, ``user_id``, ``route``, ``status``, ``duration_ms``).
* Everything goes to standard error (gunicorn's, systemd's journal). Existing loggers are
  left enabled; under ``TESTING`` the root logger is not touched, so pytest's ``caplog``
  keeps its handler, and nothing is written to standard error.
* Every request gets an id: the ``X-Request-Id`` header when it is short and plain (a
  proxy's id, at most 64 of ``[A-Za-z0-9._-]``), else a new one. It is echoed in the
  answer's ``X-Request-Id`` and carried by every record logged during the request.
* After each request one line on ``review_portal.access`` (INFO; the static files at DEBUG):
  method, route (the URL rule), path, status, duration, user id and request id.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import time
import uuid
from datetime import UTC, datetime

from flask import Flask, Response, g, has_request_context, request

ACCESS_LOGGER = "review_portal.access"
#: A request id from outside is taken only in this shape.
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
#: Longest path written to an access line (characters).
MAX_PATH = 200
FORMATS = ("text", "json")
#: Control characters of a path are written escaped (no forged lines in a text log).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

#: The attributes every ``LogRecord`` has; the others are a call's ``extra`` fields.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: time, level, logger, message, the extra
    fields, and the traceback (``exc_info``) as one string."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class RequestIdFilter(logging.Filter):
    """Gives every record logged during a request that request's id."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id") and has_request_context():
            record.request_id = g.get("request_id")
        return True


def log_format(config) -> str:
    fmt = (config.get("LOG_FORMAT") or ("json" if config.get("PRODUCTION") else "text")).lower()
    if fmt not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return fmt


def logging_config(config) -> dict:
    """The ``dictConfig`` of an application's configuration."""
    level = str(config.get("LOG_LEVEL") or "INFO").upper()
    if config.get("TESTING"):
        # pytest owns the root logger (caplog's handler): set only the portal's level, and
        # a handler that writes nothing, so Flask adds no stderr handler of its own.
        return {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {"null": {"class": "logging.NullHandler"}},
            "loggers": {"review_portal": {"level": level, "handlers": ["null"]}},
        }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {
            "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
            "json": {"()": JsonFormatter},
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": log_format(config),
                "filters": ["request_id"],
            }
        },
        # The portal's logger: Flask's ``app.logger``, whose handler is the root's.
        "loggers": {
            "review_portal": {"level": "NOTSET", "handlers": []},
            # Flask-Migrate loads alembic in every process: its plugins say hello at INFO.
            "alembic.runtime.plugins": {"level": "WARNING"},
            # A PDF's rendering steps and font subsetting: dozens of INFO lines per PDF
            # (15,000 for the demo season), none of them about the portal.
            "weasyprint.progress": {"level": "WARNING"},
            "fontTools": {"level": "WARNING"},
        },
        "root": {"level": level, "handlers": ["stderr"]},
    }


def configure_logging(app: Flask) -> None:
    """Apply the logging configuration and install the request id and the access line."""
    logging.config.dictConfig(logging_config(app.config))
    app.before_request(_start_request)
    app.after_request(_log_request)


def _start_request() -> None:
    g.request_started = time.perf_counter()
    given = request.headers.get("X-Request-Id", "")
    g.request_id = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def _user_id() -> int | None:
    """The id of the user the request loaded (no query of its own: a request that never
    looked at its user logs none)."""
    from review_portal.db import loaded_id

    # Read without the database: this runs after the request's commit (the user is expired).
    return loaded_id(g.get("_login_user"))


def _log_request(response: Response) -> Response:
    """Registered first, so it runs after every other ``after_request``: the final status."""
    request_id = g.get("request_id") or uuid.uuid4().hex
    response.headers["X-Request-Id"] = request_id
    started = g.get("request_started")
    duration = round((time.perf_counter() - started) * 1000, 1) if started else None
    rule = request.url_rule.rule if request.url_rule is not None else None
    path = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", request.path[:MAX_PATH])
    user_id = _user_id()
    level = logging.DEBUG if request.endpoint == "static" else logging.INFO
    logger = logging.getLogger(ACCESS_LOGGER)
    if not logger.isEnabledFor(level):
        return response
    # The record is made here rather than by ``logger.log``, which would walk the stack to
    # name the calling line on every request (no format prints it).
    record = logger.makeRecord(
        logger.name,
        level,
        __file__,
        0,
        "%s %s (%s) %s %s ms user=%s request=%s",
        (
            request.method,
            rule or "-",
            path,
            response.status_code,
            duration,
            user_id if user_id is not None else "-",
            request_id,
        ),
        None,
        func="_log_request",
        extra={
            "request_id": request_id,
            "method": request.method,
            "route": rule,
            "path": path,
            "status": response.status_code,
            "duration_ms": duration,
            "user_id": user_id,
        },
    )
    logger.handle(record)
    return response
