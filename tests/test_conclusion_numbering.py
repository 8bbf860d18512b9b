"""Conclusion numbers stay gapless and unique when coordinators confirm at the same moment,
and a confirmation whose PDF fails to render consumes no number.

On PostgreSQL twenty confirmations really are in flight at once: the test application's
pool holds a connection for each of them, every thread opens its transaction and waits at
a barrier, and a monitor connection watches ``pg_stat_activity``: all twenty transactions
must be open at the same moment and most of them must be seen waiting for a row lock. The
render of one of them fails in the middle; the other nineteen get the numbers 1..19.

* Confirming (``decide_review``) audits the workflow step (which locks nothing shared: the
  audit chain is linked after the commit) and then takes the counter row: the
  confirmations queue on the counter row, taken by one transaction at a time.
* Issuing for decided reviews (``issue_conclusion``, as a bulk run does) takes the counter
  row first: the confirmations queue on ``conclusion_counters`` itself, and without its
  ``FOR UPDATE`` two of them read the same last value.

On SQLite the transactions are serialised by ``BEGIN IMMEDIATE``; how long twenty renders
wait for each other depends only on the machine's speed, so SQLite checks the same
outcome with the confirmations one after the other.

Kept apart from the other tests: this module must not use the per-test transaction
(``session`` fixture), which would bind every thread to one connection.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade
from sqlalchemy import select

from review_portal import create_app
from review_portal.accounts.models import User
from review_portal.conclusions import render
from review_portal.conclusions.models import Conclusion, ConclusionCounter
from review_portal.conclusions.services import ConclusionError, issue_conclusion, local_now
from review_portal.enums import ConclusionStatus
from review_portal.extensions import db
from review_portal.reviews.models import Review
from review_portal.reviews.services import ReviewError, decide_review
from review_portal.unit_of_work import unit_of_work
from review_portal.workflow import ReviewState
from tests import factories
from tests.conftest import TEST_DATABASE_URL, _aux_postgres_url, drop_postgres_database

COORDINATORS = 20
#: The confirmation whose render fails (its thread's name), one in the middle.
FAILING = f"confirm-{COORDINATORS // 2}"

needs_postgresql = pytest.mark.skipif(
    not TEST_DATABASE_URL, reason="needs PostgreSQL (TEST_DATABASE_URL)"
)


def _numbering_app(url: str, tmp_path):
    """An application on an empty database of its own, migrated, whose pool has a
    connection for every confirmation at once (and one to spare)."""
    app = create_app(
        "testing",
        SQLALCHEMY_DATABASE_URI=url,
        STORAGE_DIR=str(tmp_path / "storage"),
        SQLALCHEMY_ENGINE_OPTIONS={
            "pool_pre_ping": True,
            "pool_size": COORDINATORS + 1,
            "max_overflow": 5,
            "pool_timeout": 10,
        },
    )
    with app.app_context():
        upgrade()
    return app


@pytest.fixture
def postgres_app(tmp_path):
    url = _aux_postgres_url("numbering")
    app = _numbering_app(url, tmp_path)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    drop_postgres_database(url)


@pytest.fixture
def sqlite_app(tmp_path):
    app = _numbering_app(f"sqlite:///{tmp_path / 'numbering.sqlite'}", tmp_path)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def one_render_fails(monkeypatch):
    """The PDF of the confirmation run by the thread named :data:`FAILING` cannot be
    rendered; every other one is rendered for real."""
    real = render.render_pdf

    def render_pdf(content):
        if threading.current_thread().name == FAILING:
            raise render.RenderError("the renderer broke down (test)")
        return real(content)

    monkeypatch.setattr(render, "render_pdf", render_pdf)


def _awaiting_reviews(app, *, decided: bool = False) -> list[tuple[int, int]]:
    """``(review id, coordinator id)`` for :data:`COORDINATORS` reviews awaiting a decision
    (or decided without a conclusion yet, as a bulk run leaves them), committed."""
    with app.app_context():
        pairs = []
        for i in range(COORDINATORS):
            coordinator = factories.CoordinatorFactory(full_name=f"Координатор {i}")
            review, _ = factories.scored_review(
                factories.with_total(16), factories.with_total(15), title=f"Одновременная {i}"
            )
            assert review.state == ReviewState.AWAITING_DECISION
            if decided:
                decide_review(review, coordinator, review.computed_decision, issue=False)
            pairs.append((review.id, coordinator.id))
        db.session.commit()
        db.session.remove()
    return pairs


def _confirm(review: Review, coordinator: User) -> None:
    decide_review(review, coordinator, review.computed_decision)


def _issue(review: Review, coordinator: User) -> None:
    issue_conclusion(review, coordinator)


@dataclass
class Activity:
    """What a monitor connection saw in ``pg_stat_activity`` of the test's database."""

    #: Most sessions seen inside a transaction at one moment.
    in_transaction: int = 0
    #: Most sessions seen waiting for a heavyweight lock (a row lock) at one moment.
    waiting: int = 0
    #: Most sessions seen waiting for a lock while locking the numbering counter.
    waiting_on_counter: int = 0
    samples: int = 0
    errors: list[BaseException] = field(default_factory=list)


