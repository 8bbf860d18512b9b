"""The sums of each review's submitted sheets that the agreement figures read
(:class:`~review_portal.scoring.models.AgreementUnit`) and each submitted sheet's total as
a percentage of its rubric's maximum (``ScoreSheet.total_percent``).

They are kept in two ways that give the same rows:

- :func:`refresh_review`, called by every service that changes a submitted sheet
  (submission, reopening, discussion revision) in the same transaction, recomputes one
  review's rows from its sheets with :func:`~review_portal.scoring.compute.sheet_total`;
- :func:`rebuild` recomputes all of them from the scores in a few set-based statements
  (the migration that introduced them, ``flask rebuild-agreement``, the benchmarks that
  seed rows directly). The tests compare the two after a simulated season.

So the analytics sum about ten rows per review instead of reading every score (2 M rows at
national scale).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.orm import selectinload

from review_portal.assignment.models import Assignment
from review_portal.enums import SheetStatus
from review_portal.extensions import db
from review_portal.programs.models import ProgramVersion
from review_portal.reviews.models import Review
from review_portal.reviews.queries import rubric_of
from review_portal.rubrics.registry import rubric_files
from review_portal.scoring.compute import SheetTotal, rubric_view, sheet_total
from review_portal.scoring.models import AgreementUnit, Score, ScoreSheet

#: The measure of the sheets' total (criteria are measures named by their id).
TOTAL = ""


def total_percent(total: SheetTotal) -> float | None:
    """A sheet's weighted total as a percentage of the maximum, unrounded."""
    if not total.max_total:
        return None
    return float(total.total * 100 / total.max_total)


def refresh_review(review: Review) -> None:
    """Recompute ``review``'s units and its sheets' ``total_percent`` from its sheets as
    they are now: only submitted sheets count, and a measure gets a unit once two of them
    have a value.

    Call it with the review's row lock held (``reviews.services.lock_review``, which
    submitting, reopening and revising take before they change a sheet): the sheets are
    then read afresh, so of two experts submitting at the same moment the second, having
    waited for the first to commit, sees both sheets. Without the lock each would see only
    its own, and the review would be left without units."""
    db.session.flush()
    sheets = db.session.scalars(
        select(ScoreSheet)
        .join(Assignment, ScoreSheet.assignment_id == Assignment.id)
        .where(Assignment.review_id == review.id)
        .options(selectinload(ScoreSheet.scores))
        .execution_options(populate_existing=True)
    ).all()
    values: dict[str, list[float]] = defaultdict(list)
    view = rubric_view(rubric_of(review)) if sheets else None
    for sheet in sheets:
        if sheet.status != SheetStatus.SUBMITTED:
            sheet.total_percent = None
            continue
        scores = {score.criterion_id: score.value for score in sheet.scores}
        # No score of the rubric at all: no total (as ``rebuild``'s sum of nothing).
        scored = any(scores.get(c.id) is not None for c in view.criteria)
        sheet.total_percent = total_percent(sheet_total(view, scores)) if scored else None
        if sheet.total_percent is not None:
            values[TOTAL].append(sheet.total_percent)
        for criterion_id, value in scores.items():
            if value is not None:
                values[criterion_id].append(float(value))
    db.session.execute(delete(AgreementUnit).where(AgreementUnit.review_id == review.id))
    version = db.session.get(ProgramVersion, review.version_id)
    rows = [
        {
            "review_id": review.id,
            "measure": measure,
            "rubric_id": review.rubric_id,
            "submitted_at": version.created_at,
            "municipality_id": version.municipality_id,
            "m": len(found),
            "s": sum(found),
            "q": sum(v * v for v in found),
        }
        for measure, found in values.items()
        if len(found) >= 2
    ]
    if rows:
        db.session.execute(insert(AgreementUnit), rows)
    db.session.flush()


# --- the bulk rebuild ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RubricWeights:
    """Per (rubric id, version, criterion): the weight; per rubric: the maximum total of the
    criteria that apply to every program — both as :func:`sheet_total` computes them — and
    per conditional criterion (``applies_if``) its maximum, counted in a sheet's maximum only
    when the sheet has a row for it (a saved sheet has a row, scored or not, for exactly the
    criteria that apply to its program: an appeal panel leaves the uncontested ones without
    a score); and the criteria's titles."""

    weights: dict[tuple[str, int, str], Decimal]
    maxima: dict[tuple[str, int], Decimal]
    titles: dict[tuple[str, str], str]
    conditional: dict[tuple[str, int, str], Decimal] = field(default_factory=dict)

    @classmethod
    def load(cls) -> RubricWeights:
        weights, maxima, titles, conditional = {}, {}, {}, {}
        for (rubric_id, version), rubric in rubric_files().items():
            view = rubric_view(rubric)
            ones = sheet_total(view, {c.id: 1 for c in view.criteria})
            maxima[(rubric_id, version)] = ones.max_total
            for criterion in view.criteria:
                weights[(rubric_id, version, criterion.id)] = ones.weighted[criterion.id]
                titles[(rubric_id, criterion.id)] = criterion.title
                if criterion.applies_if:
                    top = ones.weighted[criterion.id] * view.scale_max
                    conditional[(rubric_id, version, criterion.id)] = top
                    maxima[(rubric_id, version)] -= top
        return cls(weights, maxima, titles, conditional)

    def percent(self):
        """The expression of a sheet's total as a percentage of its maximum, in a query
        over every ``Score`` row of the sheet, unscored ones too (grouped by sheet, with
        ``Review`` joined)."""

        def per_criterion(values: dict[tuple[str, int, str], Decimal]):
            return case(
                *(
                    (
                        (Review.rubric_id == r)
                        & (Review.rubric_version == v)
                        & (Score.criterion_id == c),
                        float(w),
                    )
                    for (r, v, c), w in values.items()
                ),
                else_=None,
            )

        weight = per_criterion(self.weights)
        maximum = case(
            *(
                ((Review.rubric_id == r) & (Review.rubric_version == v), float(m))
                for (r, v), m in self.maxima.items()
            ),
            else_=None,
        )
        if self.conditional:
            maximum = maximum + func.coalesce(func.sum(per_criterion(self.conditional)), 0.0)
        return 100.0 * func.sum(weight * Score.value) / maximum


