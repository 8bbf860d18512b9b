"""Twenty coordinators confirming twenty decisions at the same moment, each in its own
connection and transaction on committed data: twenty distinct, consecutive conclusion
numbers. On PostgreSQL the transactions really overlap and wait for the counter row's lock;
on SQLite they are serialised by ``BEGIN IMMEDIATE`` — the numbers must hold on both.

Kept apart from the other tests: this module must not use the per-test transaction
(``session`` fixture), which would bind every thread to one connection.
"""

from __future__ import annotations

import threading

from sqlalchemy import select

from review_portal.accounts.models import User
from review_portal.conclusions.models import Conclusion, ConclusionCounter
from review_portal.conclusions.services import local_now
from review_portal.enums import ConclusionStatus
from review_portal.extensions import db
from review_portal.reviews.models import Review
from review_portal.reviews.services import decide_review
from review_portal.workflow import ReviewState
from tests import factories

COORDINATORS = 20


def test_simultaneous_confirmations_get_distinct_consecutive_numbers(scratch_app):
    with scratch_app.app_context():
        pairs = []
        for i in range(COORDINATORS):
            coordinator = factories.CoordinatorFactory(full_name=f"Координатор {i}")
            review, _ = factories.scored_review(
                factories.with_total(16), factories.with_total(15), title=f"Одновременная {i}"
            )
            assert review.state == ReviewState.AWAITING_DECISION
            pairs.append((review.id, coordinator.id))
        db.session.commit()
        db.session.remove()
    barrier = threading.Barrier(COORDINATORS)
    errors: list[BaseException] = []

    def confirm(review_id: int, coordinator_id: int) -> None:
        try:
            with scratch_app.app_context():
                barrier.wait(timeout=60)  # before any statement: SQLite locks at BEGIN
                review = db.session.get(Review, review_id)
                decide_review(
                    review, db.session.get(User, coordinator_id), review.computed_decision
                )
                db.session.commit()
                db.session.remove()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=confirm, args=pair) for pair in pairs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)

    with scratch_app.app_context():
        conclusions = db.session.execute(select(Conclusion).order_by(Conclusion.sequence)).scalars()
        rows = [(c.sequence, c.number, c.review_id, c.status) for c in conclusions]
        year = local_now().year
        assert [r[0] for r in rows] == list(range(1, COORDINATORS + 1))
        assert [r[1] for r in rows] == [f"00-{year}-{n:05d}" for n in range(1, COORDINATORS + 1)]
        # One conclusion per review, each by the coordinator who confirmed it.
        assert sorted(r[2] for r in rows) == sorted(review_id for review_id, _ in pairs)
        assert {r[3] for r in rows} == {ConclusionStatus.VALID}
        issuers = dict(
            db.session.execute(select(Conclusion.review_id, Conclusion.issued_by_id)).all()
        )
        assert issuers == dict(pairs)
        assert db.session.get(ConclusionCounter, year).last_value == COORDINATORS
        db.session.remove()
