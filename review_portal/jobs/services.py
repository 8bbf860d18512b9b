"""Creating, running and following background jobs.

* :func:`create_job` writes a queued job (flushed and audited; the caller commits, like
  every service).
* :func:`run_job` runs a job, or resumes one that was interrupted: it dispatches by kind to
  its handler (:data:`HANDLERS`), a plain function of the job id, so the embedded runner,
  ``flask run-job`` and, later, a Celery task all call the same thing. The runner owns its
  transactions, like a CLI command: the handler commits each unit of work together with its
  progress (:func:`progress`), so a crash leaves whole units done and the rest untouched. A
  handler that raises marks the job ``failed`` with the error; ``flask run-job``
  (``retry_failed``) runs it again and it resumes, while a stray copy of its task leaves it
  failed.
* :func:`start_in_background` is the embedded runner: a daemon thread with its own
  application context; it commits the caller's work (the job) before it hands it over.

``JOBS_RUNNER`` (application config) chooses how :func:`start_in_background` runs a job:
``celery`` (the default when ``CELERY_BROKER_URL`` is set: a Celery worker runs it, see
:mod:`review_portal.jobs.worker`), ``thread`` (the default otherwise), ``eager`` (at once,
in the caller's thread and context, as Celery's
``task_always_eager`` does; the default under ``TESTING``, whose per-test transaction is
one connection that a second thread must not share) or ``none`` (left queued for
``flask run-job`` or an external worker).
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable

from flask import Flask, current_app, has_app_context
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update

from review_portal.audit.services import record_event
from review_portal.db import utcnow
from review_portal.extensions import db
from review_portal.jobs.models import Job, JobStatus
from review_portal.locks import try_lock
from review_portal.unit_of_work import unit_of_work

log = logging.getLogger(__name__)

ISSUE_CONCLUSIONS = "issue_conclusions"
RUN_ASSIGNMENT = "run_assignment"
EXPORT_REGISTRY = "export_registry"
SEND_MAIL = "send_mail"
SEND_REMINDERS = "send_reminders"
CLOSE_DISCUSSIONS = "close_discussions"
ANCHOR_AUDIT = "anchor_audit"
IMPORT_FILE = "import_file"
SEND_DIGEST = "send_digest"
REGISTRY_VALIDITY = "registry_validity"

#: Job kind → ``module:function`` of its handler, imported when a job of the kind runs (the
#: jobs package depends on no domain; a Celery worker resolves handlers the same way).
HANDLERS: dict[str, str] = {
    ISSUE_CONCLUSIONS: "review_portal.conclusions.bulk:issue_conclusions_job",
    RUN_ASSIGNMENT: "review_portal.assignment.services:run_assignment_job",
    EXPORT_REGISTRY: "review_portal.registry.exports:build_snapshot_exports_job",
    SEND_MAIL: "review_portal.notifications.services:send_mail_job",
    SEND_REMINDERS: "review_portal.assignment.reminders:send_reminders_job",
    CLOSE_DISCUSSIONS: "review_portal.reconciliation.services:close_discussions_job",
    ANCHOR_AUDIT: "review_portal.audit.services:anchor_audit_job",
    IMPORT_FILE: "review_portal.imports.background:import_file_job",
    SEND_DIGEST: "review_portal.main.digest:send_digest_job",
    REGISTRY_VALIDITY: "review_portal.registry.validity:registry_validity_job",
}

#: Job kind → what the job page calls it.
KIND_LABELS = {
    ISSUE_CONCLUSIONS: _l("Issuing conclusions"),
    RUN_ASSIGNMENT: _l("Automatic assignment"),
    EXPORT_REGISTRY: _l("Registry export files"),
    SEND_MAIL: _l("Sending e-mail"),
    SEND_REMINDERS: _l("Deadline reminders"),
    CLOSE_DISCUSSIONS: _l("Closing expired discussions"),
    ANCHOR_AUDIT: _l("Signing the audit chain"),
    IMPORT_FILE: _l("Import from a CSV or XLSX file"),
    SEND_DIGEST: _l("Daily digest for the staff"),
    REGISTRY_VALIDITY: _l("Registry entries: end dates and expiry"),
}

#: Periodic job kind → ``module:function`` of the cheap query (of the domain that owns the
#: work) saying whether anything is due now: without it, a scheduled run makes no job and
#: writes no audit record (:func:`review_portal.jobs.worker.run_periodic`).
DUE_CHECKS: dict[str, str] = {
    SEND_MAIL: "review_portal.notifications.queries:due_message_exists",
    SEND_REMINDERS: "review_portal.assignment.reminders:reminders_due",
    CLOSE_DISCUSSIONS: "review_portal.reconciliation.services:expired_discussions_exist",
    ANCHOR_AUDIT: "review_portal.audit.services:anchor_due",
    SEND_DIGEST: "review_portal.main.digest:digest_due",
    REGISTRY_VALIDITY: "review_portal.registry.validity:validity_due",
}

#: ``celery``: on Celery workers (the default when ``CELERY_BROKER_URL`` is set).
RUNNERS = ("thread", "eager", "none", "celery")

#: Longest error text kept on a job (characters).
MAX_ERROR = 2000


class JobError(Exception):
    """A job cannot be run (unknown id or kind)."""


class JobStop(Exception):
    """A handler's deliberate stop, with a reason for the user (kept as the job's error
    without the exception's name); like any failure, nothing of the unit is committed."""


