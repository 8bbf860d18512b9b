"""Jobs under faults, in-process on committed data (SQLite and PostgreSQL): one run of a
job at a time (a second run while the first is inside its handler does nothing), the
heartbeat of a running job, and the sweeper that requeues a job whose runner died —
never one whose runner is alive — and sends again the jobs the job queue refused.

The same faults with a real Celery worker killed (SIGKILL) and a real broker taken away are
in ``test_celery_worker.py``.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from review_portal.audit.models import AuditEvent
from review_portal.db import utcnow
from review_portal.extensions import db
from review_portal.jobs import services
from review_portal.jobs.models import Job, JobStatus
from review_portal.jobs.services import SEND_MAIL, create_job, progress, run_job
from review_portal.jobs.sweeper import sweep_jobs
from review_portal.jobs.worker import RUN_JOB, celery_app, run_periodic
from review_portal.locks import try_lock
from review_portal.notifications.services import queue_email
from tests.processes import free_port, wait_until

BLOCKING = "test_blocking"

#: The blocking handler's hooks: set by the test, read by the handler.
entered = threading.Event()
release = threading.Event()
calls: list[int] = []


def blocking_handler(job_id: int) -> None:
    """A test job of one unit that waits inside its handler until the test releases it."""
    calls.append(job_id)
    entered.set()
    assert release.wait(timeout=60), "the test never released the handler"
    job = db.session.get(Job, job_id)
    job.total = 1
    progress(job, 1)


@pytest.fixture
def blocking_kind(monkeypatch):
    monkeypatch.setitem(services.HANDLERS, BLOCKING, f"{__name__}:blocking_handler")
    entered.clear()
    release.clear()
    calls.clear()
    yield BLOCKING
    release.set()


def new_job(app, kind: str) -> int:
    with app.app_context():
        job = create_job(kind, {}, None, total=0)
        db.session.commit()
        job_id = job.id
        db.session.remove()
    return job_id


def run_in_thread(app, job_id: int) -> tuple[threading.Thread, dict]:
    outcome = {}

    def target():
        with app.app_context():
            try:
                outcome["status"] = run_job(job_id).status
            finally:
                db.session.remove()

    thread = threading.Thread(target=target, name=f"test-job-{job_id}")
    thread.start()
    return thread, outcome


def job_state(app, job_id: int) -> Job:
    with app.app_context():
        job = db.session.get(Job, job_id)
        db.session.expunge(job)
        db.session.remove()
    return job


def test_a_second_run_while_the_first_is_in_its_handler_does_nothing(scratch_app, blocking_kind):
    job_id = new_job(scratch_app, blocking_kind)
    first, outcome = run_in_thread(scratch_app, job_id)
    assert entered.wait(timeout=60)  # the first run is inside its handler now

    with scratch_app.app_context():
        second = run_job(job_id)  # a redelivered task, or flask run-job beside the worker
        assert second.status == JobStatus.RUNNING
        db.session.remove()
    assert calls == [job_id]  # the handler was not entered a second time

    release.set()
    first.join(timeout=60)
    assert outcome["status"] == JobStatus.DONE
    job = job_state(scratch_app, job_id)
    assert (job.status, job.done, job.total, job.error) == (JobStatus.DONE, 1, 1, None)
    assert job.interruptions == 0
    assert calls == [job_id]


def test_a_running_job_beats_while_its_handler_works(scratch_app, blocking_kind, monkeypatch):
    monkeypatch.setitem(scratch_app.config, "JOB_HEARTBEAT_SECONDS", 0.2)
    job_id = new_job(scratch_app, blocking_kind)
    thread, _ = run_in_thread(scratch_app, job_id)
    assert entered.wait(timeout=60)
    first_beat = job_state(scratch_app, job_id).heartbeat_at
    assert first_beat is not None  # stamped when the run started

    later = wait_until(
        lambda: (beat := job_state(scratch_app, job_id).heartbeat_at) > first_beat and beat,
        "a heartbeat while the handler runs",
        timeout=60,
    )

    # A live runner with a late heartbeat is never swept: its lock is held.
    monkeypatch.setitem(scratch_app.config, "JOB_STALE_AFTER_SECONDS", -3600)
    with scratch_app.app_context():
        assert sweep_jobs().requeued == []
        db.session.remove()
    release.set()
    thread.join(timeout=60)
    job = job_state(scratch_app, job_id)
    assert job.status == JobStatus.DONE and job.heartbeat_at >= later
    assert job.interruptions == 0


def abandon(app, job_id: int, seconds_ago: float) -> None:
    """The job as a killed worker leaves it: running, its last heartbeat long ago."""
    with app.app_context():
        beat = utcnow() - timedelta(seconds=seconds_ago)
        db.session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(status=JobStatus.RUNNING, started_at=beat, heartbeat_at=beat, done=0)
        )
        db.session.commit()
        db.session.remove()


def requeue_events(app) -> list[AuditEvent]:
    with app.app_context():
        rows = list(
            db.session.execute(select(AuditEvent).where(AuditEvent.action == "job.requeue"))
            .scalars()
            .all()
        )
        for row in rows:
            db.session.expunge(row)
        db.session.remove()
    return rows


def test_sweeper_requeues_a_job_whose_runner_died_and_it_resumes(scratch_app, monkeypatch):
    """A periodic job left running by a killed worker blocks its kind until swept; swept, it
    is sent to the job queue (here Celery's in-memory broker), runs once more and is done,
    and its page says it was interrupted."""
    monkeypatch.setitem(scratch_app.config, "JOBS_RUNNER", "celery")
    monkeypatch.setitem(scratch_app.config, "JOB_STALE_AFTER_SECONDS", 30)
    with scratch_app.app_context():
        queue_email("expert@example.org", "Напоминание", "Срок экспертизы истекает завтра.")
        db.session.commit()
        db.session.remove()
    job_id = new_job(scratch_app, SEND_MAIL)
    abandon(scratch_app, job_id, seconds_ago=10)
    with scratch_app.app_context():
        assert run_periodic(SEND_MAIL) is None  # blocked by the job left running
        # Not stale yet (10 s of 30): nothing is swept and nothing written.
        assert sweep_jobs().as_dict() == {"requeued": [], "sent": [], "unsent": []}
        db.session.remove()
    assert requeue_events(scratch_app) == []

    abandon(scratch_app, job_id, seconds_ago=60)
    with scratch_app.app_context():
        report = sweep_jobs()
        db.session.remove()

    assert (report.requeued, report.sent, report.unsent) == ([job_id], [job_id], [])
    job = job_state(scratch_app, job_id)
    assert (job.status, job.interruptions, job.dispatch_error) == (JobStatus.QUEUED, 1, None)
    (event,) = requeue_events(scratch_app)
    assert event.object_id == str(job_id) and event.after["interruptions"] == 1
    # What the worker does with the task the sweeper sent.
    assert celery_app(scratch_app).tasks[RUN_JOB].apply(args=[job_id]).get() == "done"
    job = job_state(scratch_app, job_id)
    assert (job.status, job.done, job.total, job.interruptions) == (JobStatus.DONE, 1, 1, 1)


def test_sweeper_sends_again_a_queued_job_nobody_started(scratch_app, monkeypatch):
    """A task the broker handed to a worker that died before starting it: the job stays
    queued with no refusal noted. Untouched for the stale period, the sweeper sends it again
    (once per period, not at every sweep) and a worker runs it."""
    monkeypatch.setitem(scratch_app.config, "JOBS_RUNNER", "celery")
    monkeypatch.setitem(scratch_app.config, "JOB_STALE_AFTER_SECONDS", 30)
    with scratch_app.app_context():
        queue_email("expert@example.org", "Напоминание", "Срок экспертизы истекает завтра.")
        db.session.commit()
        db.session.remove()
    job_id = new_job(scratch_app, SEND_MAIL)
    with scratch_app.app_context():
        # Queued a moment ago: it may simply be waiting its turn.
        assert sweep_jobs().as_dict() == {"requeued": [], "sent": [], "unsent": []}
        db.session.execute(
            update(Job).where(Job.id == job_id).values(updated_at=utcnow() - timedelta(seconds=60))
        )
        db.session.commit()
        assert sweep_jobs().as_dict() == {"requeued": [], "sent": [job_id], "unsent": []}
        # Sent again just now: the next sweep leaves it alone.
        assert sweep_jobs().as_dict() == {"requeued": [], "sent": [], "unsent": []}
        db.session.remove()
    assert requeue_events(scratch_app) == []
    assert celery_app(scratch_app).tasks[RUN_JOB].apply(args=[job_id]).get() == "done"
    job = job_state(scratch_app, job_id)
    assert (job.status, job.done, job.interruptions) == (JobStatus.DONE, 1, 0)


def test_sweeper_leaves_a_job_whose_lock_is_held(scratch_app):
    """A heartbeat may be late (SQLite's write lock, a busy machine): while the runner holds
    the job's lock, the job is its runner's."""
    job_id = new_job(scratch_app, SEND_MAIL)
    abandon(scratch_app, job_id, seconds_ago=3600)
    with scratch_app.app_context():
        with try_lock("job", job_id) as held:
            assert held
            assert sweep_jobs().requeued == []
        db.session.remove()
    assert job_state(scratch_app, job_id).status == JobStatus.RUNNING
    assert requeue_events(scratch_app) == []


def test_a_job_found_running_with_a_free_lock_counts_an_interruption(scratch_app):
    """``flask run-job`` on a job whose process was killed: no sweep needed."""
    job_id = new_job(scratch_app, SEND_MAIL)
    abandon(scratch_app, job_id, seconds_ago=1)
    with scratch_app.app_context():
        job = run_job(job_id)
        assert (job.status, job.interruptions) == (JobStatus.DONE, 1)
        db.session.remove()


def test_job_page_tells_the_interruptions_and_the_queue_refusal(session, client, auth):
    from tests.factories import CoordinatorFactory

    coordinator = CoordinatorFactory()
    resumed = create_job(SEND_MAIL, {}, None, total=3)
    resumed.status, resumed.done, resumed.interruptions = JobStatus.DONE, 3, 2
    waiting = create_job(SEND_MAIL, {}, None, total=0)
    waiting.dispatch_error = "OperationalError: Error 111 connecting to 127.0.0.1:1."
    session.flush()
    auth.login(coordinator)

    page = client.get(f"/jobs/{resumed.id}").get_data(as_text=True)
    assert "Прерывалось 2 раза и было перезапущено" in page
    page = client.get(f"/jobs/{waiting.id}").get_data(as_text=True)
    assert 'id="job-queue-unavailable"' in page
    assert "Очередь заданий была недоступна, поэтому задание ещё не началось" in page
    listing = client.get("/jobs").get_data(as_text=True)
    assert "прерывалось 2 раза" in listing and "очередь заданий недоступна" in listing
    data = client.get(f"/jobs/{waiting.id}.json").get_json()
    assert (data["status"], data["waiting_for_queue"]) == ("queued", True)


def test_a_refused_send_leaves_the_job_queued_with_the_reason(tmp_path):
    """The broker on a closed port: the send fails (within seconds: no request is held for
    long), the job stays queued with the reason, and every sweep tries it again. That the
    sweeper sends it once the broker is back, and a worker runs it, is in
    ``test_celery_worker.py``."""
    from review_portal.jobs.worker import send_to_worker
    from tests.conftest import migrated_app

    url = f"sqlite:///{tmp_path / 'broker.sqlite'}"
    closed = f"redis://127.0.0.1:{free_port()}/0"
    with migrated_app(url, tmp_path, CELERY_BROKER_URL=closed, JOBS_RUNNER="celery") as app:
        job_id = new_job(app, SEND_MAIL)
        with app.app_context():
            assert send_to_worker(app, job_id) is False
            db.session.remove()
        job = job_state(app, job_id)
        assert job.status == JobStatus.QUEUED and job.waiting_for_queue
        assert "connecting to 127.0.0.1" in job.dispatch_error
        with app.app_context():
            assert sweep_jobs().as_dict() == {"requeued": [], "sent": [], "unsent": [job_id]}
            db.session.remove()
        assert job_state(app, job_id).waiting_for_queue


def test_sweep_jobs_command_requeues_and_runs_with_run(scratch_app):
    """Without Celery the command requeues, says how to run the jobs, and runs them with
    ``--run``."""
    job_id = new_job(scratch_app, SEND_MAIL)
    abandon(scratch_app, job_id, seconds_ago=3600)
    runner = scratch_app.test_cli_runner()

    result = runner.invoke(args=["sweep-jobs"])
    assert result.exit_code == 0, result.output
    assert f"Requeued: {job_id}; sent to the job queue: none" in result.output
    assert "flask run-job <id>" in result.output
    assert job_state(scratch_app, job_id).status == JobStatus.QUEUED

    abandon(scratch_app, job_id, seconds_ago=3600)
    result = runner.invoke(args=["sweep-jobs", "--run"])
    assert result.exit_code == 0, result.output
    assert f"Job {job_id} (send_mail): done." in result.output
    job = job_state(scratch_app, job_id)
    assert (job.status, job.interruptions) == (JobStatus.DONE, 2)
