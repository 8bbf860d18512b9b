"""The audit log: records, the chain of links, tamper detection, append-only triggers, CLI
and page. The signed anchors and concurrent writers are in ``tests/test_audit_anchors.py``."""

from __future__ import annotations

import csv
import json
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from review_portal.assignment.services import local_today
from review_portal.audit.chain import GENESIS_HASH, event_hash, link_hash
from review_portal.audit.models import AuditAnchor, AuditChainHead, AuditEvent, AuditLink
from review_portal.audit.services import anchor_chain, chain_pending, record_event
from review_portal.audit.verification import verify_chain
from review_portal.extensions import db
from review_portal.unit_of_work import unit_of_work
from tests.factories import ApplicantFactory, CoordinatorFactory, ExpertUserFactory

#: The tables an administrator makes writable again before tampering.
APPEND_ONLY = ("audit_events", "audit_links", "audit_anchors")


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


def linked_events(n: int, actor=None) -> list[AuditEvent]:
    """``n`` events written and linked into the chain (the chaining step commits, which in
    a test releases to the test's own transaction)."""
    events = write_events(n, actor)
    chain_pending()
    return events


def drop_append_only_triggers(backend: str) -> None:
    """What a database administrator with full rights could do before tampering."""
    if backend == "postgresql":
        db.session.execute(sa.text("DROP TRIGGER audit_events_append_only ON audit_events"))
        for table in APPEND_ONLY[1:]:
            db.session.execute(sa.text(f"DROP TRIGGER {table}_append_only ON {table}"))
    else:
        for table in APPEND_ONLY:
            db.session.execute(sa.text(f"DROP TRIGGER {table}_no_update"))
            db.session.execute(sa.text(f"DROP TRIGGER {table}_no_delete"))


def position_of(event: AuditEvent) -> int:
    return db.session.execute(
        select(AuditLink.position).where(AuditLink.event_id == event.id)
    ).scalar_one()


def rewrite_from(event: AuditEvent, backend: str, **changes) -> None:
    """Change ``event`` and recompute its hash, every later link and the head: the chain is
    consistent in itself again (what `audit-verify` could not tell before anchors)."""
    drop_append_only_triggers(backend)
    db.session.execute(sa.update(AuditEvent).where(AuditEvent.id == event.id).values(**changes))
    row = db.session.execute(select(AuditEvent.__table__).where(AuditEvent.id == event.id)).one()
    db.session.execute(
        sa.update(AuditEvent).where(AuditEvent.id == event.id).values(hash=event_hash(row))
    )
    links = db.session.execute(
        select(AuditLink.position, AuditLink.event_id, AuditEvent.hash)
        .join(AuditEvent, AuditEvent.id == AuditLink.event_id)
        .order_by(AuditLink.position)
    ).all()
    link = GENESIS_HASH
    for position, event_id, content_hash in links:
        new = link_hash(position, link, event_id, content_hash)
        db.session.execute(
            sa.update(AuditLink)
            .where(AuditLink.position == position)
            .values(prev_link=link, link=new)
        )
        link = new
    db.session.execute(sa.update(AuditChainHead).values(last_link=link))


# --- writing and linking ------------------------------------------------------------------


def test_events_are_queued_then_linked_in_order(session):
    events = write_events(5, actor=CoordinatorFactory())
    # Written with their own content hash; nothing locked, nothing linked yet.
    assert all(e.prev_hash is None and e.hash == event_hash(e) for e in events)
    assert db.session.execute(select(sa.func.count()).select_from(AuditLink)).scalar() == 0
    report = verify_chain()
    assert report.ok and (report.checked, report.pending) == (5, 5)

    assert chain_pending() == 5

    links = db.session.execute(select(AuditLink).order_by(AuditLink.position)).scalars().all()
    assert [link.event_id for link in links] == [e.id for e in events]
    assert [link.position for link in links] == [1, 2, 3, 4, 5]
    previous = GENESIS_HASH
    for link, event in zip(links, events, strict=True):
        assert link.prev_link == previous
        assert link.link == link_hash(link.position, previous, event.id, event.hash)
        previous = link.link
    head = db.session.get(AuditChainHead, 1, populate_existing=True)
    assert (head.last_event_id, head.last_position, head.last_link) == (events[-1].id, 5, previous)
    report = verify_chain()
    assert report.ok and (report.checked, report.pending) == (5, 0)


def test_a_unit_of_work_links_its_events_after_it_commits(session):
    with unit_of_work():
        event = record_event("test.action", object_type="program", object_id=1)
    assert db.session.execute(
        select(AuditLink.position).where(AuditLink.event_id == event.id)
    ).scalar_one()
    assert verify_chain().pending == 0


def test_a_failing_chaining_step_never_fails_the_request(client, auth, session, monkeypatch):
    """The request committed; its records wait in the queue for the next chaining step."""
    from review_portal.audit import services

    def broken(*args, **kwargs):
        raise RuntimeError("chaining failed (test)")

    user = ExpertUserFactory()
    monkeypatch.setattr(services, "chain_pending", broken)
    response = auth.login(user)
    assert response.status_code == 302
    (login,) = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "account.login")
    ).scalars()
    assert verify_chain().pending >= 1
    monkeypatch.undo()
    chain_pending()
    assert position_of(login) >= 1
    assert verify_chain().pending == 0