def _units(measure, value, *group, from_scores: bool):
    """``(review, measure, rubric, submitted at, municipality, m, s, q)`` of the values
    ``value`` of submitted sheets per review (and ``group``): from the scores, or from the
    sheets themselves."""
    stmt = select(
        Assignment.review_id,
        measure,
        Review.rubric_id,
        ProgramVersion.created_at,
        ProgramVersion.municipality_id,
        func.count(value),
        func.sum(value),
        func.sum(value * value),
    )
    if from_scores:
        stmt = stmt.select_from(Score).join(ScoreSheet, Score.sheet_id == ScoreSheet.id)
    else:
        stmt = stmt.select_from(ScoreSheet)
    return (
        stmt.join(Assignment, ScoreSheet.assignment_id == Assignment.id)
        .join(Review, Assignment.review_id == Review.id)
        .join(ProgramVersion, Review.version_id == ProgramVersion.id)
        .where(ScoreSheet.status == SheetStatus.SUBMITTED, value.is_not(None))
        .group_by(
            Assignment.review_id,
            *group,
            Review.rubric_id,
            ProgramVersion.created_at,
            ProgramVersion.municipality_id,
        )
        .having(func.count(value) >= 2)
    )


def rebuild(connection: sa.Connection) -> dict[str, int]:
    """Recompute every submitted sheet's ``total_percent`` and every unit from the scores
    (the same rows :func:`refresh_review` keeps), on ``connection``; returns the counts."""
    weights = RubricWeights.load()
    columns = [
        AgreementUnit.review_id,
        AgreementUnit.measure,
        AgreementUnit.rubric_id,
        AgreementUnit.submitted_at,
        AgreementUnit.municipality_id,
        AgreementUnit.m,
        AgreementUnit.s,
        AgreementUnit.q,
    ]
    # Only the rows that change are written (and locked until the caller commits).
    connection.execute(
        update(ScoreSheet)
        .where(ScoreSheet.total_percent.is_not(None), ScoreSheet.status != SheetStatus.SUBMITTED)
        .values(total_percent=None)
    )
    percents = (
        select(Score.sheet_id.label("sheet_id"), weights.percent().label("pct"))
        .join(ScoreSheet, Score.sheet_id == ScoreSheet.id)
        .join(Assignment, ScoreSheet.assignment_id == Assignment.id)
        .join(Review, Assignment.review_id == Review.id)
        # Unscored rows too: they add nothing to the total (a sum skips NULL) but a
        # conditional criterion's row puts it in the maximum.
        .where(ScoreSheet.status == SheetStatus.SUBMITTED)
        .group_by(Score.sheet_id, Review.rubric_id, Review.rubric_version)
        .subquery()
    )
    connection.execute(
        update(ScoreSheet)
        .where(ScoreSheet.id == percents.c.sheet_id)
        .where(ScoreSheet.total_percent.is_distinct_from(percents.c.pct))
        .values(total_percent=percents.c.pct)
    )
    # A submitted sheet without any score of its rubric has no total, as in refresh_review.
    connection.execute(
        update(ScoreSheet)
        .where(ScoreSheet.status == SheetStatus.SUBMITTED, ScoreSheet.total_percent.is_not(None))
        .where(
            ~select(Score.id)
            .where(Score.sheet_id == ScoreSheet.id, Score.value.is_not(None))
            .exists()
        )
        .values(total_percent=None)
    )
    sheets = connection.execute(
        select(func.count()).where(ScoreSheet.total_percent.is_not(None))
    ).scalar_one()
    connection.execute(delete(AgreementUnit))
    connection.execute(
        insert(AgreementUnit).from_select(
            columns,
            _units(Score.criterion_id, Score.value, Score.criterion_id, from_scores=True),
        )
    )
    connection.execute(
        insert(AgreementUnit).from_select(
            columns,
            _units(sa.literal(TOTAL), ScoreSheet.total_percent, from_scores=False),
        )
    )
    # (SQLite reports no row count for INSERT … SELECT.)
    is_total = AgreementUnit.measure == TOTAL
    criteria, totals = connection.execute(
        select(
            func.count(AgreementUnit.review_id) - func.count(case((is_total, 1))),
            func.count(case((is_total, 1))),
        )
    ).one()
    return {"sheets": sheets, "criterion_units": criteria, "total_units": totals}
