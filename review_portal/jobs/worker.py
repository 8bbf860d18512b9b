"""Jobs on Celery workers over Redis (``CELERY_BROKER_URL``), and the periodic jobs.

Every application gets a Celery app (:func:`celery_app`, made on first use and kept in
``app.extensions["celery"]``) whose tasks run inside that application's context. Four tasks,
all thin: a job's work is :func:`review_portal.jobs.services.run_job`, the same function the
embedded runner and ``flask run-job`` call, so a job behaves the same wherever it runs.

* ``review_portal.run_job(job_id)`` runs (or resumes) a job a route created and committed.
* ``review_portal.periodic_job(kind)`` is what Celery beat sends on a schedule
  (:func:`schedule`): when the kind has something due (its domain's cheap query,
  :data:`review_portal.jobs.services.DUE_CHECKS`), it creates a job of that kind — sending
  the outbox, the deadline reminders, closing expired discussions, signing the audit chain
  daily — and runs it, so each run is visible with its outcome like any other job. A run
  with nothing due makes no job and writes no audit record; a run is skipped while an
  earlier job of the kind is still queued or running.
* ``review_portal.sweep_jobs`` (every ``JOB_SWEEP_SECONDS``, no job row) requeues the
  running jobs whose runner died and sends again the jobs the broker refused
  (:mod:`review_portal.jobs.sweeper`).
* ``review_portal.chain_audit`` (every minute, no job row) links audit records whose
  chaining step after their commit failed or was left for later
  (:func:`review_portal.audit.services.chain_pending`).

Delivery: a task is acknowledged only after it ran (``task_acks_late``) and is given back to
the broker when the worker's child process dies under it (``task_reject_on_worker_lost``),
so a crashed child's job is run again by another worker; :func:`run_job` resumes it without
repeating what was committed, and runs it once at a time (the job's lock). A whole worker
killed cannot give its task back: Redis redelivers it only after
``CELERY_VISIBILITY_TIMEOUT`` seconds (longer than the longest job, default six hours), so
the sweeper finds the job by its stale heartbeat first and sends it again. A handler that
raises marks the job ``failed`` with its error and is not retried automatically (the
coordinator, or ``flask run-job``, runs it again).

Sending: a broker that cannot be reached fails a send within a few seconds
(``CELERY_SEND_TIMEOUT``, few retries) instead of holding the request; the job stays queued
with the reason (``Job.dispatch_error``, shown on its page) and the sweeper sends it when
the broker is back.

Start a worker with ``flask --app review_portal.wsgi worker`` (``--beat`` to also run the
schedule in it, for a single worker machine) or ``celery -A review_portal.wsgi:celery worker``;
the schedule alone with ``flask --app review_portal.wsgi beat`` (exactly one per deployment).
In the default prefork pool each job runs in a child process and renders conclusions there,
one core per job (a daemonic child may not start processes); with ``--pool solo`` one job at
a time renders on every core of the machine in a pool of its own.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import TYPE_CHECKING

from flask import Flask
from sqlalchemy import select, update

from review_portal.extensions import db
from review_portal.unit_of_work import unit_of_work

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)

RUN_JOB = "review_portal.run_job"
PERIODIC_JOB = "review_portal.periodic_job"
CHAIN_AUDIT = "review_portal.chain_audit"
SWEEP_JOBS = "review_portal.sweep_jobs"


def schedule(sweep_every: float = 60) -> dict:
    """Celery beat's schedule: job kind → when (server time zone of the portal); the
    sweeper every ``sweep_every`` seconds."""
    from celery.schedules import crontab

    from review_portal.jobs.services import (
        ANCHOR_AUDIT,
        CLOSE_DISCUSSIONS,
        REGISTRY_VALIDITY,
        SEND_DIGEST,
        SEND_MAIL,
        SEND_REMINDERS,
    )

    return {
        "send-mail": {
            "task": PERIODIC_JOB,
            "schedule": timedelta(minutes=5),
            "args": (SEND_MAIL,),
        },
        "send-reminders": {
            "task": PERIODIC_JOB,
            "schedule": crontab(minute=5),
            "args": (SEND_REMINDERS,),
        },
        "close-discussions": {
            "task": PERIODIC_JOB,
            "schedule": crontab(minute=15),
            "args": (CLOSE_DISCUSSIONS,),
        },
        "send-digest": {
            "task": PERIODIC_JOB,
            "schedule": crontab(minute=1),
            "args": (SEND_DIGEST,),
        },
        "registry-validity": {
            "task": PERIODIC_JOB,
            "schedule": crontab(minute=25),
            "args": (REGISTRY_VALIDITY,),
        },
        "anchor-audit": {
            "task": PERIODIC_JOB,
            "schedule": crontab(hour=3, minute=30),
            "args": (ANCHOR_AUDIT,),
        },
        "chain-audit": {"task": CHAIN_AUDIT, "schedule": timedelta(minutes=1)},
        "sweep-jobs": {"task": SWEEP_JOBS, "schedule": timedelta(seconds=sweep_every)},
    }


#: Held while an application's Celery app is made (two requests sending their first job).
_MAKING = threading.Lock()


def celery_app(app: Flask) -> Celery:
    """The application's Celery app (``app.extensions["celery"]``), made on first use:
    importing Celery and Kombu is a tenth of a web process's start, and a web process needs
    them only when it sends a job to a worker."""
    celery = app.extensions.get("celery")
    if celery is None:
        with _MAKING:
            celery = app.extensions.get("celery") or init_celery(app)
    return celery


def init_celery(app: Flask) -> Celery:
    """The application's Celery app: broker from ``CELERY_BROKER_URL``, tasks run in an
    application context whose session is removed afterwards. The tasks belong to this
    Celery app only (``shared=False``): each is bound to its own Flask application, and a
    shared task would be offered to every Celery app made later in the process. Use
    :func:`celery_app`, which makes it once."""
    from celery import Celery, Task

    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                try:
                    return self.run(*args, **kwargs)
                finally:
                    db.session.remove()

    celery = Celery(app.import_name, task_cls=FlaskTask)
    send_timeout = app.config["CELERY_SEND_TIMEOUT"]
    celery.conf.update(
        broker_url=app.config.get("CELERY_BROKER_URL") or "memory://",
        broker_connection_retry_on_startup=True,
        # A send to a broker that does not answer gives up within seconds: the request that
        # sends it answers anyway, and the job waits for the sweeper.
        broker_connection_timeout=send_timeout,
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.5,
            "interval_max": 1,
        },
        broker_transport_options={
            "visibility_timeout": app.config["CELERY_VISIBILITY_TIMEOUT"],
            "socket_connect_timeout": send_timeout,
        },
        task_default_queue=app.config["CELERY_QUEUE"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        timezone=app.config["BABEL_DEFAULT_TIMEZONE"],
        beat_schedule=schedule(app.config["JOB_SWEEP_SECONDS"]),
    )

    @celery.task(name=RUN_JOB, shared=False)
    def run_job_task(job_id: int) -> str:
        from review_portal.jobs.services import run_job

        return run_job(job_id).status.value

    @celery.task(name=PERIODIC_JOB, shared=False)
    def periodic_job_task(kind: str) -> int | None:
        return run_periodic(kind)

    @celery.task(name=CHAIN_AUDIT, shared=False)
    def chain_audit_task() -> int:
        from review_portal.audit.services import chain_pending

        return chain_pending()

    @celery.task(name=SWEEP_JOBS, shared=False)
    def sweep_jobs_task() -> dict:
        from review_portal.jobs.sweeper import sweep_jobs

        return sweep_jobs().as_dict()

    app.extensions["celery"] = celery
    return celery


def run_periodic(kind: str) -> int | None:
    """Create and run a job of ``kind`` when it has something due and no job of the kind is
    still queued or running; its id (``None``: nothing due, or skipped). Nothing due
    writes nothing at all: no job row, no audit record."""
    from review_portal.jobs.models import Job, JobStatus
    from review_portal.jobs.services import create_job, is_due, run_job

    with unit_of_work():
        if not is_due(kind):
            log.debug("periodic %s: nothing due", kind)
            return None
        busy = db.session.execute(
            select(Job.id)
            .where(Job.kind == kind, Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
            .limit(1)
        ).first()
        if busy:
            log.info("periodic %s skipped: job %s is not finished", kind, busy[0])
            return None
        job = create_job(kind, {}, None, total=0)
    return run_job(job.id).id


def resume_unfinished(kind: str) -> list[int]:
    """Run again, one after the other, the jobs of ``kind`` left queued or running (by a
    process that stopped under them: an in-process runner has no broker to hand them to
    another); their ids. Each resumes without repeating what it committed."""
    from review_portal.jobs.models import Job, JobStatus
    from review_portal.jobs.services import run_job

    with unit_of_work():
        ids = list(
            db.session.execute(
                select(Job.id)
                .where(Job.kind == kind, Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
                .order_by(Job.id)
            ).scalars()
        )
    for job_id in ids:
        log.info("resuming unfinished %s job %s", kind, job_id)
        run_job(job_id)
    return ids


def send_to_worker(app: Flask, job_id: int) -> bool:
    """Queue the job for a worker (the job is committed); whether the broker took it.

    A broker that cannot be reached (within ``CELERY_SEND_TIMEOUT`` seconds and two retries)
    leaves the job queued with the reason in ``dispatch_error`` (committed here), which its
    page shows and by which the sweeper finds it to send it again; a send that succeeds
    clears an earlier reason."""
    from review_portal.jobs.models import Job

    try:
        celery_app(app).send_task(RUN_JOB, args=[job_id])
    except Exception as error:  # noqa: BLE001 - the request that created the job has succeeded
        reason = f"{type(error).__name__}: {error}"[:2000]
        log.error("job %s could not be sent to the broker (%s); it stays queued", job_id, reason)
        _note_dispatch(Job, job_id, reason)
        return False
    _note_dispatch(Job, job_id, None)
    return True


def _note_dispatch(job_model, job_id: int, reason: str | None) -> None:
    """Record (or clear) why the job is not in the job queue; a database that fails here too
    is logged, never raised: the job itself is committed, and the sweeper looks again."""
    clause = job_model.id == job_id
    if reason is None:
        clause = clause & job_model.dispatch_error.is_not(None)
    try:
        with unit_of_work():
            db.session.execute(update(job_model).where(clause).values(dispatch_error=reason))
    except Exception:  # noqa: BLE001 - see above
        log.exception("job %s: the broker's answer could not be recorded", job_id)
