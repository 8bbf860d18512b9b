"""Score sheet pages: fill in (form and JSON autosave), submit, reopen, the expert's history."""

from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from review_portal.assignment.models import Assignment
from review_portal.confirmation import confirmation
from review_portal.enums import ReviewKind, SheetStatus
from review_portal.extensions import db
from review_portal.i18n import format_points, quote
from review_portal.input_guard import DB_INT_MAX, accepts_json, bounded_json, parse_db_int
from review_portal.permissions import ensure, requires
from review_portal.reviews.queries import fixed_scores_of, review_sheets, rubric_of, scope_of
from review_portal.scoring import services
from review_portal.scoring.compute import rubric_view
from review_portal.scoring.forms import BadInput, ReopenForm, from_form, from_json
from review_portal.scoring.models import ScoreSheet
from review_portal.scoring.permissions import (
    TEMPLATE_PREDICATES,
    can_open_sheet_page,
    can_reopen_sheet,
    can_score,
    can_view_history,
    can_view_sheet,
)
from review_portal.scoring.queries import sheet_assignment

bp = Blueprint("scoring", __name__)


@bp.record_once
def _expose_predicates(state) -> None:
    state.app.jinja_env.globals.update(TEMPLATE_PREDICATES)


def _values(sheet: ScoreSheet | None, data=None) -> tuple[dict, dict]:
    """``({criterion id: score}, {criterion id: comment})`` from posted data, else from the
    stored sheet."""
    if data is not None:
        return dict(data.scores), dict(data.comments)
    if sheet is None:
        return {}, {}
    return (
        {s.criterion_id: s.value for s in sheet.scores},
        {s.criterion_id: s.comment for s in sheet.scores},
    )


def _appeal_context(review) -> dict:
    """On an appeal panel's sheet: the criteria it scores, the appealed final scores of the
    others, the provider's reasons and the appealed review's sheets by seat (no names)."""
    from review_portal.appeals.models import Appeal

    if review.kind != ReviewKind.APPEAL:
        return {"scope": None}
    appeal = db.session.execute(
        select(Appeal).where(Appeal.panel_review_id == review.id)
    ).scalar_one_or_none()
    if appeal is None:
        return {"scope": None}
    fixed = fixed_scores_of(review) or {}
    return {
        "scope": scope_of(review),
        "fixed": {k: format_points(round(float(v), 2)) for k, v in fixed.items()},
        "arguments": {item["criterion"]: item["text"] for item in appeal.arguments},
        "original": [
            {"label": s.label, "scores": s.scores, "comments": s.comments}
            for s in review_sheets(appeal.review)
            if s.submitted
        ],
        "appeal": appeal,
    }


def _render_sheet(assignment: Assignment, *, data=None, errors=None, notice=None, status=200):
    sheet = assignment.sheet
    rubric = rubric_of(assignment.review)
    editable = can_score(current_user, assignment)
    scores, comments = _values(sheet, data)
    return (
        render_template(
            "scoring/sheet.html",
            assignment=assignment,
            review=assignment.review,
            program=assignment.review.program,
            version=assignment.review.version,
            sheet=sheet,
            rubric=rubric,
            view=rubric_view(rubric),
            scores=scores,
            comments=comments,
            recommendations=data.recommendations
            if data
            else (sheet.recommendations if sheet else ""),
            confirmed=data.confirmed if data else bool(sheet and sheet.no_conflict_confirmed),
            revision=sheet.revision if sheet else 0,
            totals=services.totals_of(rubric, sheet, fixed_scores_of(assignment.review)),
            errors={k: str(v) for k, v in (errors or {}).items()},
            disabled=not editable,
            editable=editable,
            notice=notice,
            reopen_form=ReopenForm(),
            **_appeal_context(assignment.review),
        ),
        status,
    )


def _assignment_or_404(assignment_id: int, *, with_program: bool = False) -> Assignment:
    """The assignment with what its sheet pages read (one statement), or 404."""
    assignment = sheet_assignment(assignment_id, with_program=with_program)
    if assignment is None:
        abort(404)
    return assignment


@bp.get("/sheets/<int:assignment_id>")
@requires(lambda user: True)
def sheet(assignment_id: int):
    assignment = _assignment_or_404(assignment_id, with_program=True)
    ensure(can_open_sheet_page(current_user, assignment))
    return _render_sheet(assignment)


@bp.post("/sheets/<int:assignment_id>")
@requires(lambda user: True)
def save(assignment_id: int):
    """The plain form (works without JavaScript): ``action`` = ``save``, ``check`` (save,
    then ask to confirm the submission), ``submit_saved`` (submit the draft confirmed) or
    ``submit`` (save and submit at once)."""
    assignment = _assignment_or_404(assignment_id)
    ensure(can_score(current_user, assignment))
    action = request.form.get("action")
    if action == "submit_saved":
        return _submit_saved(assignment)
    view = rubric_view(rubric_of(assignment.review))
    try:
        data = from_form(view, request.form)
    except BadInput:
        return _render_sheet(assignment, notice=_("The form could not be read."), status=400)
    submit = action == "submit"
    try:
        if action == "check":
            return _check_before_submitting(assignment, data)
        if submit:
            services.save_and_submit_sheet(assignment, current_user, data)
        else:
            services.save_sheet(assignment, current_user, data)
    except services.StaleSheet as error:
        notice = _(
            "%(message)s Your changes were not saved; the current version is shown below.",
            message=error.message,
        )
        return _render_sheet(assignment, notice=notice, status=409)
    except services.SubmissionRefused as error:
        # The draft is kept (committed with the request); only the submission is refused.
        return _render_sheet(assignment, errors=error.errors, status=422)
    except services.SheetInvalid as error:
        return _render_sheet(assignment, data=data, errors=error.errors, status=422)
    except services.SheetLocked as error:
        # Withdrawn (or submitted elsewhere) while this request waited: nothing is kept.
        return _render_sheet(assignment, notice=error.message, status=409)
    if submit:
        flash(_("The score sheet is submitted."), "success")
        return redirect(url_for("scoring.history_sheet", sheet_id=assignment.sheet.id))
    flash(_("The draft is saved."), "success")
    return redirect(url_for("scoring.sheet", assignment_id=assignment.id))


