"""Publications of the registry racing each other and racing the transactions that change
entries (issuing a conclusion, revoking one), each in its own connection and transaction on
committed data. On PostgreSQL the transactions really overlap; on SQLite they are serialised
by ``BEGIN IMMEDIATE`` — the outcome must be consistent on both.

The races inside a publication are made deterministic: the publishing thread is stopped at a
chosen point of ``publish_registry`` (where it reads the pending changes, or where it copies
the rows into the snapshot) until the other transaction has committed or is waiting for one
of the publication's locks.

Kept apart from the other tests: this module must not use the per-test transaction
(``session`` fixture), which would bind every thread to one connection.
"""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from review_portal.accounts.models import User
from review_portal.conclusions.models import Conclusion
from review_portal.conclusions.services import revoke_conclusion
from review_portal.enums import RegistryEntryStatus, RegistryKind
from review_portal.extensions import db
from review_portal.registry import services
from review_portal.registry.models import RegistryEntry, RegistrySnapshot, RegistrySnapshotItem
from review_portal.registry.queries import compare, iter_snapshot_rows
from review_portal.registry.services import (
    RegistryError,
    format_registry_number,
    latest_snapshot,
    publish_registry,
)
from review_portal.reviews.models import Review
from review_portal.reviews.services import decide_review
from review_portal.workflow import ReviewState
from tests import factories

E = RegistryEntryStatus
CERTIFIED = RegistryKind.CERTIFIED
SIGNIFICANT = RegistryKind.SIGNIFICANT
JOIN_TIMEOUT = 120


def run_threads(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=JOIN_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads)


def seed(app, certified: int = 0, significant: int = 0) -> int:
    """Admitted programs with pending entries, committed; the coordinator's id."""
    with app.app_context():
        coordinator = factories.CoordinatorFactory()
        for _ in range(certified):
            factories.admitted_program(coordinator=coordinator)
        for _ in range(significant):
            factories.admitted_program(coordinator=coordinator, requested_registry_kind=SIGNIFICANT)
        db.session.commit()
        coordinator_id = coordinator.id
        db.session.remove()
    return coordinator_id


def publish_in_context(app, kind, coordinator_id) -> tuple[str, int | None]:
    """One publication in its own transaction: ("published", number) or ("refused", None)."""
    with app.app_context():
        try:
            snapshot = publish_registry(kind, db.session.get(User, coordinator_id))
            number = snapshot.number
            db.session.commit()
            return "published", number
        except RegistryError:
            db.session.rollback()
            return "refused", None
        finally:
            db.session.remove()


def assert_consistent(kind: RegistryKind) -> None:
    """The registry of ``kind`` as a whole (call inside an application context):

    - numbers are unique and consecutive from 1 in the order of the entries that got them;
    - snapshots are numbered 1, 2, 3 ...; each one's rows have distinct numbers and differ
      from the previous snapshot's; the latest lists exactly the entries included or pending
      removal, with their numbers;
    - a pending inclusion has no number; a removed entry has a removal date exactly when it
      had been published (a number).
    """
    entries = list(
        db.session.execute(
            select(RegistryEntry).where(RegistryEntry.kind == kind).order_by(RegistryEntry.id)
        ).scalars()
    )
    numbered = sorted(
        (e for e in entries if e.registry_number is not None), key=lambda e: e.registry_number
    )
    assert [e.registry_number for e in numbered] == [
        format_registry_number(kind, n) for n in range(1, len(numbered) + 1)
    ]
    assert [e.id for e in numbered] == sorted(e.id for e in numbered)
    for entry in entries:
        facts = (entry.id, entry.status, entry.registry_number, entry.included_on, entry.removed_on)
        if entry.status == E.PENDING_INCLUSION:
            assert entry.registry_number is None and entry.included_on is None, facts
        elif entry.status in (E.INCLUDED, E.PENDING_REMOVAL):
            assert entry.registry_number is not None and entry.included_on is not None, facts
            assert entry.removed_on is None, facts
        else:
            assert (entry.registry_number is None) == (entry.removed_on is None), facts
    snapshots = list(
        db.session.execute(
            select(RegistrySnapshot)
            .where(RegistrySnapshot.kind == kind)
            .order_by(RegistrySnapshot.number)
        ).scalars()
    )
    assert [s.number for s in snapshots] == list(range(1, len(snapshots) + 1))
    previous = None
    for snapshot in snapshots:
        rows = list(iter_snapshot_rows(snapshot.id))
        assert len(rows) == snapshot.entry_count
        assert len({row["registry_number"] for row in rows}) == len(rows)
        # A publication always changes something: never two identical snapshots in a row.
        if previous is not None:
            assert compare(previous, rows), f"snapshot {snapshot.number} repeats the previous one"
        previous = rows
    latest = latest_snapshot(kind)
    if latest is None:
        assert all(e.status in (E.PENDING_INCLUSION, E.REMOVED) for e in entries)
        return
    listed = dict(
        db.session.execute(
            select(RegistrySnapshotItem.entry_id, RegistrySnapshotItem.registry_number).where(
                RegistrySnapshotItem.snapshot_id == latest.id
            )
        ).all()
    )
    public = {
        e.id: e.registry_number for e in entries if e.status in (E.INCLUDED, E.PENDING_REMOVAL)
    }
    assert listed == public


