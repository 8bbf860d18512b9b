"""Jobs on a real Celery worker over a real Redis, on PostgreSQL, in both pool modes: the
bulk issuing job sent twice (to two worker processes at once, or one after the other) still
issues every conclusion exactly once with consecutive numbers; a periodic job sent as
Celery beat sends it runs and is recorded. Faults: a worker killed (SIGKILL) in the middle
of a bulk job, whose job the sweeper requeues and a new worker finishes with gapless numbers;
the broker on a closed port, then started there (``redis-server``), the job sent by the
sweeper and run.

Needs PostgreSQL (``TEST_DATABASE_URL``) and Redis (``TEST_REDIS_URL``, default database 15
of the Redis on 127.0.0.1:6379; each test uses a queue of its own). Without ``TEST_DATABASE_URL`` the tests are skipped; with
it, or under CI, an unreachable Redis is a failure.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import sys
import time
import uuid
from contextlib import contextmanager, suppress

import pytest
import redis
import sqlalchemy as sa
from flask_migrate import upgrade
from sqlalchemy import func, select

from review_portal import create_app
from review_portal.accounts.models import User
from review_portal.audit.models import AuditEvent
from review_portal.extensions import db
from review_portal.jobs.models import Job, JobStatus
from review_portal.jobs.services import SEND_MAIL, start_in_background
from review_portal.jobs.sweeper import sweep_jobs
from review_portal.jobs.worker import PERIODIC_JOB
from review_portal.jobs.worker import celery_app as celery_of
from review_portal.notifications.services import queue_email
from tests.conftest import TEST_DATABASE_URL, _aux_postgres_url, drop_postgres_database
from tests.processes import accepts, free_port, kill_job_midway, spawn, stop, wait_until
from tests.test_bulk_conclusions import ROOT, assert_issued_in_order, job_row, make_job, seed

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
#: Every worker's output, kept after the run (appended: all the tests' workers).
WORKER_LOG = ROOT / "tests" / "artifacts" / "celery-worker.log"

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not TEST_DATABASE_URL, reason="needs PostgreSQL (TEST_DATABASE_URL)"),
]


@pytest.fixture
def broker():
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as error:
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: {error}")
    yield REDIS_URL
    client.close()


@contextmanager
def portal_on_celery(broker_url: str, tmp_path, **config):
    """The portal on a PostgreSQL database of its own, sending jobs to a queue of its own on
    ``broker_url``; ``config`` goes to it and, as environment variables, to its workers."""
    url = _aux_postgres_url("celery")
    queue = f"test-{uuid.uuid4().hex[:8]}"
    settings = {
        "SQLALCHEMY_DATABASE_URI": url,
        "STORAGE_DIR": str(tmp_path / "storage"),
        "CELERY_BROKER_URL": broker_url,
        "CELERY_QUEUE": queue,
    }
    app = create_app("testing", JOBS_RUNNER="celery", **settings, **config)
    with app.app_context():
        upgrade()
    app.config["TEST_WORKER_ENV"] = {
        **os.environ,
        # The worker runs as in production (not the testing configuration): a bulk job
        # renders in a pool of processes of its own, started from the worker's child.
        "REVIEW_PORTAL_CONFIG": "development",
        "DATABASE_URL": url,
        "STORAGE_DIR": settings["STORAGE_DIR"],
        "CELERY_BROKER_URL": broker_url,
        "CELERY_QUEUE": queue,
        **{name: str(value) for name, value in config.items()},
    }
    try:
        yield app
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        # The queue is this test's alone (other runs may share the Redis database).
        client = redis.Redis.from_url(broker_url)
        with suppress(redis.exceptions.ConnectionError):  # a broker the test stopped
            client.delete(queue)
        client.close()
        drop_postgres_database(url)


@pytest.fixture
def celery_app(broker, tmp_path):
    with portal_on_celery(broker, tmp_path) as app:
        yield app


def start_worker(app, *pool: str):
    """A real worker process (``celery -A review_portal.wsgi:celery worker``) of ``app``."""
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "review_portal.wsgi:celery",
        "worker",
        "--loglevel=INFO",
        *pool,
        "--without-mingle",
        "--without-gossip",
        "-Q",
        app.config["CELERY_QUEUE"],
    ]
    WORKER_LOG.parent.mkdir(exist_ok=True)
    return spawn(command, WORKER_LOG, env=app.config["TEST_WORKER_ENV"], cwd=ROOT)


@pytest.fixture(params=["prefork", "solo"])
def worker(request, celery_app):
    """A real worker: with two child processes (each job renders in its child), or solo (a
    job renders in a pool of its own)."""
    pool = ["--concurrency=2"] if request.param == "prefork" else ["--pool=solo"]
    process = start_worker(celery_app, *pool)
    yield process
    # The whole group: the pool's children and the render pools they started end too.
    stop(process, timeout=30, whole_group=True)


def wait_for(check, what: str, process):
    return wait_until(check, what, timeout=180, process=process, log=WORKER_LOG)


def test_bulk_job_sent_twice_to_two_workers_issues_each_conclusion_once(celery_app, worker):
    ids, coordinator_id = seed(celery_app, 8)
    job_id = make_job(celery_app, ids, coordinator_id)

    with celery_app.app_context():
        # A task delivered twice (a redelivery, a double click) reaches both processes.
        start_in_background(celery_app, job_id)
        start_in_background(celery_app, job_id)

    def finished():
        row = job_row(celery_app, job_id)
        return row if row["status"] in (JobStatus.DONE, JobStatus.FAILED) else None

    row = wait_for(finished, "the job", worker)
    assert row["status"] == JobStatus.DONE, row
    assert (row["done"], row["total"], row["failed_items"]) == (8, 8, [])
    # Let the second delivery finish too, then check that nothing was issued twice.
    time.sleep(2)
    assert_issued_in_order(celery_app, ids)
    assert job_row(celery_app, job_id)["status"] == JobStatus.DONE


def test_periodic_job_sent_by_beat_runs_on_the_worker_and_is_recorded(celery_app, worker):
    with celery_app.app_context():
        queue_email("expert@example.org", "Напоминание", "Срок экспертизы истекает завтра.")
        queue_email("provider@example.org", "Решение", "Экспертиза завершена.")
        db.session.commit()
        celery_of(celery_app).send_task(PERIODIC_JOB, args=[SEND_MAIL])
        db.session.remove()

    def recorded():
        with celery_app.app_context():
            job = db.session.execute(select(Job).where(Job.kind == SEND_MAIL)).scalar()
            found = job if job is not None and not job.active else None
            db.session.remove()
            return found

    job = wait_for(recorded, "the periodic job", worker)
    assert job.status == JobStatus.DONE, job.error
    assert (job.done, job.total) == (2, 2)


# --- faults ---------------------------------------------------------------------------------

#: A heartbeat every half second, stale after two: the sweeper finds a dead worker's job
#: within seconds (production: 15 and 120).
FAST_SWEEP = {"JOB_HEARTBEAT_SECONDS": 0.5, "JOB_STALE_AFTER_SECONDS": 2}


def job_facts(app, job_id: int) -> dict:
    with app.app_context():
        job = db.session.get(Job, job_id)
        facts = {
            "status": job.status,
            "done": job.done,
            "total": job.total,
            "failed_items": list(job.failed_items),
            "interruptions": job.interruptions,
            "dispatch_error": job.dispatch_error,
        }
        db.session.remove()
    return facts


def sweep_until(app, check, what: str):
    """Run the sweeper (as ``flask sweep-jobs`` or beat's task does) until its report
    satisfies ``check``; the report."""

    def swept():
        with app.app_context():
            report = sweep_jobs()
            db.session.remove()
        return report if check(report) else None

    return wait_until(swept, what, timeout=120, log=WORKER_LOG)


def finished(app, job_id: int):
    facts = job_facts(app, job_id)
    return facts if facts["status"] in (JobStatus.DONE, JobStatus.FAILED) else None


def test_bulk_job_of_a_killed_worker_is_swept_and_resumed_with_gapless_numbers(broker, tmp_path):
    """A whole worker killed (SIGKILL, its children too) in the middle of a bulk issuing
    job: the job stays running with a stale heartbeat (Redis would give its task back only
    after hours), the sweeper requeues and sends it, a new worker resumes it: done, every
    conclusion issued once, the numbers without a gap, the interruption told."""
    with portal_on_celery(broker, tmp_path, **FAST_SWEEP) as app:
        ids, coordinator_id = seed(app, 16)
        job_id = make_job(app, ids, coordinator_id)
        first = start_worker(app, "--concurrency=1")
        try:
            with app.app_context():
                start_in_background(app, job_id)
            kill_job_midway(
                app.config["SQLALCHEMY_DATABASE_URI"],
                job_id,
                at_least=3,
                process=first,
                timeout=180,
                log=WORKER_LOG,
            )
        finally:
            if first.poll() is None:
                os.killpg(first.pid, signal.SIGKILL)
                first.wait(timeout=30)
        killed = job_facts(app, job_id)
        assert killed["status"] == JobStatus.RUNNING
        assert 3 <= killed["done"] < 16, killed
        # Whole units only: what is committed is numbered 1..k, the rest untouched.
        assert_issued_in_order(app, ids[: killed["done"]])

        report = sweep_until(app, lambda r: r.requeued, "the sweeper to requeue the job")
        assert (report.requeued, report.sent, report.unsent) == ([job_id], [job_id], [])
        requeued = job_facts(app, job_id)
        assert (requeued["status"], requeued["interruptions"]) == (JobStatus.QUEUED, 1)

        second = start_worker(app, "--concurrency=1")
        try:
            row = wait_until(
                lambda: finished(app, job_id),
                "the resumed job",
                timeout=300,
                process=second,
                log=WORKER_LOG,
            )
        finally:
            stop(second, timeout=30, whole_group=True)
        assert row == {
            "status": JobStatus.DONE,
            "done": 16,
            "total": 16,
            "failed_items": [],
            "interruptions": 1,
            "dispatch_error": None,
        }
        assert_issued_in_order(app, ids)
        with app.app_context():
            issued_events = db.session.execute(
                select(func.count(AuditEvent.id)).where(AuditEvent.action == "conclusion.issue")
            ).scalar_one()
            db.session.remove()
        assert issued_events == 16  # nothing issued twice


def test_broker_away_leaves_the_job_queued_with_the_truth_and_sends_it_when_back(tmp_path):
    """The broker on a closed port: confirming decisions answers at once (no 500), tells
    the coordinator the queue is unavailable and the job is kept, the job page says so; a
    Redis started on that port, the sweeper sends the job and a worker runs it to the end."""
    from tests.conftest import Auth

    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is needed to bring the broker back")
        pytest.skip("needs redis-server to bring the broker back")
    port = free_port()
    with portal_on_celery(f"redis://127.0.0.1:{port}/0", tmp_path, **FAST_SWEEP) as app:
        ids, coordinator_id = seed(app, 3)
        with app.app_context():
            email = db.session.get(User, coordinator_id).email
            db.session.remove()
        auth = Auth(app.test_client())
        assert auth.login(email).status_code == 302

        response = auth.post(
            "/decisions/confirm", {"review_ids": [str(i) for i in ids]}, token_from="/decisions"
        )

        assert response.status_code == 302
        job_id = int(response.headers["Location"].rsplit("/", 1)[1])
        page = auth.client.get(f"/jobs/{job_id}").get_data(as_text=True)
        assert "Очередь заданий недоступна: задание сохранено и начнётся" in page
        assert "выпуск заключений идёт в фоне" not in page
        assert 'id="job-queue-unavailable"' in page and 'data-status="queued"' in page
        queued = job_facts(app, job_id)
        assert queued["status"] == JobStatus.QUEUED
        assert f"connecting to 127.0.0.1:{port}" in queued["dispatch_error"]

        server = spawn(
            ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
            WORKER_LOG,
        )
        worker = None
        try:
            wait_until(lambda: accepts(port), "the broker back", timeout=30, process=server)
            report = sweep_until(app, lambda r: r.sent, "the sweeper to send the job")
            assert (report.sent, report.unsent) == ([job_id], [])
            assert job_facts(app, job_id)["dispatch_error"] is None
            worker = start_worker(app, "--concurrency=1")
            row = wait_until(
                lambda: finished(app, job_id),
                "the job",
                timeout=180,
                process=worker,
                log=WORKER_LOG,
            )
        finally:
            if worker is not None:
                stop(worker, timeout=30, whole_group=True)
            # The queue is removed while the broker still runs.
            client = redis.Redis(port=port)
            client.delete(app.config["CELERY_QUEUE"])
            client.close()
            stop(server)
        assert (row["status"], row["done"], row["failed_items"]) == (JobStatus.DONE, 3, [])
        assert_issued_in_order(app, ids)


def test_import_with_the_broker_away_says_so_and_keeps_the_job(tmp_path):
    """The broker on a closed port: an import's upload answers at once (no 500), the import's
    page tells the coordinator the queue is unavailable and the job is kept queued with the
    reason; nothing is imported (the job waits for the sweeper, as the bulk test above
    shows to the end)."""
    from review_portal.organizations.models import Organization
    from tests.conftest import Auth

    port = free_port()
    with portal_on_celery(f"redis://127.0.0.1:{port}/0", tmp_path, **FAST_SWEEP) as app:
        _ids, coordinator_id = seed(app, 1)
        with app.app_context():
            email = db.session.get(User, coordinator_id).email
            organizations = db.session.scalar(sa.select(sa.func.count(Organization.id)))
            db.session.remove()
        auth = Auth(app.test_client())
        assert auth.login(email).status_code == 302
        header = "Полное наименование;Краткое наименование;ИНН;Тип поставщика;"
        header += "Муниципальное образование"
        row = "МБУ ДО «Дом творчества»;ДТ;7707083893;Муниципальная;Город Смоленск"
        content = ("\ufeff" + header + "\r\n" + row + "\r\n").encode()
        token = auth.token("/import")
        response = auth.client.post(
            "/import",
            data={
                "csrf_token": token,
                "kind": "organizations",
                "file": (io.BytesIO(content), "orgs.csv"),
            },
            content_type="multipart/form-data",
        )

        assert response.status_code == 302
        job_id = int(response.headers["Location"].rsplit("/", 1)[1])
        page = auth.client.get(response.headers["Location"]).get_data(as_text=True)
        assert "Очередь заданий недоступна: задание сохранено и начнётся" in page
        assert 'id="import-queue-unavailable"' in page
        queued = job_facts(app, job_id)
        assert queued["status"] == JobStatus.QUEUED
        assert f"connecting to 127.0.0.1:{port}" in queued["dispatch_error"]
        with app.app_context():
            assert db.session.scalar(sa.select(sa.func.count(Organization.id))) == organizations
            db.session.remove()