def test_verify_reads_in_batches(session):
    linked_events(7)
    assert verify_chain(batch_size=2).checked == 7


# --- tampering without anchors ----------------------------------------------------------


def test_tampered_content_is_found_at_its_record(session, backend):
    events = linked_events(6)
    drop_append_only_triggers(backend)
    db.session.execute(
        sa.update(AuditEvent).where(AuditEvent.id == events[3].id).values(actor_label="someone")
    )
    report = verify_chain()
    assert not report.ok
    assert report.first_broken_id == events[3].id
    assert report.checked == 3
    assert report.code == "hash"


def test_tampered_queued_record_is_found(session, backend):
    events = write_events(3)
    drop_append_only_triggers(backend)
    db.session.execute(
        sa.update(AuditEvent).where(AuditEvent.id == events[1].id).values(action="forged")
    )
    report = verify_chain()
    assert (report.code, report.first_broken_id) == ("hash", events[1].id)


def test_rehashed_tampering_breaks_its_link(session, backend):
    """Recomputing the tampered record's own hash does not help: its link no longer holds."""
    events = linked_events(4)
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
    assert report.first_broken_id == target.id
    assert report.code == "link"


def test_deleted_record_is_found(session, backend):
    events = linked_events(5)
    drop_append_only_triggers(backend)
    db.session.execute(sa.delete(AuditLink).where(AuditLink.event_id == events[2].id))
    db.session.execute(sa.delete(AuditEvent).where(AuditEvent.id == events[2].id))
    report = verify_chain()
    assert (report.code, report.first_broken_id) == ("gap", events[3].id)


def test_deleted_tail_is_found(session, backend):
    events = linked_events(3)
    drop_append_only_triggers(backend)
    db.session.execute(sa.delete(AuditLink).where(AuditLink.event_id == events[2].id))
    db.session.execute(sa.delete(AuditEvent).where(AuditEvent.id == events[2].id))
    report = verify_chain()
    assert not report.ok
    assert report.first_broken_id == events[2].id
    assert report.code == "tail"


def test_record_taken_out_of_the_queue_is_found(session):
    from review_portal.audit.models import AuditPending

    events = write_events(3)
    db.session.execute(sa.delete(AuditPending).where(AuditPending.event_id == events[1].id))
    report = verify_chain()
    assert (report.code, report.first_broken_id) == ("unlinked", events[1].id)


@pytest.mark.parametrize(
    "statement",
    [
        sa.update(AuditEvent).values(action="changed"),
        sa.delete(AuditEvent),
        sa.update(AuditLink).values(link="0" * 64),
        sa.delete(AuditLink),
        sa.update(AuditAnchor).values(position=0),
        sa.delete(AuditAnchor),
    ],
    ids=["update", "delete", "update-link", "delete-link", "update-anchor", "delete-anchor"],
)
def test_database_refuses_to_change_or_delete_records_links_and_anchors(session, statement):
    linked_events(2)
    anchor_chain("test")
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), db.session.begin_nested():
        db.session.execute(statement)
    assert db.session.execute(select(sa.func.count(AuditEvent.id))).scalar_one() == 2
    assert db.session.execute(select(sa.func.count(AuditLink.position))).scalar_one() == 2
    assert db.session.execute(select(sa.func.count(AuditAnchor.id))).scalar_one() == 1
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
    events = linked_events(4)
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["audit-verify"])
    assert ok.exit_code == 0
    assert "Audit chain intact: 4 records checked (0 not linked yet)" in ok.output
    drop_append_only_triggers(backend)
    db.session.execute(
        sa.update(AuditEvent).where(AuditEvent.id == events[1].id).values(object_id="999")
    )
    broken = runner.invoke(args=["audit-verify"])
    assert broken.exit_code == 1
    assert f"BROKEN at record {events[1].id} (position 2)" in broken.output


def test_concurrent_writers_keep_one_linear_chain(scratch_app, caplog):
    """Writers in separate connections and transactions, each unit of work linking what it
    wrote after its commit: one chain, every record linked exactly once, and no chaining
    step failed on the way (a failed step is only logged: the next one links its records)."""
    writers, per_writer = 6, 15
    errors: list[BaseException] = []
    barrier = threading.Barrier(writers)

    def write(worker: int) -> None:
        try:
            with scratch_app.app_context():
                barrier.wait(timeout=30)
                for i in range(per_writer):
                    with unit_of_work():
                        record_event(
                            "test.concurrent", object_type="worker", object_id=f"{worker}-{i}"
                        )
                db.session.remove()
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert not [r for r in caplog.records if "after-commit step" in r.getMessage()]
    with scratch_app.app_context():
        report = verify_chain()
        assert report.ok, report
        assert (report.checked, report.pending) == (writers * per_writer, 0)
        db.session.remove()


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


def test_audit_page_reports_an_intact_chain_with_its_anchors(client, auth, session):
    coordinator = CoordinatorFactory()
    linked_events(3)
    anchor_chain("test")
    auth.login(coordinator)
    page = client.get("/audit/?verify=1").get_data(as_text=True)
    assert 'id="chain-report"' in page and "alert-success" in page
    assert "Цепочка записей не нарушена" in page
    assert "Подписанных отметок, которые совпадают: 1" in page


def test_audit_page_reports_a_broken_chain(client, auth, session, backend):
    coordinator = CoordinatorFactory()
    events = linked_events(3)
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