def kind_label(kind: str):
    return KIND_LABELS.get(kind, kind)


def handler_for(kind: str) -> Callable[[int], None]:
    try:
        module_name, function = HANDLERS[kind].split(":")
    except KeyError:
        raise JobError(f"no handler for jobs of kind {kind!r}") from None
    return getattr(importlib.import_module(module_name), function)


def is_due(kind: str) -> bool:
    """Whether a periodic job of ``kind`` has anything to do now (a kind without a check
    always has)."""
    if kind not in DUE_CHECKS:
        return True
    module_name, function = DUE_CHECKS[kind].split(":")
    return bool(getattr(importlib.import_module(module_name), function)())


def create_job(kind: str, payload: dict, actor, total: int) -> Job:
    """A queued job of ``kind`` with ``total`` units of work (flushed, audited, not
    committed: commit before starting it)."""
    if kind not in HANDLERS:
        raise JobError(f"no handler for jobs of kind {kind!r}")
    job = Job(
        kind=kind,
        status=JobStatus.QUEUED,
        payload=payload,
        total=total,
        done=0,
        failed_items=[],
        created_by_id=actor.id if actor is not None else None,
    )
    db.session.add(job)
    db.session.flush()
    record_event(
        "job.create",
        actor=actor,
        object_type="job",
        object_id=job.id,
        after={"kind": kind, "total": total},
    )
    return job


def progress(job: Job, done: int, failed_items: list | None = None) -> None:
    """Record that ``done`` units are processed (and the failures so far) and commit: a unit
    of work and the progress that counts it are one transaction. Job runners only."""
    with unit_of_work():
        job.done = done
        job.heartbeat_at = utcnow()
        if failed_items is not None:
            job.failed_items = [dict(item) for item in failed_items]


