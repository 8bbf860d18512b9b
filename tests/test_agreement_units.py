"""The per-review sums that the agreement figures read (``agreement_units``) and each
sheet's ``total_percent``: kept by the services on submission, reopening and discussion
revision, equal to the scoring computation, and equal to the bulk rebuild from the scores."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, update

from review_portal.enums import AssignmentRole
from review_portal.extensions import db
from review_portal.reconciliation import services as reconciliation
from review_portal.reconciliation.services import ScoreChange
from review_portal.rubrics.registry import get_rubric
from review_portal.scoring.compute import sheet_total
from review_portal.scoring.models import AgreementUnit, ScoreSheet
from review_portal.scoring.services import reopen_sheet
from review_portal.scoring.summary import TOTAL, rebuild
from tests import factories
from tests.factories import CoordinatorFactory, points, with_total


def units_of(review) -> dict[str, tuple[int, float, float]]:
    rows = db.session.execute(
        select(AgreementUnit.measure, AgreementUnit.m, AgreementUnit.s, AgreementUnit.q).where(
            AgreementUnit.review_id == review.id
        )
    )
    return {measure: (m, s, q) for measure, m, s, q in rows}


def expected_units(*sheets: dict[str, int]) -> dict[str, tuple[int, float, float]]:
    """The units computed by hand from the sheets' scores (default rubric: weight 1, 0–2,
    so the total in percent is 5 × the points)."""
    units = {}
    percents = [5.0 * sum(scores.values()) for scores in sheets]
    units[TOTAL] = (len(sheets), sum(percents), sum(p * p for p in percents))
    for criterion in sheets[0]:
        values = [scores[criterion] for scores in sheets]
        units[criterion] = (len(values), float(sum(values)), float(sum(v * v for v in values)))
    return units


def all_rows() -> tuple[list, list]:
    units = db.session.execute(
        select(
            AgreementUnit.review_id,
            AgreementUnit.measure,
            AgreementUnit.rubric_id,
            AgreementUnit.submitted_at,
            AgreementUnit.municipality_id,
            AgreementUnit.m,
            AgreementUnit.s,
            AgreementUnit.q,
        ).order_by(AgreementUnit.review_id, AgreementUnit.measure)
    ).all()
    sheets = db.session.execute(
        select(ScoreSheet.id, ScoreSheet.total_percent).order_by(ScoreSheet.id)
    ).all()
    return [tuple(r) for r in units], [tuple(r) for r in sheets]


def assert_same_rows(kept, rebuilt):
    """Equal rows, the sums up to floating-point rounding (Decimal here, floats in SQL)."""
    assert len(kept[0]) == len(rebuilt[0])
    for a, b in zip(kept[0], rebuilt[0], strict=True):
        assert a[:6] == b[:6]
        assert a[6:] == pytest.approx(b[6:], rel=1e-12)
    assert [r[0] for r in kept[1]] == [r[0] for r in rebuilt[1]]
    for (_, a), (_, b) in zip(kept[1], rebuilt[1], strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            assert a == pytest.approx(b, rel=1e-12)


def test_units_appear_with_the_second_submitted_sheet(session):
    first_scores, second_scores = with_total(18), with_total(11)
    review, (first, second) = factories.scored_review(first_scores, second_scores, submit=False)
    factories.submit_scores(first, first_scores)
    assert units_of(review) == {}
    assert first.sheet.total_percent == 90.0
    factories.submit_scores(second, second_scores)
    assert units_of(review) == expected_units(first_scores, second_scores)
    assert second.sheet.total_percent == 55.0
    row = db.session.execute(
        select(AgreementUnit).where(AgreementUnit.review_id == review.id).limit(1)
    ).scalar_one()
    assert (row.rubric_id, row.municipality_id) == (
        review.rubric_id,
        review.version.municipality_id,
    )
    assert row.submitted_at == review.version.created_at


def test_total_percent_equals_the_scoring_computation_with_weights(session):
    review, assignments = factories.scored_review(points(2, 1, 2, 0, 1, 2, 2, 1), points(1))
    rubric = get_rubric(review.rubric_id, review.rubric_version)
    for assignment in assignments:
        scores = {s.criterion_id: s.value for s in assignment.sheet.scores}
        expected = sheet_total(rubric, scores)
        assert assignment.sheet.total_percent == pytest.approx(
            float(expected.total * 100 / expected.max_total), rel=1e-12
        )


def test_reopening_removes_the_sheet_and_resubmitting_restores_it(session):
    scores = [with_total(18), with_total(10), with_total(14)]
    review, assignments = factories.scored_review(*scores[:2])
    third = factories.add_assignment(review, factories.expert(), 3, role=AssignmentRole.THIRD)
    factories.submit_scores(third, scores[2])
    assert units_of(review) == expected_units(*scores)
    reopen_sheet(assignments[0].sheet, CoordinatorFactory(), "Проверить критерий B2.")
    assert assignments[0].sheet.total_percent is None
    assert units_of(review) == expected_units(*scores[1:])
    reopen_sheet(assignments[1].sheet, CoordinatorFactory(), "Проверить критерий B3.")
    assert units_of(review) == {}
    factories.submit_scores(assignments[0], with_total(12))
    assert units_of(review) == expected_units(with_total(12), scores[2])


def test_a_discussion_revision_changes_the_units(session, discussion_rubric):
    first_scores = points(2, 2, 2, 2, 2, 2, 2, 2, 0, 2)
    second_scores = points(2)
    review, (first, _) = factories.scored_review(first_scores, second_scores)
    assert units_of(review)["D2"] == (2, 2.0, 4.0)
    reconciliation.revise_scores(
        first,
        first.expert,
        {"D2": ScoreChange(value=1, comment="Исправлено.", reason="Согласен с коллегой.")},
    )
    revised = dict(first_scores, D2=1)
    assert units_of(review) == expected_units(revised, second_scores)
    assert first.sheet.total_percent == 95.0


def test_rebuild_gives_the_rows_the_services_keep(session):
    factories.scored_review(with_total(16), with_total(9))
    review, assignments = factories.scored_review(with_total(19), with_total(11), with_total(15))
    reopen_sheet(assignments[1].sheet, CoordinatorFactory(), "Уточнить оценки.")
    factories.scored_review(with_total(7), with_total(8), submit=False)
    draft_review, (submitted, _) = factories.scored_review(
        with_total(3), with_total(4), submit=False
    )
    factories.submit_scores(submitted, with_total(3))
    kept = all_rows()
    assert len({r[0] for r in kept[0]}) == 2
    counts = rebuild(db.session.connection())
    db.session.expire_all()
    assert counts == {"sheets": 5, "criterion_units": 20, "total_units": 2}
    assert_same_rows(kept, all_rows())


def test_rebuild_command_restores_rows_written_around_the_services(app, session):
    factories.scored_review(with_total(14), with_total(10))
    kept = all_rows()
    db.session.execute(delete(AgreementUnit))
    db.session.execute(update(ScoreSheet).values(total_percent=None))
    result = app.test_cli_runner().invoke(args=["rebuild-agreement"])
    assert result.exit_code == 0, result.output
    assert "Submitted sheets: 2; units: 1 totals, 10 criteria." in result.output
    db.session.expire_all()
    assert_same_rows(kept, all_rows())
