"""Reading the review case: its experts' sheets numbered as the experts go by, the
experts it wants, the reviews waiting in a state and the rubric it is scored with.

Experts are numbered "Эксперт 1, 2, 3" by their seat on the review (:func:`review_sheets`,
:func:`expert_number`); names never leave the staff's pages. Nothing here writes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction

import sqlalchemy as sa
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from review_portal.assignment.models import Assignment
from review_portal.enums import AssignmentRole, AssignmentStatus, SheetStatus
from review_portal.extensions import db
from review_portal.reviews.models import Review
from review_portal.scoring.compute import applicable, program_facts
from review_portal.scoring.models import ScoreRevision, ScoreSheet
from review_portal.workflow import ReviewState

#: Assignments that hold a seat on the review (a declined or withdrawn one does not).
LIVE_STATUSES = (AssignmentStatus.OFFERED, AssignmentStatus.ACCEPTED, AssignmentStatus.COMPLETED)


@dataclass
class LabelledSheet:
    """One live assignment of a review with its number ("Эксперт N") and its sheet."""

    label: int
    assignment: Assignment
    sheet: ScoreSheet | None

    @property
    def submitted(self) -> bool:
        return self.sheet is not None and self.sheet.status == SheetStatus.SUBMITTED

    @property
    def role(self) -> AssignmentRole:
        return self.assignment.role

    @property
    def scores(self) -> dict[str, int | None]:
        return {s.criterion_id: s.value for s in self.sheet.scores} if self.sheet else {}

    @property
    def comments(self) -> dict[str, str]:
        return {s.criterion_id: s.comment for s in self.sheet.scores} if self.sheet else {}


#: ``{(rubric id, version, fingerprint, program facts): the rubric as it applies}``: a
#: handful per process (the rubrics in use times the kinds of programs).
_applicable: dict[tuple, object] = {}


def rubric_of(review: Review):
    """The rubric frozen on ``review`` (its id and version) as it applies to the reviewed
    program: criteria whose ``applies_if`` does not hold for the program (its version under
    review, else the program) are left out, so they are not shown, scored or counted.

    Resolved once per process for each rubric version and kind of program (the same facts):
    the files are read once (:func:`~review_portal.rubrics.registry.rubric_files`) and the
    result is shared, immutable, by every request."""
    from review_portal.rubrics.registry import get_rubric

    rubric = get_rubric(review.rubric_id, review.rubric_version)
    facts = program_facts(review.version or review.program)
    key = (rubric.id, rubric.version, rubric.sha256, *sorted(facts.items()))
    found = _applicable.get(key)
    if found is None:
        if len(_applicable) >= 256:
            _applicable.clear()
        found = _applicable[key] = applicable(rubric, facts)
    return found


def fixed_scores_of(review: Review) -> dict[str, Fraction] | None:
    """For an appeal panel scoring only the contested criteria: the appealed final scores
    of the other criteria, exact (``None`` for any other review)."""
    if not review.fixed_scores:
        return None
    return {criterion: Fraction(value) for criterion, value in review.fixed_scores.items()}


def scope_of(review: Review) -> frozenset[str] | None:
    """The criteria the review's experts score (``None``: every criterion of the rubric)."""
    return frozenset(review.scope_criteria) if review.scope_criteria else None


def review_sheets(review: Review, *, fresh: bool = False) -> list[LabelledSheet]:
    """The review's live assignments (offered, accepted, completed) by seat, numbered from 1,
    with their sheets and scores (a fixed number of queries)."""
    stmt = (
        select(Assignment)
        .where(Assignment.review_id == review.id, Assignment.status.in_(LIVE_STATUSES))
        .options(
            selectinload(Assignment.sheet).selectinload(ScoreSheet.scores),
            selectinload(Assignment.sheet).selectinload(ScoreSheet.revisions),
        )
        .order_by(Assignment.seat)
    )
    if fresh:
        stmt = stmt.execution_options(populate_existing=True)
    assignments = db.session.execute(stmt).scalars().all()
    return [LabelledSheet(n, a, a.sheet) for n, a in enumerate(assignments, start=1)]


def revision_history(sheets: list[LabelledSheet]) -> list[tuple[int, ScoreRevision]]:
    """Every score revision of ``sheets`` as ``(expert number, revision)``, oldest first."""
    return sorted(
        (
            (item.label, revision)
            for item in sheets
            if item.sheet
            for revision in item.sheet.revisions
        ),
        key=lambda pair: (pair[1].changed_at, pair[1].id),
    )


def expert_numbers(assignments) -> dict[int, int]:
    """``{assignment id: the number its expert goes by on the review}`` for many assignments
    (one query): the position among the review's live assignments by seat, as
    :func:`review_sheets` numbers them."""
    review_ids = {a.review_id for a in assignments}
    if not review_ids:
        return {}
    rows = db.session.execute(_seats(), {"review_ids": sorted(review_ids)}).tuples()
    numbers: dict[int, int] = {}
    counts: dict[int, int] = {}
    for assignment_id, review_id in rows:
        counts[review_id] = counts.get(review_id, 0) + 1
        numbers[assignment_id] = counts[review_id]
    return numbers


@functools.cache
def _seats():
    # Built once per process (the sheet page runs it; building costs more than running).
    return (
        select(Assignment.id, Assignment.review_id)
        .where(
            Assignment.review_id.in_(sa.bindparam("review_ids", expanding=True)),
            Assignment.status.in_(LIVE_STATUSES),
        )
        .order_by(Assignment.review_id, Assignment.seat)
    )


def expert_number(assignment: Assignment) -> int:
    """The number an expert goes by on a review ("Эксперт N"), the same on every page; a
    declined or removed assignment keeps its seat."""
    return expert_numbers([assignment]).get(assignment.id, assignment.seat)


def wanted_experts(review: Review) -> int:
    from review_portal.assignment.eligibility import experts_wanted_by

    return experts_wanted_by(rubric_of(review)) + (review.extra_experts or 0)


def reviews_in_state(
    state: ReviewState, hidden_review_ids: list[int] | tuple[int, ...] = ()
) -> list[Review]:
    """Reviews in ``state``, longest waiting first, with program and organization loaded;
    without ``hidden_review_ids`` (the reviews on which the viewer holds an open seat:
    :func:`~review_portal.permissions.open_seat_review_ids`)."""
    from review_portal.programs.models import Program

    return list(
        db.session.execute(
            select(Review)
            .where(Review.state == state, Review.id.not_in(list(hidden_review_ids)))
            .options(selectinload(Review.program).selectinload(Program.organization))
            .order_by(Review.state_changed_at, Review.id)
        ).scalars()
    )


def next_round(program_id: int) -> int:
    """The round of a new review of the program: after every earlier one (a revision, a
    renewal or an appeal's panel each take the next). The caller holds the program's lock."""
    last = db.session.execute(
        select(func.max(Review.round)).where(Review.program_id == program_id)
    ).scalar()
    return (last or 0) + 1
