"""The audit log: the hash chain, tamper detection, append-only triggers, CLI and page."""

from __future__ import annotations

import csv
import json
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from review_portal.assignment.services import local_today
from review_portal.audit.models import AuditChainHead, AuditEvent
from review_portal.audit.services import GENESIS_HASH, record_event, verify_chain
from review_portal.extensions import db
from tests.factories import ApplicantFactory, CoordinatorFactory, ExpertUserFactory


def write_events(n: int, actor=None) -> list[AuditEvent]:
    events = [
        record_event(
            "test.action",
            actor=actor,
            object_type="program",
            object_id=i,
            before={"state": "draft"},
            after={"state": "submitted", "title": "Робототехника «Старт»", "n": i},
        )
        for i in range(n)
    ]
    db.session.flush()
    return events


def drop_append_only_triggers(backend: str) -> None:
    """What a database administrator with full rights could do before tampering."""
    if backend == "postgresql":
        db.session.execute(sa.text("DROP TRIGGER audit_events_append_only ON audit_events"))
    else:
        db.session.execute(sa.text("DROP TRIGGER audit_events_no_update"))
        db.session.execute(sa.text("DROP TRIGGER audit_events_no_delete"))


def test_events_form_a_chain_from_genesis(session):
    events = write_events(5, actor=CoordinatorFactory())
    assert events[0].prev_hash == GENESIS_HASH
    for previous, event in zip(events, events[1:], strict=False):
        assert event.prev_hash == previous.hash
        assert event.id == previous.id + 1
    head = db.session.get(AuditChainHead, 1)
    assert (head.last_event_id, head.last_hash) == (events[-1].id, events[-1].hash)
    report = verify_chain()
    assert report.ok and report.checked == 5


def test_verify_reads_in_batches(session):
    write_events(7)
    assert verify_chain(batch_size=2).checked == 7


def test_tampered_content_is_found_at_its_record(session, backend):
    events = write_events(6)
    drop_append_only_triggers(backend)
    db.session.execute(
        sa.update(AuditEvent).where(AuditEvent.id == events[3].id).values(actor_label="someone")
    )
    report = verify_chain()
    assert not report.ok
    assert report.first_broken_id == events[3].id
    assert report.checked == 3
    assert report.code == "hash"


def test_rehashed_tampering_breaks_the_next_link(session, backend):
    """Recomputing the tampered record's own hash does not help: the next link breaks."""
    from review_portal.audit.services import event_hash

    events = write_events(4)
    drop_append_only_triggers(backend)
    target = events[1]
    db.session.execute(
        sa.update(AuditEvent).where(AuditEvent.id == target.id).values(after={"state": "x"})
    )
    row = db.session.execute(select(AuditEvent.__table__).where(AuditEvent.id == target.id)).one()
    db.session.execute(
        sa.update(AuditEvent).where(AuditEvent.id == target.id).values(hash=event_hash(row))
    )
    report = verify_chain()
    assert report.first_broken_id == events[2].id
    assert report.code == "link"


def test_deleted_record_is_found(session, backend):
    events = write_events(5)
    drop_append_only_triggers(backend)
    db.session.execute(sa.delete(AuditEvent).where(AuditEvent.id == events[2].id))
    report = verify_chain()
    assert report.first_broken_id == events[3].id


def test_deleted_tail_is_found(session, backend):
    events = write_events(3)
    drop_append_only_triggers(backend)
    db.session.execute(sa.delete(AuditEvent).where(AuditEvent.id == events[2].id))
    report = verify_chain()
    assert not report.ok
    assert report.first_broken_id == events[2].id
    assert report.code == "tail"


@pytest.mark.parametrize(
    "statement",
    [
        sa.update(AuditEvent).values(action="changed"),
        sa.delete(AuditEvent),
    ],
    ids=["update", "delete"],
)
def test_database_refuses_to_change_or_delete_events(session, statement):
    write_events(2)
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), db.session.begin_nested():
        db.session.execute(statement)
    assert db.session.execute(select(sa.func.count(AuditEvent.id))).scalar_one() == 2
    assert verify_chain().ok