# --- publications at the same moment --------------------------------------------------------


def test_simultaneous_publications_give_each_snapshot_and_number_once(scratch_app):
    coordinator_id = seed(scratch_app, certified=5, significant=2)

    def publish_all_at_once(kinds) -> list[tuple[RegistryKind, str, int | None]]:
        barrier = threading.Barrier(len(kinds))
        outcomes, errors = [], []

        def publish(kind):
            try:
                barrier.wait(timeout=30)  # before any statement: SQLite locks at BEGIN
                outcomes.append((kind, *publish_in_context(scratch_app, kind, coordinator_id)))
            except BaseException as error:
                errors.append(error)

        run_threads([threading.Thread(target=publish, args=(kind,)) for kind in kinds])
        assert not errors, errors
        return outcomes

    first = publish_all_at_once([CERTIFIED] * 4 + [SIGNIFICANT] * 3)
    assert sorted(o for o in first if o[1] == "published") == [
        (CERTIFIED, "published", 1),
        (SIGNIFICANT, "published", 1),
    ]
    assert sum(o[1] == "refused" for o in first) == 5

    seed(scratch_app, certified=3)
    second = publish_all_at_once([CERTIFIED] * 4)
    assert [o for o in second if o[1] == "published"] == [(CERTIFIED, "published", 2)]

    with scratch_app.app_context():
        counts = dict(
            db.session.execute(
                select(RegistrySnapshot.number, RegistrySnapshot.entry_count).where(
                    RegistrySnapshot.kind == CERTIFIED
                )
            ).all()
        )
        assert counts == {1: 5, 2: 8}
        for kind in (CERTIFIED, SIGNIFICANT):
            assert_consistent(kind)
        statuses = set(db.session.execute(select(RegistryEntry.status)).scalars())
        assert statuses == {E.INCLUDED}
        db.session.remove()


# --- a transaction committing while a publication runs --------------------------------------


class Stall:
    """Stops the thread named ``publisher`` at one point of ``publish_registry`` until the
    other transaction has committed (``done``) or waits for a lock the publication holds."""

    def __init__(self, app):
        self.reached = threading.Event()
        self.done = threading.Event()
        #: The publication passed the stall point (else the test raced nothing).
        self.stopped = False
        url = app.config["SQLALCHEMY_DATABASE_URI"]
        self.postgres = not url.startswith("sqlite")
        self.monitor = None
        if self.postgres:
            from tests.conftest import postgres_url

            self.monitor = sa.create_engine(postgres_url(url), isolation_level="AUTOCOMMIT")

    def install(self, monkeypatch, point: str) -> None:
        # The changes are read (and counted) by ``_locked_changes``; the rows are copied by
        # ``_copy_snapshot`` (one INSERT … SELECT).
        name = {"before_changes": "_locked_changes", "before_rows": "_copy_snapshot"}[point]
        original = getattr(services, name)

        def stalled(*args, **kwargs):
            self.stop()
            return original(*args, **kwargs)

        monkeypatch.setattr(services, name, stalled)

    def other_is_waiting_for_a_lock(self) -> bool:
        with self.monitor.connect() as connection:
            return bool(
                connection.exec_driver_sql(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                ).scalar()
            )

    def stop(self) -> None:
        if threading.current_thread().name != "publisher":
            return
        self.stopped = True
        self.reached.set()
        started = time.monotonic()
        while not self.done.wait(0.05):
            if time.monotonic() - started > 30:
                return
            if self.postgres:
                if self.other_is_waiting_for_a_lock():
                    return
            elif time.monotonic() - started > 0.5:
                # SQLite: the other transaction cannot begin before this one ends.
                return

    def close(self) -> None:
        if self.monitor is not None:
            self.monitor.dispose()


def race(app, stall: Stall, coordinator_id: int, other) -> tuple[list, list]:
    """A publication of the certified registry stopped at the stall point while ``other``
    (a function run in its own application context, then committed) runs."""
    outcome, errors = [], []

    def publisher():
        try:
            outcome.append(publish_in_context(app, CERTIFIED, coordinator_id))
        except BaseException as error:
            errors.append(("publisher", error))
        finally:
            stall.reached.set()

    def other_transaction():
        try:
            assert stall.reached.wait(timeout=60)
            with app.app_context():
                try:
                    other()
                    db.session.commit()
                finally:
                    db.session.remove()
        except BaseException as error:
            errors.append(("other", error))
        finally:
            stall.done.set()

    run_threads(
        [
            threading.Thread(target=publisher, name="publisher"),
            threading.Thread(target=other_transaction, name="other"),
        ]
    )
    return outcome, errors


