"""The two last sheets of a review submitted at the same moment, in separate connections and
transactions on committed data (SQLite and PostgreSQL): the review is settled exactly once.

Kept apart from the other tests: this module must not use the per-test transaction
(``session`` fixture), which would bind every thread to one connection.
"""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from review_portal.assignment.models import Assignment
from review_portal.audit.models import AuditEvent
from review_portal.extensions import db
from review_portal.reviews.models import Review
from review_portal.scoring.services import submit_sheet
from review_portal.workflow import ReviewState
from tests import factories


def test_last_two_sheets_at_the_same_moment_settle_the_review_once(scratch_app):
    with scratch_app.app_context():
        review, assignments = factories.scored_review(
            factories.with_total(16), factories.with_total(15), submit=False
        )
        for assignment, total in zip(assignments, (16, 15), strict=True):
            factories.save_scores(assignment, factories.with_total(total))
        db.session.commit()
        review_id = review.id
        assignment_ids = [a.id for a in assignments]
        db.session.remove()
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def submit(assignment_id):
        try:
            with scratch_app.app_context():
                barrier.wait(timeout=30)
                assignment = db.session.get(Assignment, assignment_id)
                submit_sheet(assignment, assignment.expert)
                db.session.commit()
                db.session.remove()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=submit, args=(i,)) for i in assignment_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    with scratch_app.app_context():
        review = db.session.get(Review, review_id)
        assert review.state == ReviewState.AWAITING_DECISION
        assert review.final_result["total"] == "15.50"
        checks = db.session.execute(
            select(func.count(AuditEvent.id)).where(
                AuditEvent.action == "review.divergence_check",
                AuditEvent.object_id == str(review_id),
            )
        ).scalar_one()
        assert checks == 1
        db.session.remove()