def run_job(job_id: int, *, retry_failed: bool = False) -> Job:
    """Run the job, or resume it after an interruption; returns it as it ended.

    One run at a time: the run holds the job's lock (:func:`review_portal.locks.try_lock`,
    released when it ends or its process dies), and a second run of the same job meanwhile —
    a task the broker delivered twice, ``flask run-job`` beside a worker — returns the job
    as it is without touching it.

    A finished job is left as it is, and so is a failed one unless ``retry_failed`` (an
    operator's explicit choice: ``flask run-job``): a task delivered again later — a copy
    the sweeper sent while the job waited its turn, or the broker's redelivery after its
    visibility timeout — must not restart, unasked, a job the coordinator saw fail.
    Otherwise the job is marked running (its progress and
    failures counted again from zero: the handler skips the units already done; a job found
    running, whose runner is gone since nobody holds its lock, counts one more interruption),
    its handler runs while a heartbeat says the run is alive, and the job ends ``done`` —
    with the units that failed listed — or ``failed`` with the error when the handler
    raised. Commits (it owns its transactions).
    """
    started = time.perf_counter()
    with try_lock("job", job_id) as held:
        if not held:
            with unit_of_work():
                job = db.session.get(Job, job_id, populate_existing=True)
                if job is None:
                    raise JobError(f"no job {job_id}")
            _log_run(job_id, job.kind, "already_running", started)
            return job
        return _run_held(job_id, started, retry_failed)


def _run_held(job_id: int, started: float, retry_failed: bool) -> Job:
    """:func:`run_job` once the job's lock is held."""
    with unit_of_work():
        job = db.session.get(Job, job_id, populate_existing=True)
        if job is None:
            raise JobError(f"no job {job_id}")
        if job.status == JobStatus.DONE:
            _log_run(job_id, job.kind, "already_done", started)
            return job
        if job.status == JobStatus.FAILED and not retry_failed:
            _log_run(job_id, job.kind, "already_failed", started)
            return job
        kind = job.kind
        handler = handler_for(kind)
        if job.status == JobStatus.RUNNING:
            # Running, yet its lock was free: the process that ran it has died.
            job.interruptions = (job.interruptions or 0) + 1
        job.status = JobStatus.RUNNING
        job.started_at = job.heartbeat_at = utcnow()
        job.finished_at = None
        job.error = None
        job.dispatch_error = None
        job.result = None
        job.done = 0
        job.failed_items = []
    try:
        # The handler commits its own units (with their progress); what it leaves
        # uncommitted when it raises is rolled back here.
        with _Heartbeat(job_id), unit_of_work():
            handler(job_id)
    except Exception as error:  # noqa: BLE001 - any failure ends the job, with its reason
        stopped = isinstance(error, JobStop)
        with unit_of_work():
            job = db.session.get(Job, job_id, populate_existing=True)
            job.status = JobStatus.FAILED
            text = str(error) if stopped else f"{type(error).__name__}: {error}"
            job.error = text[:MAX_ERROR]
            job.finished_at = utcnow()
        if stopped:  # a deliberate stop with its reason: no traceback
            _log_run(job_id, kind, "stopped", started, logging.WARNING, reason=text)
        else:
            _log_run(job_id, kind, "failed", started, logging.ERROR, exc_info=error)
        return job
    with unit_of_work():
        job = db.session.get(Job, job_id, populate_existing=True)
        job.status = JobStatus.DONE
        job.finished_at = utcnow()
        done, total, failed = job.done, job.total, len(job.failed_items or [])
    _log_run(job_id, kind, "done", started, done=done, total=total, failed=failed)
    return job


