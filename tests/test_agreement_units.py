"""The per-review sums that the agreement figures read (``agreement_units``) and each
sheet's ``total_percent``: kept by the services on submission, reopening and discussion
revision, equal to the scoring computation, and equal to the bulk rebuild from the scores."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, update

from review_portal.assignment.models import Assignment
from review_portal.enums import AssignmentRole
from review_portal.extensions import db
from review_portal.reconciliation import services as reconciliation
from review_portal.reconciliation.services import ScoreChange
from review_portal.rubrics.registry import get_rubric
from review_portal.scoring.compute import sheet_total
from review_portal.scoring.models import AgreementUnit, Score, ScoreSheet
from review_portal.scoring.services import reopen_sheet
from review_portal.scoring.summary import TOTAL, rebuild, refresh_review
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


# --- weights, several rubrics, scopes and edge cases ----------------------------------------------

WEIGHTS = {"A1": 0.5, "A2": 1, "B1": 3, "B2": 2.5, "B3": 1, "B4": 1, "C1": 2, "D1": 1.5}


@pytest.fixture
def weighted_rubric(app, session, tmp_path, monkeypatch):
    """A rubric like the default one but with unequal weights, active for general
    developmental programs, next to the default one (in a rubric folder of this test)."""
    import shutil

    import yaml

    from review_portal.enums import ProgramType
    from review_portal.rubrics.registry import RUBRIC_DIR, choose_active_rubric

    folder = tmp_path / "rubrics"
    folder.mkdir()
    data = yaml.safe_load((RUBRIC_DIR / "dop-general.yaml").read_text(encoding="utf-8"))
    data["id"] = "dop-weighted"
    for section in data["sections"]:
        for criterion in section["criteria"]:
            criterion["weight"] = WEIGHTS.get(criterion["id"], 1)
    shutil.copy(RUBRIC_DIR / "dop-general.yaml", folder / "dop-general.yaml")
    (folder / "dop-weighted.yaml").write_text(
        yaml.safe_dump(data, allow_unicode=True), encoding="utf-8"
    )
    monkeypatch.setitem(app.config, "RUBRIC_DIR", str(folder))
    rubric = get_rubric("dop-weighted", 1)
    choose_active_rubric(ProgramType.GENERAL_DEVELOPMENTAL, rubric, CoordinatorFactory())
    return rubric


def test_weighted_totals_equal_the_scoring_computation_and_the_rebuild(session, weighted_rubric):
    review, assignments = factories.scored_review(
        points(2, 1, 2, 0, 1, 2, 2, 1, 2, 0), points(2, 2, 1, 1, 2, 0, 1, 2, 1, 2)
    )
    assert review.rubric_id == "dop-weighted"
    for assignment in assignments:
        scores = {s.criterion_id: s.value for s in assignment.sheet.scores}
        expected = sheet_total(weighted_rubric, scores)
        assert expected.max_total != 20  # the weights count
        assert assignment.sheet.total_percent == pytest.approx(
            float(expected.total * 100 / expected.max_total), rel=1e-12
        )
    kept = all_rows()
    rebuild(db.session.connection())
    db.session.expire_all()
    assert_same_rows(kept, all_rows())


def test_total_of_several_rubrics_in_one_block_adds_up(session, monkeypatch, weighted_rubric):
    from review_portal.analytics import services
    from review_portal.analytics.agreement import alpha_of_units
    from review_portal.assignment.services import local_today
    from review_portal.enums import ProgramType
    from review_portal.rubrics.registry import choose_active_rubric

    percents = []
    for first, second in ((16, 12), (9, 10)):
        _, assignments = factories.scored_review(with_total(first), with_total(second))
        percents.append([a.sheet.total_percent for a in assignments])
    choose_active_rubric(
        ProgramType.GENERAL_DEVELOPMENTAL, get_rubric("dop-general", 1), CoordinatorFactory()
    )
    for first, second in ((18, 17), (6, 11)):
        review, assignments = factories.scored_review(with_total(first), with_total(second))
        assert review.rubric_id == "dop-general"
        percents.append([a.sheet.total_percent for a in assignments])
    # Every review in one block: each rubric's total rows of that block are added up.
    monkeypatch.setattr(services, "BLOCKS", 1)
    season = services.Scope.for_season(local_today().year)
    totals, criteria = services.measure_blocks(season)
    assert totals.shape == (1, 6)
    assert {rubric for rubric, _ in criteria} == {"dop-general", "dop-weighted"}
    table = services.agreement_table(season, services.RubricWeights.load())
    assert table.rows[0][3:5] == (4, 8)
    assert table.rows[0][5] == round(alpha_of_units(percents), 3)


def test_a_municipal_scope_counts_its_municipality_only(session):
    from review_portal.analytics import services
    from review_portal.assignment.services import local_today
    from tests.factories import MunicipalityFactory, OrganizationFactory

    north = MunicipalityFactory(name="Северный район")
    for first, second in ((16, 12), (9, 10), (20, 14)):
        factories.scored_review(
            with_total(first),
            with_total(second),
            organization=OrganizationFactory(municipality=north),
        )
    factories.scored_review(with_total(2), with_total(19))
    year = local_today().year
    whole = services.agreement_table(services.Scope.for_season(year), services.RubricWeights.load())
    mine = services.agreement_table(
        services.Scope.for_season(year, north.id), services.RubricWeights.load()
    )
    assert whole.rows[0][3] == 4
    assert mine.rows[0][3] == 3
    from review_portal.analytics.agreement import alpha_of_units

    assert mine.rows[0][5] == round(alpha_of_units([(80, 60), (45, 50), (100, 70)]), 3)


def test_a_sheet_without_any_score_has_no_total_either_way(session):
    review, (first, second) = factories.scored_review(with_total(14), with_total(10))
    db.session.execute(update(Score).where(Score.sheet_id == first.sheet.id).values(value=None))
    refresh_review(review)
    assert first.sheet.total_percent is None
    assert TOTAL not in units_of(review)
    kept = all_rows()
    rebuild(db.session.connection())
    db.session.expire_all()
    assert_same_rows(kept, all_rows())


def test_a_submission_after_the_assignment_was_withdrawn_is_refused(session):
    from review_portal.enums import AssignmentStatus, SheetStatus
    from review_portal.scoring.services import SheetLocked, submit_sheet

    review, (first, second) = factories.scored_review(with_total(20), with_total(20), submit=False)
    factories.submit_scores(first, with_total(20))
    factories.save_scores(second, with_total(20))
    # Withdrawn by someone else (the loaded assignment still says accepted).
    db.session.execute(
        update(Assignment)
        .where(Assignment.id == second.id)
        .values(status=AssignmentStatus.WITHDRAWN)
        .execution_options(synchronize_session=False)
    )
    assert second.status == AssignmentStatus.ACCEPTED
    with pytest.raises(SheetLocked):
        submit_sheet(second, second.expert)
    assert second.sheet.status == SheetStatus.DRAFT
    assert units_of(review) == {}