def _check_before_submitting(assignment: Assignment, data):
    """Save the draft; when it could be submitted, ask to confirm (what the expert will no
    longer be able to change), else show what is missing (the draft is kept either way)."""
    sheet = services.save_sheet(assignment, current_user, data)
    rubric = rubric_of(assignment.review)
    errors = services.submit_errors(rubric, sheet, scope_of(assignment.review))
    if errors:
        return _render_sheet(assignment, errors=errors, status=422)
    totals = services.totals_of(rubric, sheet, fixed_scores_of(assignment.review))
    return confirmation(
        _("Submit the score sheet"),
        [
            _(
                "Your scores for %(title)s are sent to the regional model center: "
                "%(total)s of %(max)s points (%(percent)s %%).",
                title=quote(
                    assignment.review.version.title
                    if assignment.review.version
                    else assignment.review.program.title
                ),
                total=format_points(totals.total),
                max=format_points(totals.max_total),
                percent=format_points(totals.percent),
            ),
            _(
                "The sheet is then locked: you can no longer change it. Only the coordinator "
                "can reopen it, giving a reason."
            ),
            _("The draft is saved; to change something first, go back to the sheet."),
        ],
        button=_("Submit the score sheet"),
        back=url_for("scoring.sheet", assignment_id=assignment.id),
        fields=[("action", "submit_saved"), ("revision", str(sheet.revision))],
        busy=_("Submitting the sheet…"),
    )


def _submit_saved(assignment: Assignment):
    """Submit the draft the expert confirmed (its revision sent back by the page)."""
    revision = parse_db_int(request.form.get("revision"), DB_INT_MAX)
    if revision is None:
        return _render_sheet(assignment, notice=_("The form could not be read."), status=400)
    try:
        with db.session.begin_nested():
            services.submit_sheet(assignment, current_user, expected_revision=revision)
    except services.StaleSheet:
        notice = _("The sheet was changed after you confirmed it; check it and submit it again.")
        return _render_sheet(assignment, notice=notice, status=409)
    except services.SheetInvalid as error:
        return _render_sheet(assignment, errors=error.errors, status=422)
    except services.SheetLocked as error:
        return _render_sheet(assignment, notice=error.message, status=409)
    flash(_("The score sheet is submitted."), "success")
    return redirect(url_for("scoring.history_sheet", sheet_id=assignment.sheet.id))


@bp.post("/sheets/<int:assignment_id>/autosave")
@requires(lambda user: True)
@accepts_json
def autosave(assignment_id: int):
    """JSON in, JSON out: ``{"status": "saved", "revision", "saved_at"}``; 409 with the
    current state for a stale revision; 422 with field errors; 403 once submitted."""
    assignment = _assignment_or_404(assignment_id)
    ensure(can_score(current_user, assignment))
    view = rubric_view(rubric_of(assignment.review))
    try:
        data = from_json(view, bounded_json())
    except BadInput:
        return jsonify(status="invalid", message=_("The request could not be read.")), 400
    try:
        sheet = services.save_sheet(assignment, current_user, data)
    except services.StaleSheet as error:
        return jsonify(
            status="stale",
            message=str(error.message),
            current=services.sheet_state(assignment.sheet),
        ), 409
    except services.SheetInvalid as error:
        return jsonify(status="invalid", errors={k: str(v) for k, v in error.errors.items()}), 422
    return jsonify(status="saved", revision=sheet.revision, saved_at=sheet.saved_at.isoformat())


@bp.post("/sheets/<int:sheet_id>/reopen")
@requires(lambda user: True)
def reopen(sheet_id: int):
    sheet = db.get_or_404(ScoreSheet, sheet_id)
    ensure(can_reopen_sheet(current_user, sheet))
    form = ReopenForm()
    if not form.validate_on_submit():
        for messages in form.errors.values():
            for message in messages:
                flash(message, "danger")
        return redirect(url_for("scoring.sheet", assignment_id=sheet.assignment_id))
    services.reopen_sheet(sheet, current_user, form.reason.data)
    flash(_("The score sheet is reopened; the expert has been notified."), "success")
    return redirect(url_for("scoring.sheet", assignment_id=sheet.assignment_id))


@bp.get("/expert/history")
@requires(can_view_history)
def history():
    return render_template(
        "scoring/history.html", sheets=services.submitted_sheets(current_user.id)
    )


@bp.get("/expert/history/<int:sheet_id>")
@requires(can_view_history)
def history_sheet(sheet_id: int):
    sheet = db.get_or_404(ScoreSheet, sheet_id)
    ensure(
        can_view_sheet(current_user, sheet)
        and sheet.assignment.expert_id == current_user.id
        and sheet.status == SheetStatus.SUBMITTED
    )
    return _render_sheet(sheet.assignment)
