"""Jobs on a real Celery worker over a real Redis, on PostgreSQL, in both pool modes: the
bulk issuing job sent twice (to two worker processes at once, or one after the other) still
issues every conclusion exactly once with consecutive numbers; a periodic job sent as
Celery beat sends it runs and is recorded.

Needs PostgreSQL (``TEST_DATABASE_URL``) and Redis (``TEST_REDIS_URL``, default database 15
of the Redis on 127.0.0.1:6379; each test uses a queue of its own). Without ``TEST_DATABASE_URL`` the tests are skipped; with
it, or under CI, an unreachable Redis is a failure.
"""

from __future__ import annotations

import os
import sys
import time
import uuid

import pytest
import redis
from flask_migrate import upgrade
from sqlalchemy import select

from review_portal import create_app
from review_portal.extensions import db
from review_portal.jobs.models import Job, JobStatus
from review_portal.jobs.services import SEND_MAIL, start_in_background
from review_portal.jobs.worker import PERIODIC_JOB
from review_portal.notifications.services import queue_email
from tests.conftest import TEST_DATABASE_URL, _aux_postgres_url, drop_postgres_database
from tests.processes import spawn, stop, wait_until
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


@pytest.fixture
def celery_app(broker, tmp_path):
    """The portal on a PostgreSQL database of its own, sending jobs to a queue of its own."""
    url = _aux_postgres_url("celery")
    queue = f"test-{uuid.uuid4().hex[:8]}"
    settings = {
        "SQLALCHEMY_DATABASE_URI": url,
        "STORAGE_DIR": str(tmp_path / "storage"),
        "CELERY_BROKER_URL": broker,
        "CELERY_QUEUE": queue,
    }
    app = create_app("testing", JOBS_RUNNER="celery", **settings)
    with app.app_context():
        upgrade()
    app.config["TEST_WORKER_ENV"] = {
        **os.environ,
        # The worker runs as in production (not the testing configuration): a bulk job
        # renders in a pool of processes of its own, started from the worker's child.
        "REVIEW_PORTAL_CONFIG": "development",
        "DATABASE_URL": url,
        "STORAGE_DIR": settings["STORAGE_DIR"],
        "CELERY_BROKER_URL": broker,
        "CELERY_QUEUE": queue,
    }
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    # The queue is this test's alone (other runs may share the Redis database).
    client = redis.Redis.from_url(broker)
    client.delete(queue)
    client.close()
    drop_postgres_database(url)


@pytest.fixture(params=["prefork", "solo"])
def worker(request, celery_app):
    """A real worker process (``celery -A review_portal.wsgi:celery worker``): with two child
    processes (each job renders in its child), or solo (a job renders in a pool of its own)."""
    pool = ["--concurrency=2"] if request.param == "prefork" else ["--pool=solo"]
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
        celery_app.config["CELERY_QUEUE"],
    ]
    WORKER_LOG.parent.mkdir(exist_ok=True)
    process = spawn(command, WORKER_LOG, env=celery_app.config["TEST_WORKER_ENV"], cwd=ROOT)
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
        celery_app.extensions["celery"].send_task(PERIODIC_JOB, args=[SEND_MAIL])
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
