"""The result of a decided review for the provider (and the municipal viewer, the staff):
decision, final scores and the experts' comments, anonymous."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from review_portal.extensions import db
from review_portal.permissions import ensure, requires
from review_portal.programs.permissions import can_view_result
from review_portal.reconciliation import rules
from review_portal.reviews import queries
from review_portal.reviews.models import Review
from review_portal.scoring.compute import rubric_view, sheet_total

bp = Blueprint("results", __name__)


@bp.get("/reviews/<int:review_id>/result")
@requires(lambda user: True)
def review(review_id: int):
    review = db.get_or_404(Review, review_id)
    ensure(can_view_result(current_user, review))
    rubric = queries.rubric_of(review)
    view = rubric_view(rubric)
    result = review.final_result or {}
    sheets = [s for s in queries.review_sheets(review) if s.submitted]
    # The stored assignment ids say which sheets counted (they are never shown); results
    # stored before they were kept name the experts' numbers.
    counted_ids = result.get("counted_assignments")
    if counted_ids is not None:
        counted = {s.label for s in sheets if s.assignment.id in counted_ids}
    else:
        counted = set(result.get("counted") or [])
    return render_template(
        "reconciliation/result.html",
        review=review,
        program=review.program,
        version=review.version,
        rubric=rubric,
        view=view,
        result=result,
        sheets=sheets,
        counted=counted,
        totals={s.label: sheet_total(view, s.scores) for s in sheets},
        limits=rules.thresholds(rubric),
        method_text=rules.FINAL_SCORE_RULES.get(result.get("method")),
    )