ACTIVITY = sa.text(
    """
    SELECT count(*) FILTER (WHERE xact_start IS NOT NULL),
           count(*) FILTER (WHERE wait_event_type = 'Lock'),
           count(*) FILTER (WHERE wait_event_type = 'Lock' AND query LIKE '%conclusion_counters%')
    FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid()
      AND backend_type = 'client backend'
    """
)


def _watch(url, stop: threading.Event, activity: Activity) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            while not stop.is_set():
                in_transaction, waiting, on_counter = connection.execute(ACTIVITY).one()
                activity.in_transaction = max(activity.in_transaction, in_transaction)
                activity.waiting = max(activity.waiting, waiting)
                activity.waiting_on_counter = max(activity.waiting_on_counter, on_counter)
                activity.samples += 1
                time.sleep(0.002)
    except BaseException as error:
        activity.errors.append(error)
    finally:
        engine.dispose()


def _run_at_once(app, pairs, step: Callable[[Review, User], None]):
    """Run ``step`` for every pair in a thread of its own, each in its own application
    context and unit of work, all transactions open before any of them takes a lock.
    Returns ``(refusals by thread name, unexpected errors, activity seen)``."""
    barrier = threading.Barrier(len(pairs))
    refused: dict[str, BaseException] = {}
    errors: list[BaseException] = []

    def confirm(review_id: int, coordinator_id: int) -> None:
        try:
            with app.app_context():
                try:
                    with unit_of_work():
                        # The transaction begins here, on a connection of its own...
                        review = db.session.get(Review, review_id)
                        coordinator = db.session.get(User, coordinator_id)
                        # ...and nobody locks anything before all of them are open.
                        barrier.wait(timeout=60)
                        step(review, coordinator)
                finally:
                    db.session.remove()
        except (ReviewError, ConclusionError) as error:
            refused[threading.current_thread().name] = error
        except BaseException as error:
            errors.append(error)

    with app.app_context():
        url = db.engine.url
    activity = Activity()
    stop = threading.Event()
    monitor = threading.Thread(target=_watch, args=(url, stop, activity), daemon=True)
    monitor.start()
    threads = [
        threading.Thread(target=confirm, args=pair, name=f"confirm-{i}")
        for i, pair in enumerate(pairs)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    stop.set()
    monitor.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert not activity.errors, activity.errors
    return refused, errors, activity


def _assert_gapless(app, pairs, failed_review_id: int) -> None:
    """Nineteen conclusions numbered 1..19 in the year, each of its own review by the
    coordinator who confirmed it; the failed review has none and still awaits a decision."""
    with app.app_context():
        conclusions = db.session.execute(select(Conclusion).order_by(Conclusion.sequence)).scalars()
        rows = [(c.sequence, c.number, c.review_id, c.status, c.issued_by_id) for c in conclusions]
        year = local_now().year
        issued = COORDINATORS - 1
        assert [r[0] for r in rows] == list(range(1, issued + 1))
        assert [r[1] for r in rows] == [f"00-{year}-{n:05d}" for n in range(1, issued + 1)]
        assert {r[3] for r in rows} == {ConclusionStatus.VALID}
        expected = dict(pairs)
        del expected[failed_review_id]
        assert {r[2]: r[4] for r in rows} == expected
        # The failed confirmation gave its number back: the counter is at the last issued.
        assert db.session.get(ConclusionCounter, year).last_value == issued
        failed = db.session.get(Review, failed_review_id)
        assert failed.conclusions == []
        db.session.remove()


@needs_postgresql
def test_twenty_confirmations_in_flight_get_gapless_numbers(postgres_app, one_render_fails):
    pairs = _awaiting_reviews(postgres_app)

    refused, errors, activity = _run_at_once(postgres_app, pairs, _confirm)

    assert not errors, errors
    assert list(refused) == [FAILING]
    assert "the renderer broke down" in str(refused[FAILING])
    # All twenty were in flight at once, and queued on a row lock rather than one by one.
    assert activity.in_transaction == COORDINATORS, activity
    assert activity.waiting >= COORDINATORS // 2, activity
    failed_review_id = pairs[int(FAILING.rsplit("-", 1)[1])][0]
    _assert_gapless(postgres_app, pairs, failed_review_id)
    with postgres_app.app_context():
        assert db.session.get(Review, failed_review_id).state == ReviewState.AWAITING_DECISION


@needs_postgresql
def test_twenty_issues_in_flight_queue_on_the_counter_row(postgres_app, one_render_fails):
    pairs = _awaiting_reviews(postgres_app, decided=True)

    refused, errors, activity = _run_at_once(postgres_app, pairs, _issue)

    assert not errors, errors
    assert list(refused) == [FAILING]
    assert activity.in_transaction == COORDINATORS, activity
    # The first lock these transactions take is the counter row's: they wait there.
    assert activity.waiting_on_counter >= COORDINATORS // 2, activity
    _assert_gapless(postgres_app, pairs, pairs[int(FAILING.rsplit("-", 1)[1])][0])


def test_confirmations_one_after_another_get_gapless_numbers(sqlite_app, one_render_fails):
    """SQLite: the same outcome, each confirmation in its own application context and unit
    of work, the failing render in the middle (no timing involved)."""
    pairs = _awaiting_reviews(sqlite_app)
    refused = []
    for i, (review_id, coordinator_id) in enumerate(pairs):
        thread = threading.Thread(
            target=_confirm_alone, args=(sqlite_app, review_id, coordinator_id, refused)
        )
        thread.name = f"confirm-{i}"
        thread.start()
        thread.join(timeout=120)
        assert not thread.is_alive()
    failed_review_id = pairs[int(FAILING.rsplit("-", 1)[1])][0]
    assert [review_id for review_id, _ in refused] == [failed_review_id]
    assert isinstance(refused[0][1], ReviewError), refused
    _assert_gapless(sqlite_app, pairs, failed_review_id)
    with sqlite_app.app_context():
        assert db.session.get(Review, failed_review_id).state == ReviewState.AWAITING_DECISION


def _confirm_alone(app, review_id: int, coordinator_id: int, refused: list) -> None:
    try:
        with app.app_context():
            try:
                with unit_of_work():
                    _confirm(
                        db.session.get(Review, review_id), db.session.get(User, coordinator_id)
                    )
            finally:
                db.session.remove()
    except BaseException as error:
        refused.append((review_id, error))
