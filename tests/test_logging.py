"""Logging: one access line per request with its route, status and request id; one line per
job run, e-mail attempt and assignment run; an unhandled error logged once with its
traceback; the production format is one JSON object per line; and under gunicorn with
``LOG_LEVEL=INFO`` each request shows exactly one line."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import httpx
import pytest
from flask_migrate import upgrade

from review_portal import create_app
from review_portal.assignment.services import run_assignment
from review_portal.extensions import db
from review_portal.jobs.models import Job, JobStatus
from review_portal.jobs.services import HANDLERS, SEND_MAIL, create_job, run_job
from review_portal.logging_setup import (
    ACCESS_LOGGER,
    REQUEST_ID,
    JsonFormatter,
    log_format,
    logging_config,
)
from review_portal.notifications.services import queue_email
from tests.factories import CoordinatorFactory
from tests.processes import accepts, free_port, spawn, stop, wait_until

ROOT = Path(__file__).resolve().parent.parent
ACCESS_KEYS = {"request_id", "method", "route", "path", "status", "duration_ms", "user_id"}
ADDRESS = "citizen@example.org"


def access_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == ACCESS_LOGGER]


def test_a_request_logs_one_access_line_with_its_route_status_and_user(
    client, auth, session, caplog
):
    coordinator = CoordinatorFactory()
    auth.login(coordinator)
    caplog.clear()

    with caplog.at_level(logging.INFO):
        response = client.get("/registrations/987654")

    assert response.status_code == 404
    [record] = access_records(caplog)
    assert record.levelno == logging.INFO
    assert record.method == "GET"
    assert record.route == "/registrations/<int:user_id>"
    assert record.path == "/registrations/987654"
    assert record.status == 404
    assert record.user_id == coordinator.id
    assert record.duration_ms >= 0
    assert record.request_id == response.headers["X-Request-Id"]


def test_anonymous_and_unrouted_requests_log_none_for_user_and_route(client, caplog):
    with caplog.at_level(logging.INFO):
        response = client.get("/no/such/page")

    [record] = access_records(caplog)
    assert (record.status, record.route, record.user_id) == (404, None, None)
    assert record.path == "/no/such/page"
    assert record.request_id == response.headers["X-Request-Id"]


def test_static_files_are_logged_at_debug_only(client, caplog):
    with caplog.at_level(logging.INFO):
        response = client.get("/static/favicon.svg")
        response.close()

    assert response.status_code == 200
    assert access_records(caplog) == []


def test_a_control_character_in_the_path_cannot_forge_a_line(client, caplog):
    with caplog.at_level(logging.INFO):
        client.get("/no/such%0A2026-01-01 INFO forged")

    [record] = access_records(caplog)
    assert "\n" not in record.getMessage()
    assert "\\x0a" in record.path


@pytest.mark.parametrize("given", ["abc-123._X", "a" * 64, "0f03a6b5-0e2c-40e5-8a99"])
def test_a_plain_request_id_is_echoed(client, caplog, given):
    with caplog.at_level(logging.INFO):
        response = client.get("/healthz", headers={"X-Request-Id": given})

    assert response.headers["X-Request-Id"] == given
    assert access_records(caplog)[0].request_id == given


@pytest.mark.parametrize(
    "given", ["a\x00b", "a" * 1000, "a" * 65, "a b", "<script>", "абв", "id;drop", ""]
)
def test_a_hostile_request_id_is_replaced(client, caplog, given):
    with caplog.at_level(logging.INFO):
        response = client.get("/healthz", headers={"X-Request-Id": given})

    echoed = response.headers["X-Request-Id"]
    assert echoed != given
    assert REQUEST_ID.fullmatch(echoed) and len(echoed) == 32
    assert access_records(caplog)[0].request_id == echoed


def test_each_request_gets_its_own_id(client):
    ids = {client.get("/healthz").headers["X-Request-Id"] for _ in range(3)}
    assert len(ids) == 3


def test_json_format_is_one_object_per_line_with_the_request_fields(client, auth, session, caplog):
    coordinator = CoordinatorFactory()
    auth.login(coordinator)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        client.get("/coordinator")

    [record] = access_records(caplog)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert {"time", "level", "logger", "message"} | ACCESS_KEYS <= set(entry)
    assert entry["level"] == "INFO" and entry["logger"] == ACCESS_LOGGER
    assert (entry["route"], entry["status"], entry["user_id"]) == (
        "/coordinator",
        200,
        coordinator.id,
    )


def test_json_format_keeps_a_traceback_on_its_one_line():
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        record = logging.getLogger("review_portal").makeRecord(
            "review_portal", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert "Traceback" in entry["traceback"] and "RuntimeError: boom" in entry["traceback"]


def test_the_format_follows_the_configuration():
    assert log_format({"PRODUCTION": True}) == "json"
    assert log_format({}) == "text"
    assert log_format({"PRODUCTION": True, "LOG_FORMAT": "text"}) == "text"
    with pytest.raises(ValueError):
        log_format({"LOG_FORMAT": "xml"})
    production = logging_config({"PRODUCTION": True, "LOG_LEVEL": "warning"})
    assert production["handlers"]["stderr"]["formatter"] == "json"
    assert production["root"]["level"] == "WARNING"
    assert production["disable_existing_loggers"] is False
    # The PDF libraries' step-by-step INFO lines stay out (thousands per demo season).
    assert production["loggers"]["weasyprint.progress"]["level"] == "WARNING"
    assert production["loggers"]["fontTools"]["level"] == "WARNING"
    # Under TESTING pytest keeps the root logger (caplog's handler).
    assert "root" not in logging_config({"TESTING": True})


def test_an_unhandled_error_is_logged_once_with_its_traceback(tmp_path, caplog):
    app = create_app(
        "testing",
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'e.sqlite'}",
        PROPAGATE_TEST_ERRORS=False,
    )

    @app.get("/boom")
    def boom():
        raise RuntimeError("boom")

    with caplog.at_level(logging.INFO):
        response = app.test_client().get("/boom")

    assert response.status_code == 500
    with_traceback = [r for r in caplog.records if r.exc_info]
    assert len(with_traceback) == 1
    assert with_traceback[0].levelno == logging.ERROR
    assert isinstance(with_traceback[0].exc_info[1], RuntimeError)
    [access] = access_records(caplog)
    assert (access.status, access.route) == (500, "/boom")
    assert [r.levelno >= logging.ERROR for r in caplog.records].count(True) == 1


def job_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "review_portal.jobs.services"]


def mail_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "review_portal.notifications.services"]


def test_a_job_run_and_its_mail_attempt_log_one_line_each(scratch_app, caplog):
    with scratch_app.app_context():
        queue_email(ADDRESS, "Напоминание", "Срок экспертизы истекает завтра.")
        job = create_job(SEND_MAIL, {}, None, total=0)
        db.session.commit()

        with caplog.at_level(logging.INFO):
            run_job(job.id)

        [line] = job_lines(caplog)
        assert line.levelno == logging.INFO and not line.exc_info
        assert (line.job_id, line.kind, line.outcome) == (job.id, SEND_MAIL, "done")
        assert line.duration_ms >= 0
        [attempt] = mail_lines(caplog)
        assert (attempt.outcome, attempt.attempt) == ("sent", 1)
        assert attempt.outbox_id > 0
        assert ADDRESS not in attempt.getMessage()
        db.session.remove()


def test_a_failed_mail_attempt_logs_one_line_without_the_address(scratch_app, caplog):
    closed_port = free_port()
    scratch_app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=closed_port, SMTP_TIMEOUT=2)
    with scratch_app.app_context():
        queue_email(ADDRESS, "Напоминание", "Срок экспертизы истекает завтра.")
        job = create_job(SEND_MAIL, {}, None, total=0)
        db.session.commit()

        with caplog.at_level(logging.INFO):
            run_job(job.id)

        [attempt] = mail_lines(caplog)
        assert (attempt.levelno, attempt.outcome) == (logging.WARNING, "retrying")
        [line] = job_lines(caplog)
        assert (line.outcome, line.levelno) == ("failed", logging.ERROR)
        assert line.exc_info  # the job's failure, with its traceback, once
        assert sum(1 for r in caplog.records if r.exc_info) == 1
        assert all(ADDRESS not in JsonFormatter().format(r) for r in mail_lines(caplog))
        db.session.remove()


def explode(job_id: int) -> None:
    raise ValueError("a bug in a job")


def test_a_failing_job_logs_one_line_with_its_traceback(scratch_app, caplog, monkeypatch):
    monkeypatch.setitem(HANDLERS, "explode", f"{__name__}:explode")
    with scratch_app.app_context():
        job = create_job("explode", {}, None, total=1)
        db.session.commit()

        with caplog.at_level(logging.INFO):
            run_job(job.id)

        assert db.session.get(Job, job.id).status == JobStatus.FAILED
        [line] = job_lines(caplog)
        assert (line.outcome, line.kind, line.levelno) == ("failed", "explode", logging.ERROR)
        assert isinstance(line.exc_info[1], ValueError)
        assert [r for r in caplog.records if r.exc_info] == [line]
        db.session.remove()


def test_an_assignment_run_logs_one_line(session, caplog):
    coordinator = CoordinatorFactory()
    with caplog.at_level(logging.INFO):
        result = run_assignment(coordinator, apply=False)

    [line] = [r for r in caplog.records if r.name == "review_portal.assignment.services"]
    assert (line.apply, line.reviews, line.assigned) == (False, len(result.reviews), 0)
    assert line.demand == result.plan.demand and line.duration_ms >= 0


# --- under gunicorn ---------------------------------------------------------------------------


def test_gunicorn_with_log_level_info_shows_one_line_per_request(tmp_path):
    """The production configuration under gunicorn (one worker): three requests, exactly
    three access lines on its standard error, each a JSON object."""
    database = f"sqlite:///{tmp_path / 'portal.sqlite'}"
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=database)
    with app.app_context():
        upgrade()
        db.engine.dispose()
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "REVIEW_PORTAL_CONFIG": "production",
        "SECRET_KEY": "x" * 48,
        "AUDIT_ANCHOR_KEY": "y" * 48,
        "DATABASE_URL": database,
        "STORAGE_DIR": str(tmp_path / "storage"),
        "PUBLIC_URL": f"https://127.0.0.1:{port}",
        "RATELIMIT_STORAGE_URI": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
        "LOG_LEVEL": "INFO",
    }
    env.pop("LOG_FORMAT", None)
    # Its standard output joins the log too: nothing writes there (gunicorn's log and the
    # portal's handler are on standard error), so the lines below are standard error's.
    log = tmp_path / "gunicorn.log"
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn), "--workers", "1", "--bind", f"127.0.0.1:{port}"]
    server = spawn([*command, "review_portal.wsgi:app"], log, env=env, cwd=ROOT)
    try:
        wait_until(
            lambda: "Booting worker" in log.read_text() and accepts(port),
            "gunicorn's worker answers",
            timeout=30,
            process=server,
            log=log,
        )
        headers = {"X-Forwarded-Proto": "https"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as http:
            statuses = [
                http.get("/healthz").status_code,
                http.get("/login").status_code,
                http.get("/no/such/page", headers={"X-Request-Id": "probe-3"}).status_code,
            ]
        assert statuses == [200, 200, 404]
        # The line is written after the answer: give the worker a moment.
        deadline = time.monotonic() + 10
        while log.read_text().count(ACCESS_LOGGER) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop(server)

    text = log.read_text()
    entries = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    access = [e for e in entries if e["logger"] == ACCESS_LOGGER]
    assert len(access) == 3, text
    assert [(e["route"], e["status"]) for e in access] == [
        ("/healthz", 200),
        ("/login", 200),
        (None, 404),
    ]
    assert access[2]["request_id"] == "probe-3"
    assert all(set(e) >= ACCESS_KEYS and e["level"] == "INFO" for e in access)
    assert "Traceback" not in text
