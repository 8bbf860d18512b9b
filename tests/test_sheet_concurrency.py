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


def at_the_same_moment(app, first, second) -> dict[str, object]:
    """Run ``first`` and ``second`` (no arguments), each in its own application context and
    transaction, the second starting while the first has flushed its work but not
    committed; then commit each. Returns what became of each: ``"committed"`` or the
    exception it raised."""
    first_flushed = threading.Event()
    release_first = threading.Event()
    outcomes: dict[str, object] = {}

    def run(name: str, work) -> None:
        try:
            with app.app_context():
                if name == "second":
                    first_flushed.wait(timeout=30)
                work()
                if name == "first":
                    first_flushed.set()
                    release_first.wait(timeout=30)
                db.session.commit()
                outcomes[name] = "committed"
                db.session.remove()
        except BaseException as error:
            outcomes[name] = error
            first_flushed.set()

    threads = [
        threading.Thread(target=run, args=("first", first)),
        threading.Thread(target=run, args=("second", second)),
    ]
    for thread in threads:
        thread.start()
    # Long enough for the second to reach the statement where it waits for the first
    # transaction (an INSERT or a row lock on PostgreSQL, BEGIN IMMEDIATE on SQLite).
    first_flushed.wait(timeout=30)
    time.sleep(0.5)
    release_first.set()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_first_save_twice_at_the_same_moment_stores_one_and_refuses_the_other(scratch_app):
    with scratch_app.app_context():
        _review, assignments = factories.scored_review(
            factories.with_total(16), factories.with_total(15), submit=False
        )
        db.session.commit()
        assignment_id = assignments[0].id
        db.session.remove()

    def save(value: int):
        assignment = db.session.get(Assignment, assignment_id)
        save_sheet(assignment, assignment.expert, SheetInput(revision=0, scores={"A1": value}))

    outcomes = at_the_same_moment(scratch_app, lambda: save(2), lambda: save(1))
    assert outcomes["first"] == "committed", outcomes
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
            factories.save_scores(assignment, factories.with_total(20))
        db.session.commit()
        review_id, ids = review.id, [a.id for a in assignments]
        db.session.remove()

    def submit(assignment_id: int):
        assignment = db.session.get(Assignment, assignment_id)
        submit_sheet(assignment, assignment.expert)

    outcomes = at_the_same_moment(scratch_app, lambda: submit(ids[0]), lambda: submit(ids[1]))
    assert outcomes == {"first": "committed", "second": "committed"}
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
