"""The first save of a sheet made twice at the same moment (the sheet open in two tabs), in
separate connections and transactions (SQLite and PostgreSQL): the first one is stored, the
second is refused as stale — never a failed request (found by ``bench/load.py``'s probe of
two tabs: on PostgreSQL the second INSERT broke the one-sheet-per-assignment constraint and
the autosave answered 500).

Kept apart from the other tests: this module must not use the per-test transaction
(``session`` fixture), which would bind every thread to one connection.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import select

from review_portal.assignment.models import Assignment
from review_portal.extensions import db
from review_portal.scoring.models import ScoreSheet
from review_portal.scoring.services import SheetInput, StaleSheet, save_sheet
from tests import factories


def test_first_save_twice_at_the_same_moment_stores_one_and_refuses_the_other(scratch_app):
    with scratch_app.app_context():
        _review, assignments = factories.scored_review(
            factories.with_total(16), factories.with_total(15), submit=False
        )
        db.session.commit()
        assignment_id = assignments[0].id
        db.session.remove()
    first_flushed = threading.Event()
    release_first = threading.Event()
    outcomes: dict[str, object] = {}

    def save(name: str, value: int) -> None:
        try:
            with scratch_app.app_context():
                if name == "second":
                    first_flushed.wait(timeout=30)
                assignment = db.session.get(Assignment, assignment_id)
                save_sheet(
                    assignment, assignment.expert, SheetInput(revision=0, scores={"A1": value})
                )
                if name == "first":
                    # The sheet is written but not committed while the second save starts.
                    first_flushed.set()
                    release_first.wait(timeout=30)
                db.session.commit()
                outcomes[name] = "saved"
                db.session.remove()
        except BaseException as error:
            outcomes[name] = error
            first_flushed.set()

    threads = [
        threading.Thread(target=save, args=("first", 2)),
        threading.Thread(target=save, args=("second", 1)),
    ]
    for thread in threads:
        thread.start()
    # Long enough for the second save to reach its INSERT (PostgreSQL) or its BEGIN
    # IMMEDIATE (SQLite) and wait there for the first transaction.
    first_flushed.wait(timeout=30)
    time.sleep(0.5)
    release_first.set()
    for thread in threads:
        thread.join(timeout=60)
    assert outcomes["first"] == "saved", outcomes
    assert isinstance(outcomes["second"], StaleSheet), outcomes
    with scratch_app.app_context():
        sheets = (
            db.session.execute(select(ScoreSheet).where(ScoreSheet.assignment_id == assignment_id))
            .scalars()
            .all()
        )
        assert len(sheets) == 1
        assert sheets[0].revision == 1
        assert {s.criterion_id: s.value for s in sheets[0].scores}["A1"] == 2
        db.session.remove()


def test_two_sheets_of_a_review_submitted_at_the_same_moment_both_count(scratch_app):
    """Each submission recomputes the review's agreement units from the sheets it sees: the
    second must see the first one's sheet, or the review would be left without units."""
    from review_portal.scoring.models import AgreementUnit
    from review_portal.scoring.services import submit_sheet

    with scratch_app.app_context():
        review, assignments = factories.scored_review(
            factories.with_total(20), factories.with_total(20), submit=False
        )
        for assignment in assignments:
            save_sheet(
                assignment,
                assignment.expert,
                SheetInput(
                    revision=0,
                    scores=factories.with_total(20),
                    recommendations="Рекомендации эксперта по программе.",
                    confirmed=True,
                ),
            )
        db.session.commit()
        review_id, ids = review.id, [a.id for a in assignments]
        db.session.remove()
    first_flushed = threading.Event()
    release_first = threading.Event()
    outcomes: dict[str, object] = {}

    def submit(name: str, assignment_id: int) -> None:
        try:
            with scratch_app.app_context():
                if name == "second":
                    first_flushed.wait(timeout=30)
                assignment = db.session.get(Assignment, assignment_id)
                submit_sheet(assignment, assignment.expert)
                if name == "first":
                    # Submitted and its units written, not committed, while the second starts.
                    first_flushed.set()
                    release_first.wait(timeout=30)
                db.session.commit()
                outcomes[name] = "submitted"
                db.session.remove()
        except BaseException as error:
            outcomes[name] = error
            first_flushed.set()

    threads = [
        threading.Thread(target=submit, args=("first", ids[0])),
        threading.Thread(target=submit, args=("second", ids[1])),
    ]
    for thread in threads:
        thread.start()
    first_flushed.wait(timeout=30)
    time.sleep(0.5)
    release_first.set()
    for thread in threads:
        thread.join(timeout=60)
    assert outcomes == {"first": "submitted", "second": "submitted"}
    with scratch_app.app_context():
        units = dict(
            db.session.execute(
                select(AgreementUnit.measure, AgreementUnit.m).where(
                    AgreementUnit.review_id == review_id
                )
            ).all()
        )
        assert len(units) == 11 and set(units.values()) == {2}
        percents = db.session.execute(
            select(ScoreSheet.total_percent).where(ScoreSheet.assignment_id.in_(ids))
        ).scalars()
        assert sorted(percents) == [100.0, 100.0]
        db.session.remove()
