"""Coordinator pages: reviews in reconciliation, the side-by-side page and direct resolution,
reviews awaiting a decision (one by one; many at once is conclusions.bulk_routes)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import pgettext
from flask_login import current_user
from sqlalchemy import select

from review_portal.accounts.models import User
from review_portal.assignment.models import Assignment
from review_portal.confirmation import confirmation, previewing
from review_portal.enums import AssignmentRole, Decision
from review_portal.extensions import db
from review_portal.permissions import ensure, open_seat_review_ids, requires
from review_portal.reconciliation import rules, services
from review_portal.reconciliation.forms import ConfirmForm, DecisionForm, ResolveForm
from review_portal.reconciliation.permissions import (
    can_decide,
    can_resolve,
    can_see_expert_names,
    can_view_decision,
    can_view_reconciliation,
    can_view_reconciliations,
)
from review_portal.reviews import queries
from review_portal.reviews import services as review_services
from review_portal.reviews.models import Review
from review_portal.scoring.compute import rubric_view, sheet_total
from review_portal.workflow import ReviewState

bp = Blueprint("reconciliation", __name__)


def _names(user_ids) -> dict[int, str]:
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return {}
    rows = db.session.execute(select(User.id, User.full_name).where(User.id.in_(ids)))
    return dict(rows.tuples().all())


def _flagged(fired: list | None) -> set[str]:
    """The criteria the stored ``criterion_points`` rule flagged."""
    return {
        criterion
        for rule in fired or ()
        if rule.get("rule") == "criterion_points"
        for criterion in rule.get("criteria", ())
    }


def _third_experts(reviews: list[Review]) -> dict[int, Assignment]:
    """The live third-expert assignment of each review (one query for the whole list)."""
    rows = db.session.execute(
        select(Assignment)
        .where(
            Assignment.review_id.in_([r.id for r in reviews]),
            Assignment.role == AssignmentRole.THIRD,
            Assignment.status.in_(queries.LIVE_STATUSES),
        )
        .order_by(Assignment.id)
    ).scalars()
    return {a.review_id: a for a in rows}


# --- lists ----------------------------------------------------------------------------------


@bp.get("/reconciliations")
@requires(can_view_reconciliations)
def index():
    # Roles never widen relations: the reviews on which the viewer holds an open seat (a
    # third expert asked to score independently) are left out rather than shown without
    # details: nothing on the row is theirs to act on (the page is 403, resolving refused),
    # their own seat is on their expert page, and a bare row would be one more template
    # case that could leak its divergence by mistake.
    hidden = open_seat_review_ids(current_user)
    reviews = queries.reviews_in_state(ReviewState.RECONCILIATION, hidden)
    return render_template(
        "reconciliation/index.html",
        reviews=reviews,
        third=_third_experts(reviews),
        describe_rule=rules.describe_rule,
    )


@bp.get("/decisions")
@requires(can_view_reconciliations)
def decisions():
    return render_template(
        "reconciliation/decisions.html",
        reviews=queries.reviews_in_state(
            ReviewState.AWAITING_DECISION, open_seat_review_ids(current_user)
        ),
        form=ConfirmForm(),
    )


# --- the side-by-side page and resolution ---------------------------------------------------


def _resolve_form(submitted) -> ResolveForm:
    form = ResolveForm()
    form.counted.choices = [(item.assignment.id, _expert_label(item.label)) for item in submitted]
    if not form.is_submitted():
        form.counted.data = [item.assignment.id for item in submitted]
    return form


def _expert_label(n: int) -> str:
    return pgettext("expert number", "Expert %(n)s", n=n)


def _render_review(review: Review, *, resolve_form=None, error=None, status: int = 200):
    rubric = queries.rubric_of(review)
    view = rubric_view(rubric)
    sheets = queries.review_sheets(review)
    submitted = [s for s in sheets if s.submitted]
    in_reconciliation = review.state == ReviewState.RECONCILIATION
    if resolve_form is None and can_resolve(current_user, review):
        resolve_form = _resolve_form(submitted)
    revisions = queries.revision_history(sheets)
    transitions = review.transitions
    names = _names(
        [item.assignment.expert_id for item in sheets]
        + [t.actor_id for t in transitions]
        + [review.resolved_by_id, review.decided_by_id]
    )
    final = review.final_result
    current = services.current_divergence(review, sheets) if in_reconciliation else None
    return (
        render_template(
            "reconciliation/review.html",
            review=review,
            program=review.program,
            rubric=rubric,
            view=view,
            sheets=sheets,
            totals={s.label: sheet_total(view, s.scores) for s in submitted},
            flagged=_flagged(review.divergence_rules),
            fired=[rules.describe_rule(rule) for rule in review.divergence_rules or ()],
            current=current,
            current_rules=[rules.describe_rule(rule) for rule in current.fired] if current else [],
            final=final,
            final_decision=Decision(final["decision"]) if final else None,
            final_rule=rules.FINAL_SCORE_RULES.get(final["method"]) if final else None,
            criterion_titles={c.id: c.title for c in view.criteria},
            revisions=revisions,
            transitions=transitions,
            names=names,
            show_names=can_see_expert_names(current_user, review),
            resolve_form=resolve_form,
            error=error,
        ),
        status,
    )


@bp.get("/reviews/<int:review_id>/reconciliation")
@requires(can_view_reconciliations)
def review(review_id: int):
    review = db.get_or_404(Review, review_id)
    ensure(can_view_reconciliation(current_user, review))
    return _render_review(review)


@bp.post("/reviews/<int:review_id>/resolve")
@requires(can_view_reconciliations)
def resolve(review_id: int):
    review = db.get_or_404(Review, review_id)
    ensure(can_resolve(current_user, review))
    form = _resolve_form([s for s in queries.review_sheets(review) if s.submitted])
    if not form.validate_on_submit():
        return _render_review(review, resolve_form=form, status=400)
    try:
        with db.session.begin_nested():
            services.resolve_review(
                review, current_user, form.justification.data, form.counted.data
            )
    except services.ReconciliationError as error:
        return _render_review(review, resolve_form=form, error=error.message, status=422)
    flash(_("The reconciliation is resolved; the review is awaiting a decision."), "success")
    return redirect(url_for("reconciliation.decision", review_id=review.id))


# --- the decision ---------------------------------------------------------------------------


def _render_decision(review: Review, *, form=None, error=None, status: int = 200):
    rubric = queries.rubric_of(review)
    final = review.final_result
    if form is None and can_decide(current_user, review):
        form = DecisionForm(
            decision=(review.computed_decision or Decision(final["decision"])).value
        )
    return (
        render_template(
            "reconciliation/decision.html",
            review=review,
            program=review.program,
            rubric=rubric,
            view=rubric_view(rubric),
            final=final,
            final_decision=Decision(final["decision"]),
            final_rule=rules.FINAL_SCORE_RULES.get(final["method"]),
            limits=rules.thresholds(rubric),
            names=_names([review.resolved_by_id, review.decided_by_id]),
            form=form,
            error=error,
        ),
        status,
    )


#: What each decision does besides the conclusion, as the confirmation says it.
DECISION_EFFECTS = {
    Decision.ADMITTED: _l(
        "The program enters the registry's pending changes and is included at the next publication."
    ),
    Decision.REVISION_REQUIRED: _l(
        "The provider may revise the program and submit it again; it does not enter the registry."
    ),
    Decision.REJECTED: _l("The program does not enter the registry."),
}


def _confirm_decision(review: Review, decision: Decision, justification: str):
    from review_portal.conclusions.models import upcoming_numbers
    from review_portal.db import utcnow
    from review_portal.i18n import local_date, quote
    from review_portal.settings.services import get_setting

    number, _last = upcoming_numbers(get_setting("region_code"), local_date(utcnow()).year)
    override = []
    if decision != review.computed_decision:
        override = [
            _(
                "It differs from the computed decision (%(computed)s); your justification is "
                "printed in the conclusion: %(justification)s",
                computed=review.computed_decision.label if review.computed_decision else "—",
                justification=justification,
            )
        ]
    return confirmation(
        _("Record the decision and issue the conclusion"),
        [
            _(
                "The decision on %(title)s is recorded: %(decision)s.",
                title=quote(review.program.title),
                decision=decision.label,
            ),
            *override,
            _(
                "A conclusion is issued with the next number of the year (now %(number)s) "
                "and sent to the provider; the number is taken for good.",
                number=number,
            ),
            DECISION_EFFECTS[decision],
            _("The decision cannot be changed; the conclusion can only be revoked, with a reason."),
        ],
        button=_("Record the decision and issue the conclusion"),
        back=url_for("reconciliation.decision", review_id=review.id),
        busy=_("Issuing the conclusion…"),
    )


@bp.get("/reviews/<int:review_id>/decision")
@requires(can_view_reconciliations)
def decision(review_id: int):
    review = db.get_or_404(Review, review_id)
    ensure(can_view_decision(current_user, review))
    return _render_decision(review)


@bp.post("/reviews/<int:review_id>/decision")
@requires(can_view_reconciliations)
def decide(review_id: int):
    review = db.get_or_404(Review, review_id)
    ensure(can_decide(current_user, review))
    form = DecisionForm()
    if not form.validate_on_submit():
        return _render_decision(review, form=form, status=400)
    if previewing():
        decision = Decision(form.decision.data)
        justification = (form.justification.data or "").strip()
        try:
            review_services.check_decision(review, decision, justification)
        except review_services.ReviewError as error:
            return _render_decision(review, form=form, error=error.message, status=422)
        return _confirm_decision(review, decision, justification)
    try:
        with db.session.begin_nested():
            review_services.decide_review(
                review, current_user, form.decision.data, form.justification.data
            )
    except review_services.ReviewError as error:
        return _render_decision(review, form=form, error=error.message, status=422)
    flash(
        _("The decision is recorded: %(decision)s.", decision=Decision(form.decision.data).label),
        "success",
    )
    return redirect(url_for("reconciliation.decision", review_id=review.id))
