"""The anchored audit chain: signed heads catch a rewritten chain and name the first record
after the last good anchor; forged anchors are found; a registry publication anchors the
chain and publishes the anchor; audited transactions on PostgreSQL no longer wait for each
other (the chain is linked after they commit)."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from review_portal.audit.chain import GENESIS_HASH, sign_anchor
from review_portal.audit.models import AuditAnchor, AuditChainHead, AuditEvent, AuditLink
from review_portal.audit.services import anchor_chain, chain_pending, record_event
from review_portal.audit.verification import verify_chain
from review_portal.db import utcnow
from review_portal.enums import RegistryKind
from review_portal.extensions import db
from review_portal.registry.services import publish_registry
from review_portal.unit_of_work import unit_of_work
from tests import factories
from tests.conftest import (
    TEST_DATABASE_URL,
    _aux_postgres_url,
    drop_postgres_database,
    migrated_app,
)
from tests.test_audit import drop_append_only_triggers, linked_events, position_of, rewrite_from

OTHER_KEY = "someone-elses-key-of-at-least-thirty-two-characters"


def anchored_log() -> list[AuditEvent]:
    """Nine linked events with anchors at positions 3 and 6 (and none after 9)."""
    events = linked_events(3)
    anchor_chain("test")
    events += linked_events(3)
    anchor_chain("test")
    events += linked_events(3)
    return events


def test_a_rewritten_chain_is_caught_at_the_first_record_after_the_last_good_anchor(
    app, session, backend
):
    events = anchored_log()
    assert verify_chain().ok

    # The record at position 5 changed, then every later hash, link and the head redone.
    rewrite_from(events[4], backend, actor_label="someone.else@example.org")

    report = verify_chain()
    assert not report.ok
    assert report.code == "anchor"
    # The anchor at 3 still matches, the one at 6 does not: the record named is at 4.
    assert (report.position, report.first_broken_id) == (4, events[3].id)
    assert report.last_anchor.position == 3 and report.bad_anchor.position == 6
    assert report.checked == 3

    result = app.test_cli_runner().invoke(args=["audit-verify"])
    assert result.exit_code == 1
    assert f"Audit chain BROKEN at record {events[3].id} (position 4)" in result.output
    assert "does not match: anchor" in result.output and "at position 6" in result.output


def test_a_chain_cut_back_is_caught_by_the_anchor_beyond_its_end(session, backend):
    events = anchored_log()
    drop_append_only_triggers(backend)
    # The last five records removed with their links, the head moved back to position 4.
    for event in events[4:]:
        db.session.execute(sa.delete(AuditLink).where(AuditLink.event_id == event.id))
        db.session.execute(sa.delete(AuditEvent).where(AuditEvent.id == event.id))
    link = db.session.execute(select(AuditLink.link).where(AuditLink.position == 4)).scalar_one()
    db.session.execute(
        sa.update(AuditChainHead).values(
            last_position=4, last_link=link, last_event_id=events[3].id
        )
    )
    report = verify_chain()
    assert (report.code, report.position, report.first_broken_id) == ("anchor", 4, events[3].id)
    assert report.bad_anchor.position == 6


def test_a_forged_anchor_is_found(session):
    events = anchored_log()
    head = db.session.get(AuditChainHead, 1, populate_existing=True)
    moment = utcnow()
    db.session.add(
        AuditAnchor(
            created_at=moment,
            position=head.last_position,
            link=head.last_link,
            signature=sign_anchor(OTHER_KEY, head.last_position, head.last_link, moment),
            reason="daily",
        )
    )
    db.session.flush()
    report = verify_chain()
    assert report.code == "forged"
    assert report.bad_anchor.position == 9
    # The records after the last good anchor (position 6) are the ones in doubt.
    assert (report.position, report.first_broken_id) == (7, events[6].id)


def test_a_forged_anchor_of_an_empty_chain_is_found(session):
    moment = utcnow()
    db.session.add(
        AuditAnchor(
            created_at=moment,
            position=0,
            link=GENESIS_HASH,
            signature=sign_anchor(OTHER_KEY, 0, GENESIS_HASH, moment),
            reason="daily",
        )
    )
    db.session.flush()
    report = verify_chain()
    assert (report.code, report.position, report.first_broken_id) == ("forged", 1, None)


def test_anchors_of_a_retired_key_verify_while_it_is_listed(app, session, monkeypatch):
    linked_events(2)
    monkeypatch.setitem(app.config, "AUDIT_ANCHOR_KEY", OTHER_KEY)
    anchor_chain("test")
    monkeypatch.setitem(app.config, "AUDIT_ANCHOR_KEY", "the-new-key-of-at-least-thirty-two-chars")
    assert verify_chain().code == "forged"
    monkeypatch.setitem(app.config, "AUDIT_ANCHOR_PREVIOUS_KEYS", [OTHER_KEY])
    report = verify_chain()
    assert report.ok and report.anchors == 1


def test_the_daily_anchor_links_what_is_queued_and_signs_the_head(app, session):
    events = linked_events(2)
    queued = record_event("test.action", object_type="program", object_id="late")
    anchor, linked = anchor_chain("daily")
    assert linked == 1
    assert position_of(queued) == 3
    assert (anchor.position, anchor.reason) == (3, "daily")
    head = db.session.get(AuditChainHead, 1, populate_existing=True)
    assert anchor.link == head.last_link
    assert anchor.signature == sign_anchor(
        app.config["AUDIT_ANCHOR_KEY"], 3, head.last_link, anchor.created_at
    )
    assert events[0].id < queued.id
    report = verify_chain()
    assert report.ok and report.anchors == 1 and report.last_anchor.position == 3


# --- a registry publication anchors the chain -------------------------------------------


def test_a_publication_writes_an_anchor_and_the_snapshot_carries_it(client, session, backend):
    coordinator = factories.CoordinatorFactory()
    factories.admitted_program(coordinator=coordinator)
    factories.admitted_program(coordinator=coordinator)
    chain_pending()
    head = db.session.get(AuditChainHead, 1, populate_existing=True)
    assert head.last_position > 0

    snapshot = publish_registry(RegistryKind.CERTIFIED, coordinator)

    (anchor,) = db.session.execute(select(AuditAnchor)).scalars()
    assert anchor.reason == "registry:certified:1"
    assert (anchor.position, anchor.link) == (head.last_position, head.last_link)
    assert (
        snapshot.audit_position,
        snapshot.audit_link,
        snapshot.audit_signature,
        snapshot.audit_anchored_at,
    ) == (anchor.position, anchor.link, anchor.signature, anchor.created_at)
    db.session.commit()

    body = client.get("/api/v1/registry/snapshots").get_json()
    assert body["items"][0]["audit_anchor"] == {
        "position": anchor.position,
        "link": anchor.link,
        "signature": anchor.signature,
        "anchored_at": anchor.created_at.isoformat(),
    }
    chain_pending()  # the publication's own record
    report = verify_chain()
    assert report.ok and report.anchors == 2  # the table's and the snapshot's copy

    # The published copy is checked too: a snapshot whose anchor was re-signed with
    # another key (to match a rewritten chain) gives it away.
    signature = sign_anchor(OTHER_KEY, anchor.position, anchor.link, anchor.created_at)
    db.session.execute(
        sa.update(snapshot.__table__)
        .where(snapshot.__table__.c.id == snapshot.id)
        .values(audit_signature=signature)
    )
    report = verify_chain()
    assert report.code == "forged"
    assert report.bad_anchor.label == "registry publication certified № 1"


# --- writers that do not wait for each other (PostgreSQL) -----------------------------------


needs_postgresql = pytest.mark.skipif(
    not TEST_DATABASE_URL, reason="needs PostgreSQL (TEST_DATABASE_URL)"
)


@pytest.fixture
def postgres_app(tmp_path):
    url = _aux_postgres_url("anchors")
    with migrated_app(url, tmp_path) as app:
        yield app
    drop_postgres_database(url)


@needs_postgresql
def test_audited_transactions_commit_without_waiting_for_each_other(postgres_app):
    """Transaction A writes a record and stays open; transaction B writes one and commits
    meanwhile, with a lock timeout of 2 s (before, B waited for the chain head A held, as
    every audited write of the portal did). Each is linked after its own commit: B first."""
    app = postgres_app
    recorded, release = threading.Event(), threading.Event()
    ids: dict[str, int] = {}
    errors: list[BaseException] = []

    def transaction_a() -> None:
        try:
            with app.app_context():
                with unit_of_work():
                    ids["a"] = record_event("test.a", object_type="test", object_id="a").id
                    recorded.set()
                    assert release.wait(timeout=60)
                db.session.remove()
        except BaseException as error:  # reported in the test's thread
            errors.append(error)
            recorded.set()

    a = threading.Thread(target=transaction_a)
    a.start()
    try:
        assert recorded.wait(timeout=60) and not errors
        with app.app_context():
            with unit_of_work():
                db.session.execute(sa.text("SET LOCAL lock_timeout = '2s'"))
                ids["b"] = record_event("test.b", object_type="test", object_id="b").id
            assert a.is_alive(), "A must still be open while B commits"
            linked = db.session.execute(select(AuditLink.event_id)).scalars().all()
            assert linked == [ids["b"]]  # A's record is not committed yet
            db.session.remove()
    finally:
        release.set()
        a.join(timeout=60)
    assert not errors, errors
    assert ids["a"] < ids["b"]  # A took its id first...
    with app.app_context():
        order = (
            db.session.execute(select(AuditLink.event_id).order_by(AuditLink.position))
            .scalars()
            .all()
        )
        assert order == [ids["b"], ids["a"]]  # ...and is linked after B, in commit order
        report = verify_chain()
        assert report.ok and (report.checked, report.pending) == (2, 0)
        db.session.remove()