def test_event_records_actor_and_client_address(app, session):
    user = ExpertUserFactory()
    with app.test_request_context("/", environ_base={"REMOTE_ADDR": "10.1.2.3"}):
        event = record_event("test.action", actor=user, object_type="user", object_id=user.id)
    assert (event.actor_id, event.actor_label, event.ip_address) == (
        user.id,
        user.email,
        "10.1.2.3",
    )


def test_audit_verify_command_names_the_broken_record(app, session, backend):
    events = write_events(4)
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["audit-verify"])
    assert ok.exit_code == 0
    assert "4 records checked" in ok.output
    drop_append_only_triggers(backend)
    db.session.execute(
        sa.update(AuditEvent).where(AuditEvent.id == events[1].id).values(object_id="999")
    )
    broken = runner.invoke(args=["audit-verify"])
    assert broken.exit_code == 1
    assert f"BROKEN at record {events[1].id}" in broken.output


def test_concurrent_writers_keep_one_linear_chain(scratch_app):
    """Writers in separate connections and transactions never fork the chain."""
    writers, per_writer = 4, 15
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            with scratch_app.app_context():
                for i in range(per_writer):
                    record_event("test.concurrent", object_type="worker", object_id=f"{worker}-{i}")
                    db.session.commit()
                db.session.remove()
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    with scratch_app.app_context():
        report = verify_chain()
        assert report.ok, report
        assert report.checked == writers * per_writer


# --- the coordinator's page -------------------------------------------------------------


def test_audit_page_filters_by_user_object_and_date(client, auth, session):
    coordinator = CoordinatorFactory()
    other = ApplicantFactory()
    record_event("program.create", actor=other, object_type="program", object_id=41)
    record_event("program.create", actor=coordinator, object_type="program", object_id=42)
    old = record_event("settings.change", actor=coordinator, object_type="setting", object_id="x")
    db.session.flush()
    auth.login(coordinator)

    page = client.get(f"/audit/?user={other.email.upper()}").get_data(as_text=True)
    assert "program 41" in page and "program 42" not in page

    page = client.get("/audit/?object_type=program&object_id=42").get_data(as_text=True)
    assert "program 42" in page and "program 41" not in page

    # The filter's dates are the portal's (Moscow) dates, not UTC ones: between 21:00 and
    # midnight UTC they differ.
    today = local_today()
    page = client.get(f"/audit/?date_from={today + timedelta(days=1)}").get_data(as_text=True)
    assert "program 4" not in page and "setting x" not in page
    page = client.get(f"/audit/?date_from={today - timedelta(days=1)}&date_to={today}")
    assert f"setting {old.object_id}" in page.get_data(as_text=True)


def test_audit_page_reports_a_broken_chain(client, auth, session, backend):
    coordinator = CoordinatorFactory()
    events = write_events(3)
    drop_append_only_triggers(backend)
    db.session.execute(
        sa.update(AuditEvent).where(AuditEvent.id == events[1].id).values(action="forged")
    )
    auth.login(coordinator)
    page = client.get("/audit/?verify=1").get_data(as_text=True)
    assert 'id="chain-report"' in page
    assert "alert-danger" in page
    assert f"{events[1].id}" in page


def test_audit_export_is_csv_with_bom(client, auth, session):
    coordinator = CoordinatorFactory()
    write_events(2)
    auth.login(coordinator)
    response = client.get("/audit/export.csv?action=test.")
    body = response.get_data()
    assert response.mimetype == "text/csv"
    assert body.startswith("\ufeff".encode())
    lines = body.decode("utf-8-sig").strip().splitlines()
    assert len(lines) == 3  # header and two events
    assert "Робототехника «Старт»" in lines[1]
    rows = list(csv.reader(lines[1:], delimiter=";"))
    # Newest first; before/after are JSON the reader can load back.
    assert json.loads(rows[1][8]) == {
        "state": "submitted",
        "title": "Робототехника «Старт»",
        "n": 0,
    }
    assert json.loads(rows[0][7]) == {"state": "draft"}


def test_audit_page_is_for_coordinators_only(client, auth, session):
    auth.login(ApplicantFactory())
    assert client.get("/audit/").status_code == 403
    assert client.get("/audit/export.csv").status_code == 403