class _Heartbeat:
    """While a job's handler runs, a daemon thread stamps the job's ``heartbeat_at`` every
    ``JOB_HEARTBEAT_SECONDS`` (0: never) on a connection of its own, so a long unit of work
    (a batch of renders, an assignment run) does not look like a dead runner. The units'
    commits stamp it too (:func:`progress`). A stamp that fails (the database busy or away)
    is logged and tried again next time; the thread is not waited for when the run ends."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.every = float(current_app.config.get("JOB_HEARTBEAT_SECONDS", 0) or 0)
        self.engine = db.engine
        self.stopped = threading.Event()

    def __enter__(self) -> _Heartbeat:
        if self.every > 0:
            threading.Thread(
                target=self._beat, name=f"job-{self.job_id}-heartbeat", daemon=True
            ).start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopped.set()

    def _beat(self) -> None:
        table = Job.__table__
        while not self.stopped.wait(self.every):
            try:
                with self.engine.begin() as connection:
                    connection.execute(
                        update(table)
                        .where(table.c.id == self.job_id, table.c.status == JobStatus.RUNNING)
                        .values(heartbeat_at=utcnow())
                    )
            except Exception as error:  # noqa: BLE001 - a thread has nobody to raise to
                log.warning("job %s: heartbeat not recorded (%r)", self.job_id, error)


def _log_run(
    job_id: int,
    kind: str,
    outcome: str,
    started: float,
    level: int = logging.INFO,
    exc_info=None,
    **fields,
) -> None:
    """The one line of a job run: id, kind, outcome, duration (and a failure's traceback)."""
    duration = round((time.perf_counter() - started) * 1000, 1)
    details = "".join(f" {key}={value}" for key, value in fields.items())
    log.log(
        level,
        "job %s (%s) %s in %s ms%s",
        job_id,
        kind,
        outcome,
        duration,
        details,
        exc_info=exc_info,
        extra={
            "job_id": job_id,
            "kind": kind,
            "outcome": outcome,
            "duration_ms": duration,
            **fields,
        },
    )


def runner_mode(app: Flask) -> str:
    mode = app.config.get("JOBS_RUNNER") or (
        "eager" if app.testing else "celery" if app.config.get("CELERY_BROKER_URL") else "thread"
    )
    if mode not in RUNNERS:
        raise JobError(f"JOBS_RUNNER must be one of {', '.join(RUNNERS)}, not {mode!r}")
    return mode


def start_in_background(app: Flask, job_id: int) -> threading.Thread | None:
    """Run the job in a daemon thread with its own application context. Returns the thread;
    ``None`` when ``JOBS_RUNNER`` ran it at once (``eager``) or leaves it queued (``none``).

    The caller's unit of work (the request that created the job), if any, is committed
    first: the hand-off to another thread or process is the one place a request commits
    before its view returns, since a runner cannot read a job that is not committed yet."""
    if has_app_context():
        with unit_of_work():
            pass
    mode = runner_mode(app)
    if mode == "none":
        return None
    if mode == "celery":
        from review_portal.jobs.worker import send_to_worker

        send_to_worker(app, job_id)
        return None
    if mode == "eager":
        if has_app_context() and current_app._get_current_object() is app:
            run_job(job_id)
        else:
            with app.app_context():
                run_job(job_id)
        return None
    thread = threading.Thread(
        target=_run_in_thread, args=(app, job_id), name=f"job-{job_id}", daemon=True
    )
    thread.start()
    return thread


def _run_in_thread(app: Flask, job_id: int) -> None:
    with app.app_context():
        try:
            run_job(job_id)
        except Exception:  # noqa: BLE001 - a thread has nobody to raise to
            log.exception("job %s could not be run", job_id)
        finally:
            db.session.remove()


def queue_unavailable_message() -> str:
    """What the user who started a job is told when the job queue could not take it."""
    return _(
        "The job queue is unavailable: the job is saved and will start as soon as the "
        "queue works again."
    )


def finish_counted(job_id: int, total: int, done: int, result: dict | None = None) -> None:
    """For a job whose size is known only once it ran (one unit of work, as the periodic
    jobs, an assignment run, the export files): record its total, what it produced and its
    progress, and commit them with the unit's own changes."""
    job = db.session.get(Job, job_id)
    job.total = total
    if result is not None:
        job.result = result
    progress(job, done)


#: Jobs shown on the list page.
RECENT = 100


def recent_jobs(limit: int = RECENT) -> list[Job]:
    """The newest jobs first (one query)."""
    return list(db.session.execute(select(Job).order_by(Job.id.desc()).limit(limit)).scalars())


def job_status(job: Job) -> dict:
    """What the job page and its JSON report."""
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status.value,
        "done": job.done,
        "total": job.total,
        "percent": job.percent,
        "failed": len(job.failed_items or []),
        "failed_items": list(job.failed_items or []),
        "error": job.error,
        "interruptions": job.interruptions or 0,
        "waiting_for_queue": job.waiting_for_queue,
    }
