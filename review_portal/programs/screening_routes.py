"""The coordinators' screening queue: accept into expertise or return for fixes."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from review_portal.extensions import db
from review_portal.input_guard import requested_page
from review_portal.permissions import ensure, requires
from review_portal.programs import queries, services
from review_portal.programs.forms import ActionForm, ReasonForm
from review_portal.programs.models import Program
from review_portal.programs.permissions import can_screen_program, can_view_screening_queue
from review_portal.programs.routes import _filter_form, render_view
from review_portal.reviews.models import Review
from review_portal.settings.services import get_setting
from review_portal.workflow import ReviewState, WorkflowError

bp = Blueprint("screening", __name__)


def _day_start(day):
    return datetime.combine(day, time.min, ZoneInfo(get_setting("timezone")))


@bp.get("/screening")
@requires(can_view_screening_queue)
def queue():
    form = _filter_form()
    if not form.validate():
        abort(400)
    stmt = queries.filter_programs(
        queries.visible_programs(current_user),
        state=ReviewState.SUBMITTED,
        q=form.q.data,
        direction=form.direction.data or None,
        municipality_id=int(form.municipality_id.data) if form.municipality_id.data else None,
        organization=form.organization.data,
        changed_from=_day_start(form.submitted_from.data) if form.submitted_from.data else None,
        changed_to=_day_start(form.submitted_to.data) + timedelta(days=1)
        if form.submitted_to.data
        else None,
    ).order_by(Review.state_changed_at, Program.id)
    page = db.paginate(stmt, page=requested_page(), per_page=25, error_out=False)
    return render_template("programs/screening.html", form=form, page=page)


@bp.post("/programs/<int:program_id>/accept")
@requires(lambda user: True)
def accept(program_id: int):
    program = db.get_or_404(Program, program_id)
    ensure(can_screen_program(current_user, program))
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        with db.session.begin_nested():
            services.accept_submission(program, current_user)
    except WorkflowError as error:
        flash(str(error.message), "error")
        return redirect(url_for("programs.view", program_id=program.id))
    flash(_("The program has been accepted into expertise."), "success")
    return redirect(url_for("screening.queue"))


@bp.post("/programs/<int:program_id>/return")
@requires(lambda user: True)
def return_for_fixes(program_id: int):
    program = db.get_or_404(Program, program_id)
    ensure(can_screen_program(current_user, program))
    form = ReasonForm()
    if not form.validate_on_submit():
        return render_view(program, 400, return_form=form)
    try:
        with db.session.begin_nested():
            services.return_submission(program, current_user, form.reason.data)
    except WorkflowError as error:
        flash(str(error.message), "error")
        return redirect(url_for("programs.view", program_id=program.id))
    flash(_("The program has been returned to its provider."), "success")
    return redirect(url_for("screening.queue"))