def settle(app, coordinator_id) -> None:
    """Publish whatever is still pending, then check the registry is fully settled."""
    publish_in_context(app, CERTIFIED, coordinator_id)
    with app.app_context():
        assert_consistent(CERTIFIED)
        leftovers = db.session.execute(
            select(RegistryEntry.id, RegistryEntry.status).where(
                RegistryEntry.status.in_((E.PENDING_INCLUSION, E.PENDING_REMOVAL))
            )
        ).all()
        assert leftovers == []
        db.session.remove()


#: (where the publication is stopped, entries already pending beside the new one). Run in
#: this order on one database, each scenario starting from a settled registry.
ISSUE_SCENARIOS = [
    ("before_changes", 2),
    ("before_rows", 2),
    # Nothing else to publish: the publication takes the new entry or is refused; it never
    # writes a snapshot identical to the previous one.
    ("before_changes", 0),
]


def test_an_entry_issued_during_a_publication_is_never_lost_or_half_included(
    scratch_app, monkeypatch
):
    coordinator_id = seed(scratch_app)
    for point, others in ISSUE_SCENARIOS:
        seed(scratch_app, certified=others)
        with scratch_app.app_context():
            before = latest_snapshot(CERTIFIED)
            before = (before.number, before.entry_count) if before else (0, 0)
            review, _ = factories.scored_review(
                factories.with_total(16), factories.with_total(15), title=f"Решение: {point}"
            )
            assert review.state == ReviewState.AWAITING_DECISION
            db.session.commit()
            review_id, program_id = review.id, review.program_id
            db.session.remove()

        def issue(review_id=review_id):
            review = db.session.get(Review, review_id)
            decide_review(review, db.session.get(User, coordinator_id), review.computed_decision)

        stall = Stall(scratch_app)
        try:
            with monkeypatch.context() as patch:
                stall.install(patch, point)
                outcome, errors = race(scratch_app, stall, coordinator_id, issue)
        finally:
            stall.close()

        scenario = (point, others)
        assert not errors, (scenario, errors)
        with scratch_app.app_context():
            (entry,) = db.session.execute(
                select(RegistryEntry).where(RegistryEntry.program_id == program_id)
            ).scalars()
            assert db.session.get(Conclusion, entry.conclusion_id).review_id == review_id
            # In the snapshot with its number, or still pending: nothing in between.
            assert entry.status in (E.INCLUDED, E.PENDING_INCLUSION), scenario
            assert_consistent(CERTIFIED)
            included = entry.status == E.INCLUDED
            if others == 0 and not included:
                assert outcome == [("refused", None)], scenario
            else:
                assert stall.stopped, scenario
                assert outcome == [("published", before[0] + 1)], scenario
                assert latest_snapshot(CERTIFIED).entry_count == before[1] + others + included
            db.session.remove()
        settle(scratch_app, coordinator_id)


@pytest.mark.parametrize("published", [True, False], ids=["included", "pending"])
def test_a_revocation_during_a_publication_leaves_a_consistent_registry(
    scratch_app, monkeypatch, published
):
    with scratch_app.app_context():
        coordinator = factories.CoordinatorFactory()
        factories.admitted_program(coordinator=coordinator)
        program, conclusion, _ = factories.admitted_program(coordinator=coordinator)
        if published:
            publish_registry(CERTIFIED, coordinator)
            factories.admitted_program(coordinator=coordinator)  # something new to publish
        db.session.commit()
        coordinator_id, conclusion_id, program_id = coordinator.id, conclusion.id, program.id
        db.session.remove()

    def revoke():
        revoke_conclusion(
            db.session.get(Conclusion, conclusion_id),
            db.session.get(User, coordinator_id),
            "Заключение отозвано во время публикации.",
        )

    stall = Stall(scratch_app)
    try:
        with monkeypatch.context() as patch:
            stall.install(patch, "before_rows")
            outcome, errors = race(scratch_app, stall, coordinator_id, revoke)
    finally:
        stall.close()

    assert not errors, errors
    assert stall.stopped
    assert outcome and outcome[0][0] == "published"
    with scratch_app.app_context():
        (entry,) = db.session.execute(
            select(RegistryEntry).where(RegistryEntry.program_id == program_id)
        ).scalars()
        assert entry.status in (E.PENDING_REMOVAL, E.REMOVED)
        assert_consistent(CERTIFIED)
        db.session.remove()
    settle(scratch_app, coordinator_id)
