"""The sweeper: jobs that lost their runner, and jobs the job queue never took.

A running job's runner stamps its heartbeat (``Job.heartbeat_at``) at every committed unit
and every ``JOB_HEARTBEAT_SECONDS``. When a whole worker is killed its job stays
``running``, and Redis would give its task to another worker only after
``CELERY_VISIBILITY_TIMEOUT`` (hours); meanwhile a periodic job left so blocks every later
run of its kind. :func:`sweep_jobs` therefore

1. finds the running jobs whose heartbeat is older than ``JOB_STALE_AFTER_SECONDS`` and,
   when nobody holds the job's lock (a live runner always does: a heartbeat may only be late,
   e.g. behind SQLite's write lock), marks each ``queued`` again, counts the interruption
   (shown on the job's page) and audits it (``job.requeue``);
2. with Celery (``JOBS_RUNNER`` ``celery``), sends to the job queue the jobs it requeued and
   the queued jobs whose earlier send the broker refused (``Job.dispatch_error``), so they
   start as soon as the broker is back, and the queued jobs nothing has touched for the
   stale period (a task the broker took but whose worker died before it started would
   otherwise wait for ``CELERY_VISIBILITY_TIMEOUT``; a periodic job so left blocks its
   kind). Sending a job twice is harmless: a run of a job that is done, or that another
   run holds, returns at once. Each resumes without repeating what it committed (the
   handlers commit every unit with its progress).

Without Celery, requeued jobs wait for ``flask run-job <id>`` (``flask sweep-jobs --run``
runs them at once). Celery beat runs the sweep every ``JOB_SWEEP_SECONDS``; ``flask
sweep-jobs`` runs it by hand. A sweep that finds nothing writes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, or_, select, update

from review_portal.audit.services import record_event
from review_portal.db import utcnow
from review_portal.extensions import db
from review_portal.jobs.models import Job, JobStatus
from review_portal.jobs.services import runner_mode
from review_portal.locks import try_lock
from review_portal.unit_of_work import unit_of_work

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    #: Running jobs found abandoned and marked queued again.
    requeued: list[int] = field(default_factory=list)
    #: Jobs handed to the job queue by this sweep.
    sent: list[int] = field(default_factory=list)
    #: Jobs the job queue still refused.
    unsent: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def stale_cutoff(now: datetime | None = None) -> datetime:
    """Heartbeats before this moment are stale."""
    seconds = float(current_app.config["JOB_STALE_AFTER_SECONDS"])
    return (now or utcnow()) - timedelta(seconds=seconds)


def stale_job_ids(cutoff: datetime) -> list[int]:
    """Running jobs whose last heartbeat (or, for a job started before heartbeats, its
    start) is older than ``cutoff``."""
    return list(
        db.session.execute(
            select(Job.id)
            .where(
                Job.status == JobStatus.RUNNING,
                or_(
                    Job.heartbeat_at < cutoff,
                    and_(Job.heartbeat_at.is_(None), Job.started_at < cutoff),
                ),
            )
            .order_by(Job.id)
        ).scalars()
    )


def refused_job_ids() -> list[int]:
    """Queued jobs whose send to the job queue failed."""
    return list(
        db.session.execute(
            select(Job.id)
            .where(Job.status == JobStatus.QUEUED, Job.dispatch_error.is_not(None))
            .order_by(Job.id)
        ).scalars()
    )


def lost_job_ids(cutoff: datetime) -> list[int]:
    """Queued jobs, sent without a refusal, that nothing has touched since ``cutoff``: the
    task may have gone with a worker that died before starting it."""
    return list(
        db.session.execute(
            select(Job.id)
            .where(
                Job.status == JobStatus.QUEUED,
                Job.dispatch_error.is_(None),
                Job.updated_at < cutoff,
            )
            .order_by(Job.id)
        ).scalars()
    )


def touch(job_ids: list[int]) -> None:
    """Stamp ``updated_at`` of the jobs sent again, so a job still waiting behind a long
    queue is sent at most once per stale period."""
    if job_ids:
        db.session.execute(update(Job).where(Job.id.in_(job_ids)).values(updated_at=utcnow()))


def requeue_if_abandoned(job_id: int, cutoff: datetime) -> bool:
    """Mark the running job ``queued`` again when its heartbeat is older than ``cutoff`` and
    nobody runs it (its lock is free); commits. Whether it was requeued."""
    with try_lock("job", job_id) as held:
        if not held:
            log.warning("job %s: heartbeat late, but its runner is alive; left running", job_id)
            return False
        with unit_of_work():
            job = db.session.get(Job, job_id, populate_existing=True)
            if job is None or job.status != JobStatus.RUNNING:
                return False
            beat, kind = job.heartbeat_at or job.started_at, job.kind
            if beat is not None and beat >= cutoff:
                return False
            job.status = JobStatus.QUEUED
            job.interruptions = (job.interruptions or 0) + 1
            record_event(
                "job.requeue",
                object_type="job",
                object_id=job.id,
                before={"status": "running", "heartbeat_at": beat, "done": job.done},
                after={"status": "queued", "interruptions": job.interruptions},
            )
    log.warning(
        "job %s (%s) lost its runner (last heartbeat %s); queued again",
        job_id,
        kind,
        beat,
        extra={"job_id": job_id, "kind": kind, "outcome": "requeued"},
    )
    return True


def sweep_jobs() -> SweepReport:
    """Requeue the abandoned running jobs and, with Celery, send them and the jobs the
    broker refused to the job queue (see the module's docstring). Commits."""
    from review_portal.jobs.worker import send_to_worker

    app = current_app._get_current_object()
    report = SweepReport()
    cutoff = stale_cutoff()
    with unit_of_work():
        stale = stale_job_ids(cutoff)
    report.requeued = [job_id for job_id in stale if requeue_if_abandoned(job_id, cutoff)]
    if runner_mode(app) != "celery":
        return report
    with unit_of_work():
        refused = refused_job_ids()
        lost = lost_job_ids(cutoff)
        touch(lost)
    for job_id in sorted(set(report.requeued) | set(refused) | set(lost)):
        (report.sent if send_to_worker(app, job_id) else report.unsent).append(job_id)
    return report
