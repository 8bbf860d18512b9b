"""The experts' discussion of a divergent review: the sheets side by side, anonymously, and
the expert's own revisions with reasons."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from review_portal.assignment.models import Assignment
from review_portal.enums import AssignmentRole
from review_portal.extensions import db
from review_portal.permissions import ensure, requires
from review_portal.reconciliation import rules, services
from review_portal.reconciliation.discussion_forms import (
    BadInput,
    RevisionInput,
    revision_from_form,
)
from review_portal.reconciliation.permissions import can_revise_scores, can_view_discussion
from review_portal.reviews import queries
from review_portal.scoring.compute import rubric_view, sheet_total

bp = Blueprint("discussion", __name__)


def _render(
    assignment: Assignment,
    *,
    data: RevisionInput | None = None,
    errors: dict | None = None,
    notice=None,
    status: int = 200,
):
    """The discussion page of ``assignment``'s expert; ``data`` and ``errors`` show a refused
    form again as it was posted."""
    review = assignment.review
    rubric = queries.rubric_of(review)
    view = rubric_view(rubric)
    labelled = queries.review_sheets(review)
    # Only the initial experts' sheets are discussed (a third expert comes after it).
    sheets = [s for s in labelled if s.role == AssignmentRole.INITIAL and s.submitted]
    mine = next((s for s in sheets if s.assignment.id == assignment.id), None)
    divergence = services.current_divergence(review, labelled)
    history = queries.revision_history(sheets)
    own_scores = mine.scores if mine else {}
    own_comments = mine.comments if mine else {}
    return (
        render_template(
            "reconciliation/discussion.html",
            assignment=assignment,
            review=review,
            program=review.program,
            version=review.version,
            rubric=rubric,
            view=view,
            sheets=sheets,
            mine=mine,
            totals={s.label: sheet_total(view, s.scores) for s in sheets},
            flagged=set(divergence.flagged),
            initial_rules=[rules.describe_rule(f) for f in review.divergence_rules or []],
            current_rules=[rules.describe_rule(f) for f in divergence.fired],
            divergent_now=divergence.divergent,
            history=history,
            editable=can_revise_scores(current_user, assignment),
            scores=data.scores if data else own_scores,
            comments=data.comments if data else own_comments,
            reasons=data.reasons if data else {},
            errors={k: str(v) for k, v in (errors or {}).items()},
            notice=notice,
        ),
        status,
    )


@bp.get("/discussion/<int:assignment_id>")
@requires(lambda user: True)
def page(assignment_id: int):
    assignment = db.get_or_404(Assignment, assignment_id)
    ensure(can_view_discussion(current_user, assignment))
    return _render(assignment)


@bp.post("/discussion/<int:assignment_id>")
@requires(lambda user: True)
def revise(assignment_id: int):
    """The expert's revised scores: every changed criterion with its reason."""
    assignment = db.get_or_404(Assignment, assignment_id)
    ensure(can_revise_scores(current_user, assignment))
    view = rubric_view(queries.rubric_of(assignment.review))
    current_comments = {s.criterion_id: s.comment for s in assignment.sheet.scores}
    try:
        data = revision_from_form(view, request.form, current_comments)
    except BadInput:
        return _render(assignment, notice=_("The form could not be read."), status=400)
    try:
        with db.session.begin_nested():
            settled = services.revise_scores(assignment, current_user, data.changes)
    except services.RevisionInvalid as error:
        return _render(assignment, data=data, errors=error.errors, status=422)
    except services.ReconciliationError as error:
        # Still open: the request itself was wrong (nothing changed); else it closed meanwhile.
        status = 400 if can_revise_scores(current_user, assignment) else 409
        return _render(assignment, data=data, notice=error.message, status=status)
    if settled:
        flash(
            _(
                "The scores are agreed: the score sheets no longer diverge, and the review "
                "goes to the coordinator for a decision."
            ),
            "success",
        )
    else:
        flash(_("Your revised scores are saved."), "success")
    return redirect(url_for("discussion.page", assignment_id=assignment.id))
