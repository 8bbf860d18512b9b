"""Where jobs run (the runner chosen by the configuration), the periodic jobs Celery beat
sends (outbox, reminders, discussions, the audit chain's daily anchor) run here in-process
on committed data, the list of
jobs, and the worker commands' refusal without a broker. The real worker over Redis is in
``test_celery_worker.py``."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import func, select

from review_portal.enums import OutboxStatus
from review_portal.extensions import db
from review_portal.jobs.models import Job, JobStatus
from review_portal.jobs.services import (
    ANCHOR_AUDIT,
    CLOSE_DISCUSSIONS,
    ISSUE_CONCLUSIONS,
    REGISTRY_VALIDITY,
    SEND_DIGEST,
    SEND_MAIL,
    SEND_REMINDERS,
    create_job,
    runner_mode,
)
from review_portal.jobs.worker import (
    CHAIN_AUDIT,
    PERIODIC_JOB,
    SWEEP_JOBS,
    celery_app,
    run_periodic,
)
from review_portal.notifications.models import OutboxMessage
from review_portal.notifications.services import queue_email
from tests.factories import CoordinatorFactory
from tests.processes import free_port


def bare_app(**config) -> Flask:
    app = Flask("runner-test")
    app.config.update(config)
    return app


@pytest.mark.parametrize(
    ("config", "testing", "expected"),
    [
        ({}, False, "thread"),
        ({"CELERY_BROKER_URL": "redis://127.0.0.1:6379/0"}, False, "celery"),
        ({}, True, "eager"),
        ({"CELERY_BROKER_URL": "redis://127.0.0.1:6379/0"}, True, "eager"),
        ({"CELERY_BROKER_URL": "redis://127.0.0.1:6379/0", "JOBS_RUNNER": "none"}, False, "none"),
        ({"JOBS_RUNNER": "celery"}, True, "celery"),
    ],
)
def test_runner_follows_the_configuration(config, testing, expected):
    app = bare_app(**config)
    app.testing = testing
    assert runner_mode(app) == expected


def test_beat_schedule_sends_the_periodic_jobs(app):
    schedule = celery_app(app).conf.beat_schedule
    assert {entry["task"] for entry in schedule.values()} == {PERIODIC_JOB, CHAIN_AUDIT, SWEEP_JOBS}
    periodic = [entry for entry in schedule.values() if entry["task"] == PERIODIC_JOB]
    assert sorted(entry["args"][0] for entry in periodic) == sorted(
        [SEND_MAIL, SEND_REMINDERS, CLOSE_DISCUSSIONS, ANCHOR_AUDIT, SEND_DIGEST, REGISTRY_VALIDITY]
    )
    conf = celery_app(app).conf
    # A task is acknowledged after it ran, and given back when its worker dies.
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1


def test_periodic_mail_job_sends_the_outbox_and_is_recorded(scratch_app):
    with scratch_app.app_context():
        queue_email("expert@example.org", "Напоминание", "Срок экспертизы истекает завтра.")
        queue_email("provider@example.org", "Решение", "Экспертиза завершена.")
        db.session.commit()

        job_id = run_periodic(SEND_MAIL)

        job = db.session.get(Job, job_id)
        assert (job.status, job.done, job.total, job.error) == (JobStatus.DONE, 2, 2, None)
        sent = db.session.execute(
            select(func.count(OutboxMessage.id)).where(OutboxMessage.status == OutboxStatus.SENT)
        ).scalar_one()
        assert sent == 2
        db.session.remove()


def test_periodic_job_is_skipped_while_one_of_its_kind_is_unfinished(scratch_app):
    with scratch_app.app_context():
        waiting = create_job(SEND_MAIL, {}, None, total=0)
        db.session.commit()

        assert run_periodic(SEND_MAIL) is None

        assert db.session.execute(select(func.count(Job.id))).scalar_one() == 1
        assert db.session.get(Job, waiting.id).status == JobStatus.QUEUED
        db.session.remove()


def counts() -> tuple[int, int]:
    """Job rows and audit records."""
    from review_portal.audit.models import AuditEvent

    return (
        db.session.execute(select(func.count(Job.id))).scalar_one(),
        db.session.execute(select(func.count(AuditEvent.id))).scalar_one(),
    )


@pytest.mark.parametrize(
    "kind",
    [SEND_MAIL, SEND_REMINDERS, CLOSE_DISCUSSIONS, ANCHOR_AUDIT, SEND_DIGEST, REGISTRY_VALIDITY],
)
def test_periodic_run_with_nothing_due_writes_no_job_and_no_audit_record(scratch_app, kind):
    """Beat sends each kind every few minutes or hours: a run with nothing to do is a query,
    not a job row and an audit record (about 336 of them a day before)."""
    with scratch_app.app_context():
        before = counts()

        assert run_periodic(kind) is None
        assert run_periodic(kind) is None

        assert counts() == before
        db.session.remove()


def test_periodic_reminders_job_runs_when_a_notice_is_due(scratch_app):
    from datetime import timedelta

    from review_portal.assignment.services import local_today
    from tests.test_reminders import make_assignment

    with scratch_app.app_context():
        make_assignment(local_today() - timedelta(days=10))  # long overdue, never noticed
        db.session.commit()

        job = db.session.get(Job, run_periodic(SEND_REMINDERS))
        assert job.status == JobStatus.DONE, job.error
        # The expert's overdue notice and the digest of the one coordinator... of none: the
        # notice alone.
        assert job.done == job.total == 1
        # Sent once: the next run has nothing due.
        assert run_periodic(SEND_REMINDERS) is None
        db.session.remove()


def test_periodic_discussions_job_runs_when_a_discussion_expired(app, session, discussion_rubric):
    from datetime import timedelta

    from review_portal.reviews.models import Review
    from tests import factories

    review, _ = factories.scored_review(
        factories.points(2, 2, 2, 2, 2, 2, 2, 2, 0, 2), factories.points(2)
    )
    factories.expert()  # the third expert
    assert run_periodic(CLOSE_DISCUSSIONS) is None  # the deadline is ahead
    session.execute(
        Review.__table__.update()
        .where(Review.id == review.id)
        .values(discussion_deadline=review.discussion_deadline - timedelta(days=30))
    )

    job = session.get(Job, run_periodic(CLOSE_DISCUSSIONS))

    assert job.status == JobStatus.DONE, job.error
    assert job.done == job.total == 1
    session.expire_all()
    assert session.get(Review, review.id).extra_experts == 1
    assert run_periodic(CLOSE_DISCUSSIONS) is None


def test_periodic_anchor_job_links_the_queue_and_signs_the_head(scratch_app):
    from review_portal.audit.models import AuditAnchor
    from review_portal.audit.services import record_event
    from review_portal.audit.verification import verify_chain

    with scratch_app.app_context():
        # Committed without the chaining step after it (as when that step failed).
        for n in range(3):
            record_event("test.action", object_type="program", object_id=n)
        db.session.commit()
        assert verify_chain().pending == 3

        job = db.session.get(Job, run_periodic(ANCHOR_AUDIT))

        assert job.status == JobStatus.DONE, job.error
        (anchor,) = db.session.execute(select(AuditAnchor)).scalars()
        assert anchor.reason == "daily"
        # The three records and the job's own record were linked before the head was signed
        # (by the chaining step after the job's creation committed: none was left for it).
        assert job.result == {"anchor_id": anchor.id, "position": 4, "link": anchor.link}
        assert job.done == job.total == 0
        report = verify_chain()
        assert report.ok and report.pending == 0 and report.last_anchor.position == 4
        # The anchor covers every record: the next day with nothing new signs nothing.
        assert run_periodic(ANCHOR_AUDIT) is None
        assert db.session.execute(select(func.count(AuditAnchor.id))).scalar_one() == 1
        db.session.remove()


def test_chain_task_links_what_is_queued(scratch_app):
    from review_portal.audit.services import record_event
    from review_portal.audit.verification import verify_chain

    with scratch_app.app_context():
        record_event("test.action", object_type="program", object_id=1)
        db.session.commit()
        assert verify_chain().pending == 1
        db.session.remove()  # the task runs in an application context (and session) of its own
        task = celery_app(scratch_app).tasks[CHAIN_AUDIT]
        assert task.apply().get() == 1
        assert verify_chain().pending == 0
        db.session.remove()


def test_mail_job_fails_with_the_reason_when_the_server_is_unreachable(scratch_app):
    closed_port = free_port()
    scratch_app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=closed_port, SMTP_TIMEOUT=2)
    with scratch_app.app_context():
        queue_email("expert@example.org", "Напоминание", "Срок экспертизы истекает завтра.")
        db.session.commit()

        job = db.session.get(Job, run_periodic(SEND_MAIL))

        assert job.status == JobStatus.FAILED
        assert "could not be reached" in job.error
        pending = db.session.execute(
            select(func.count(OutboxMessage.id)).where(OutboxMessage.status == OutboxStatus.PENDING)
        ).scalar_one()
        assert pending == 1
        db.session.remove()


def test_jobs_page_lists_recent_jobs_with_their_state(session, client, auth):
    coordinator = CoordinatorFactory()
    done = create_job(SEND_MAIL, {}, None, total=3)
    done.status, done.done = JobStatus.DONE, 3
    failed = create_job(ISSUE_CONCLUSIONS, {"review_ids": [], "actor_id": coordinator.id}, None, 5)
    failed.status, failed.error = JobStatus.FAILED, "OperationalError: нет соединения"
    session.flush()
    auth.login(coordinator)

    page = client.get("/jobs").get_data(as_text=True)

    assert "Фоновые задания" in page
    assert f'id="job-{done.id}" data-status="done"' in page
    assert "Отправка электронной почты" in page and "Обработано 3 из 3" in page
    assert f'id="job-{failed.id}" data-status="failed"' in page
    assert "Выпуск заключений" in page and "OperationalError: нет соединения" in page
    assert page.index(f'id="job-{failed.id}"') < page.index(f'id="job-{done.id}"')


def test_worker_commands_refuse_without_a_broker(app, session):
    for command in ("worker", "beat"):
        result = app.test_cli_runner().invoke(args=[command])
        assert result.exit_code == 1
        assert "CELERY_BROKER_URL is not set" in result.output


def test_periodic_validity_job_expires_an_entry_past_its_end_date(scratch_app):
    from datetime import timedelta

    from review_portal.assignment.services import local_today
    from review_portal.enums import RegistryEntryStatus, RegistryKind
    from review_portal.registry.models import RegistryEntry
    from review_portal.registry.services import publish_registry
    from tests import factories

    with scratch_app.app_context():
        coordinator = factories.CoordinatorFactory()
        _program, _conclusion, entry = factories.admitted_program(coordinator=coordinator)
        publish_registry(RegistryKind.CERTIFIED, coordinator)
        db.session.commit()
        assert run_periodic(REGISTRY_VALIDITY) is None  # 36 months ahead: nothing due
        entry = db.session.get(RegistryEntry, entry.id)
        entry.valid_until = local_today() - timedelta(days=1)
        db.session.commit()

        job = db.session.get(Job, run_periodic(REGISTRY_VALIDITY))
        assert job.status == JobStatus.DONE, job.error
        assert job.done == job.total == 1
        db.session.expire_all()
        entry = db.session.get(RegistryEntry, entry.id)
        assert entry.status == RegistryEntryStatus.PENDING_REMOVAL
        assert entry.removal_reason == "срок действия истёк"
        assert run_periodic(REGISTRY_VALIDITY) is None
        db.session.remove()
