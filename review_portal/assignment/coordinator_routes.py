"""The coordinator's assignment pages: the automatic run (capacity check, dry run, apply)
and the manual assignment of one review (candidates with their load and exclusions)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from review_portal.accounts.models import User
from review_portal.assignment import queries, services
from review_portal.assignment.capacity import capacity_check, load_capacity_check
from review_portal.assignment.eligibility import Reason
from review_portal.assignment.forms import AssignForm, RemoveForm, RunForm
from review_portal.assignment.models import Assignment
from review_portal.enums import AssignmentStatus
from review_portal.extensions import db
from review_portal.permissions import ensure, is_staff, is_staff_on, requires
from review_portal.programs.models import Program
from review_portal.reviews.models import Review

bp = Blueprint("assigning", __name__)


def _names(user_ids) -> dict[int, str]:
    ids = set(user_ids)
    if not ids:
        return {}
    rows = db.session.execute(select(User.id, User.full_name).where(User.id.in_(ids)))
    return dict(rows.tuples().all())  # a Result has keys(): dict() needs a list


def _programs_of(review_ids) -> dict[int, Program]:
    ids = set(review_ids)
    if not ids:
        return {}
    rows = db.session.execute(
        select(Review.id, Program)
        .join(Program, Review.program_id == Program.id)
        .where(Review.id.in_(ids))
    )
    return dict(rows.tuples().all())  # a Result has keys(): dict() needs a list


def _render_run(form: RunForm, result=None, status: int = 200):
    capacity = capacity_check(result.reviews, result.experts) if result else load_capacity_check()
    context = {"form": form, "capacity": capacity, "result": result}
    if result is not None:
        plan = result.plan
        context.update(
            fingerprint=services.plan_fingerprint(plan),
            names=_names(list(plan.loads) + [e for ids in plan.assignments.values() for e in ids]),
            programs=_programs_of(r.id for r in result.reviews),
            unfilled=[r for r in result.reviews if len(plan.assignments.get(r.id, ())) < r.needed],
        )
    return render_template("assignment/run.html", **context), status


@bp.get("/assignments/run")
@requires(is_staff)
def run():
    form = RunForm(request.args, meta={"csrf": False})
    if request.args.get("dry_run"):
        if not form.validate():
            abort(400)
        result = services.run_assignment(current_user, apply=False, seed=form.seed.data or 0)
        return _render_run(RunForm(seed=form.seed.data or 0), result)
    return _render_run(form)


@bp.post("/assignments/run")
@requires(is_staff)
def apply_run():
    from flask import current_app

    from review_portal.jobs.services import queue_unavailable_message, start_in_background

    form = RunForm()
    if not form.validate_on_submit():
        abort(400)
    job = services.start_assignment_run(
        current_user, seed=form.seed.data or 0, fingerprint=form.fingerprint.data
    )
    start_in_background(current_app._get_current_object(), job.id)
    if job.waiting_for_queue:
        flash(queue_unavailable_message(), "warning")
    return redirect(url_for("jobs.view", job_id=job.id))


def _past_reviews_with(organization_id: int) -> dict[int, int]:
    """Per expert, how many reviews they took of this organization's programs."""
    rows = db.session.execute(
        select(Assignment.expert_id, func.count(Assignment.id))
        .join(Review, Assignment.review_id == Review.id)
        .join(Program, Review.program_id == Program.id)
        .where(
            Program.organization_id == organization_id,
            Assignment.status.in_([AssignmentStatus.ACCEPTED, AssignmentStatus.COMPLETED]),
        )
        .group_by(Assignment.expert_id)
    )
    return dict(rows.tuples().all())  # a Result has keys(): dict() needs a list


def _render_review(review: Review, assign_form=None, remove_form=None, status: int = 200):
    everyone = services.candidates(review)
    # Experts of other directions could never take it: counted, not listed.
    candidates = [c for c in everyone if Reason.DIRECTION not in c[1]]
    candidates.sort(key=lambda c: (bool(c[1]), c[0].open_load, c[0].id))
    return (
        render_template(
            "assignment/review_experts.html",
            review=review,
            program=review.program,
            assignments=review.assignments,
            candidates=candidates,
            other_directions=len(everyone) - len(candidates),
            names=_names(e.id for e, _ in candidates),
            past=_past_reviews_with(review.program.organization_id),
            conflicts=queries.conflicts_for_review(review),
            conflict_reason=services.conflict_reason,
            open_for_assignment=queries.needs_experts(review),
            assign_form=assign_form or AssignForm(),
            remove_form=remove_form or RemoveForm(),
        ),
        status,
    )


@bp.get("/reviews/<int:review_id>/experts")
@requires(is_staff)
def review_experts(review_id: int):
    review = db.get_or_404(Review, review_id)
    ensure(is_staff_on(current_user, review))
    return _render_review(review)


@bp.post("/reviews/<int:review_id>/experts")
@requires(is_staff)
def assign(review_id: int):
    review = db.get_or_404(Review, review_id)
    ensure(is_staff_on(current_user, review))
    form = AssignForm()
    if not form.validate_on_submit():
        abort(400)
    expert = db.get_or_404(User, form.expert_id.data)
    try:
        with db.session.begin_nested():
            services.assign_manually(review, expert, current_user)
    except services.AssignmentError as error:
        flash(str(error.message), "error")
        return _render_review(review, status=400)
    flash(_("%(name)s has been assigned.", name=expert.full_name), "success")
    return redirect(url_for("assigning.review_experts", review_id=review.id))


@bp.post("/assignments/<int:assignment_id>/remove")
@requires(is_staff)
def remove(assignment_id: int):
    assignment = db.get_or_404(Assignment, assignment_id)
    ensure(is_staff_on(current_user, assignment.review))
    form = RemoveForm()
    if not form.validate_on_submit():
        return _render_review(assignment.review, remove_form=form, status=400)
    try:
        with db.session.begin_nested():
            replacements = services.remove_assignment(assignment, current_user, form.reason.data)
    except services.AssignmentError as error:
        flash(str(error.message), "error")
    else:
        if replacements:
            flash(_("The expert has been removed and a replacement assigned."), "success")
        else:
            flash(_("The expert has been removed; no eligible replacement was found."), "warning")
    return redirect(url_for("assigning.review_experts", review_id=assignment.review_id))
