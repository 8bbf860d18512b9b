"""Two automatic assignment runs started at the same moment, in separate connections and
transactions on committed data (SQLite and PostgreSQL), never put an expert twice on a
review nor exceed a capacity.

Kept apart from the other assignment tests: this module must not use the per-test
transaction (``session`` fixture), which would bind every thread to one connection.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from review_portal.assignment import services
from review_portal.assignment.models import Assignment
from review_portal.extensions import db
from tests.factories import CoordinatorFactory, MunicipalityFactory, expert, program_in_review


@pytest.mark.parametrize("runs", [2])
def test_two_runs_at_the_same_moment_never_double_assign(scratch_app, runs):
    """Committed data, separate connections and transactions, started together."""
    with scratch_app.app_context():
        coordinator = CoordinatorFactory()
        for i in range(6):
            program_in_review(coordinator, title=f"Параллельная {i}")
        for i in range(4):
            expert(municipality=MunicipalityFactory(), capacity=2, full_name=f"Э{i}")
        db.session.commit()
        coordinator_id = coordinator.id
    barrier = threading.Barrier(runs)
    errors: list[BaseException] = []

    def run():
        try:
            with scratch_app.app_context():
                barrier.wait(timeout=30)  # before any statement: SQLite locks at BEGIN
                actor = db.session.get(type(coordinator), coordinator_id)
                services.run_assignment(actor, apply=True)
                db.session.commit()
                db.session.remove()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    with scratch_app.app_context():
        rows = db.session.execute(select(Assignment.review_id, Assignment.expert_id)).all()
        assert len(rows) == len(set(rows)), "an expert twice on a review"
        per_expert = db.session.execute(
            select(Assignment.expert_id, func.count()).group_by(Assignment.expert_id)
        ).all()
        assert all(n <= 2 for _, n in per_expert), per_expert
        per_review = db.session.execute(
            select(Assignment.review_id, func.count()).group_by(Assignment.review_id)
        ).all()
        assert all(n <= 2 for _, n in per_review), per_review
        assert sum(n for _, n in per_expert) == 8  # the capacity, all used, once
        db.session.remove()
