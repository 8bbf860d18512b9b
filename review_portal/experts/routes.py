"""Experts: the coordinators' registry (filters, CSV export and import, the expert's page with
their declared conflicts, suspension), the expert's own profile with periods of
unavailability and conflicts of interest, and the expert's answer to an assignment (accept,
or decline with a reason)."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from review_portal.assignment.models import Assignment
from review_portal.assignment.queries import conflicts_of_expert
from review_portal.assignment.services import (
    AssignmentError,
    accept_assignment,
    declare_organization_conflict,
    decline_assignment,
    local_today,
)
from review_portal.enums import Direction
from review_portal.errors import InvalidInput
from review_portal.experts import queries, services
from review_portal.experts.forms import (
    ActionForm,
    ConflictDeclarationForm,
    DeclineForm,
    ExpertFilterForm,
    ExpertImportForm,
    ExpertProfileForm,
    SuspendForm,
    UnavailabilityForm,
)
from review_portal.experts.models import ExpertProfile, ExpertUnavailability
from review_portal.experts.permissions import (
    TEMPLATE_PREDICATES,
    can_edit_own_profile,
    can_manage_expert,
    can_respond_to_assignment,
    can_view_expert_registry,
    has_expert_profile,
)
from review_portal.extensions import db
from review_portal.forms import (
    form_page_too_large,
    on_too_large,
    options,
    refused_status,
)
from review_portal.i18n import quote
from review_portal.imports.services import MAX_ROWS
from review_portal.input_guard import requested_page
from review_portal.organizations.services import (
    approved_organization_choices,
    municipality_choices,
)
from review_portal.permissions import ensure, open_seat_review_ids, requires

bp = Blueprint("experts", __name__)

PER_PAGE = 50


@bp.record_once
def _expose_predicates(state) -> None:
    # The domain's predicates in every template (the expert home page uses them too).
    state.app.jinja_env.globals.update(TEMPLATE_PREDICATES)


# --- the registry (staff) ---------------------------------------------------------------


def _filter_form() -> ExpertFilterForm:
    form = ExpertFilterForm(request.args)
    form.municipality_id.choices = options(
        [("", _("All"))] + [(str(i), name) for i, name in municipality_choices()]
    )
    if not form.validate():
        abort(400)
    return form


@bp.get("/experts")
@requires(can_view_expert_registry)
def registry():
    form = _filter_form()
    page = db.paginate(
        queries.expert_registry_query(**form.filters()),
        page=requested_page(),
        per_page=PER_PAGE,
        error_out=False,
    )
    profiles = page.items
    return render_template(
        "experts/registry.html",
        form=form,
        page=page,
        loads=queries.open_loads(p.user_id for p in profiles),
        unavailable=queries.current_unavailability(p.id for p in profiles),
        status_of=queries.expert_status,
    )


@bp.get("/experts/export.csv")
@requires(can_view_expert_registry)
def export():
    form = _filter_form()
    rows = services.export_experts_csv(queries.expert_registry_query(**form.filters()))
    return Response(
        stream_with_context(rows),
        mimetype="text/csv; charset=utf-8",
        headers={"Content-Disposition": "attachment; filename=experts.csv"},
    )


def _import_page(form: ExpertImportForm, report=None, status: int = 200):
    return (
        render_template(
            "experts/import.html",
            form=form,
            report=report,
            columns=services.EXPERT_COLUMNS,
            municipalities=[name for _id, name in municipality_choices()],
            max_rows=MAX_ROWS,
        ),
        status,
    )


@bp.route("/experts/import", methods=["GET", "POST"])
@on_too_large(form_page_too_large(ExpertImportForm, _import_page))
@requires(can_manage_expert)
def import_experts():
    """The form, and the import: a refused file (a field error: 422, or 413 over the size
    limit; a file with problems: 422 with the report) writes nothing."""
    form = ExpertImportForm()
    if not form.is_submitted():
        return _import_page(form)
    if not form.validate():
        return _import_page(form, status=refused_status(form))
    upload = form.file.data
    report = services.import_experts_csv(upload.stream, current_user, filename=upload.filename)
    if not report.ok:
        return _import_page(form, report, status=422)
    flash(
        ngettext(
            "Imported %(num)s expert; each has been sent a link to set a password.",
            "Imported %(num)s experts; each has been sent a link to set a password.",
            report.created,
        ),
        "success",
    )
    return redirect(url_for(".registry"))


@bp.get("/experts/import/template.csv")
@requires(can_manage_expert)
def import_template():
    return Response(
        services.template_csv().encode("utf-8"),
        mimetype="text/csv; charset=utf-8",
        headers={"Content-Disposition": "attachment; filename=experts.csv"},
    )


def _profile_or_404(user_id: int) -> ExpertProfile:
    profile = queries.find_expert_profile(user_id)
    if profile is None:
        abort(404)
    return profile


def _render_expert(profile: ExpertProfile, suspend_form=None, status: int = 200):
    from review_portal.reviews.queries import expert_numbers

    # Roles never widen relations: a coordinator with an open seat on a review does not
    # learn here who else sits on it (their own page lists their own seats).
    hidden = [] if profile.user_id == current_user.id else open_seat_review_ids(current_user)
    history = queries.assignment_history(profile.user_id, hidden)
    return (
        render_template(
            "experts/view.html",
            profile=profile,
            user=profile.user,
            status=queries.expert_status(profile),
            load=queries.open_loads([profile.user_id]).get(profile.user_id, 0),
            history=history,
            numbers=expert_numbers([assignment for assignment, _ in history]),
            conflicts=conflicts_of_expert(profile.user_id),
            today=local_today(),
            suspend_form=suspend_form or SuspendForm(),
            action_form=ActionForm(),
        ),
        status,
    )


@bp.get("/experts/<int:user_id>")
@requires(can_view_expert_registry)
def view(user_id: int):
    return _render_expert(_profile_or_404(user_id))


@bp.post("/experts/<int:user_id>/suspend")
@requires(can_manage_expert)
def suspend(user_id: int):
    profile = _profile_or_404(user_id)
    form = SuspendForm()
    if form.validate_on_submit():
        try:
            with db.session.begin_nested():
                suspension = services.suspend_expert(profile, current_user, form.reason.data)
        except services.ExpertError as error:
            flash(str(error.message), "error")
        else:
            flash(_("The expert is suspended: %(name)s.", name=profile.user.full_name), "success")
            _flash_suspension(suspension)
        return redirect(url_for(".view", user_id=user_id))
    return _render_expert(profile, suspend_form=form, status=400)


def _flash_suspension(suspension: services.Suspension) -> None:
    if suspension.withdrawn:
        flash(
            _(
                "Offers withdrawn: %(withdrawn)s; replacements assigned: %(replaced)s.",
                withdrawn=len(suspension.withdrawn),
                replaced=len(suspension.replacements),
            ),
            "info",
        )
    if suspension.accepted:
        flash(
            _(
                "Accepted assignments of the suspended expert: %(titles)s. Reassign them "
                "if needed (the list is on this page).",
                titles=", ".join(str(quote(a.review.program.title)) for a in suspension.accepted),
            ),
            "warning",
        )
    if suspension.left:
        flash(
            _(
                "Offers on reviews where you are an expert were left for another "
                "coordinator to withdraw: %(titles)s.",
                titles=", ".join(str(quote(a.review.program.title)) for a in suspension.left),
            ),
            "warning",
        )


@bp.post("/experts/<int:user_id>/reactivate")
@requires(can_manage_expert)
def reactivate(user_id: int):
    profile = _profile_or_404(user_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        with db.session.begin_nested():
            services.reactivate_expert(profile, current_user)
    except services.ExpertError as error:
        flash(str(error.message), "error")
    else:
        flash(_("The expert is active again: %(name)s.", name=profile.user.full_name), "success")
    return redirect(url_for(".view", user_id=user_id))


# --- the expert's own profile -----------------------------------------------------------


def _own_profile() -> ExpertProfile:
    profile = current_user.expert_profile
    ensure(can_edit_own_profile(current_user, profile))
    return profile


def _conflict_form(formdata=None) -> ConflictDeclarationForm:
    form = (
        ConflictDeclarationForm()
        if formdata is not None
        else ConflictDeclarationForm(formdata=None)
    )
    form.organization_id.choices = [("", "—")] + approved_organization_choices()
    return form


def _render_own(profile, form=None, period_form=None, conflict_form=None, status: int = 200):
    if form is None:
        form = ExpertProfileForm(obj=profile, formdata=None)
        form.directions.data = [d.value for d in Direction if d in profile.directions]
    return (
        render_template(
            "experts/profile.html",
            profile=profile,
            form=form,
            period_form=period_form or UnavailabilityForm(formdata=None),
            conflict_form=conflict_form or _conflict_form(),
            conflicts=conflicts_of_expert(profile.user_id),
            action_form=ActionForm(),
            load=queries.open_loads([profile.user_id]).get(profile.user_id, 0),
            today=local_today(),
        ),
        status,
    )


@bp.route("/expert/profile", methods=["GET", "POST"])
@requires(has_expert_profile)
def own_profile():
    profile = _own_profile()
    if request.method == "GET":
        return _render_own(profile)
    form = ExpertProfileForm()
    if form.validate_on_submit():
        try:
            with db.session.begin_nested():
                services.update_expert_profile(
                    profile,
                    current_user,
                    **{name: getattr(form, name).data for name in services.PROFILE_FIELDS},
                )
        except services.ExpertError as error:
            getattr(form, error.field or "directions").errors.append(str(error.message))
        else:
            flash(_("Changes saved."), "success")
            return redirect(url_for(".own_profile"))
    return _render_own(profile, form=form, status=400)


@bp.post("/expert/unavailability")
@requires(has_expert_profile)
def add_unavailability():
    profile = _own_profile()
    form = UnavailabilityForm()
    if form.validate_on_submit():
        try:
            with db.session.begin_nested():
                services.add_unavailability(
                    profile, current_user, form.starts_on.data, form.ends_on.data, form.reason.data
                )
        except services.ExpertError as error:
            getattr(form, error.field or "starts_on").errors.append(str(error.message))
        else:
            flash(_("The period of unavailability has been added."), "success")
            return redirect(url_for(".own_profile"))
    return _render_own(profile, period_form=form, status=400)


@bp.post("/expert/conflicts")
@requires(has_expert_profile)
def declare_conflict():
    profile = _own_profile()
    form = _conflict_form(request.form)
    if form.validate_on_submit():
        try:
            declare_organization_conflict(
                current_user, current_user, form.organization_id.data, form.text.data
            )
        except InvalidInput as error:
            form.organization_id.errors.append(str(error.message))
        else:
            flash(_("Your declaration of a conflict of interest has been recorded."), "success")
            return redirect(url_for(".own_profile"))
    return _render_own(profile, conflict_form=form, status=400)


@bp.post("/expert/unavailability/<int:period_id>/delete")
@requires(has_expert_profile)
def delete_unavailability(period_id: int):
    period = db.get_or_404(ExpertUnavailability, period_id)
    owner = db.session.get(ExpertProfile, period.expert_id)
    ensure(can_edit_own_profile(current_user, owner))
    if not ActionForm().validate_on_submit():
        abort(400)
    services.remove_unavailability(owner, current_user, period)
    flash(_("The period of unavailability has been removed."), "success")
    return redirect(url_for(".own_profile"))


# --- answering an assignment ------------------------------------------------------------


def _assignment_to_answer(assignment_id: int) -> Assignment:
    assignment = db.get_or_404(Assignment, assignment_id)
    ensure(can_respond_to_assignment(current_user, assignment))
    return assignment


@bp.post("/assignments/<int:assignment_id>/accept")
@requires(lambda user: True)
def accept(assignment_id: int):
    assignment = _assignment_to_answer(assignment_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        with db.session.begin_nested():
            accept_assignment(assignment, current_user)
    except AssignmentError as error:
        flash(str(error.message), "error")
    else:
        flash(
            _(
                "You have accepted the assignment. The deadline is %(date)s.",
                date=assignment.due_on.strftime("%d.%m.%Y"),
            ),
            "success",
        )
    return redirect(url_for("main.expert_home"))


@bp.post("/assignments/<int:assignment_id>/decline")
@requires(lambda user: True)
def decline(assignment_id: int):
    assignment = _assignment_to_answer(assignment_id)
    form = DeclineForm()
    if not form.validate_on_submit():
        flash(_("To decline an assignment, give the reason."), "error")
        return redirect(url_for("main.expert_home"))
    try:
        with db.session.begin_nested():
            decline_assignment(
                assignment,
                current_user,
                form.reason.data,
                conflict=form.conflict.data,
                whole_organization=form.whole_organization.data,
            )
    except AssignmentError as error:
        flash(str(error.message), "error")
    else:
        if form.conflict.data:
            flash(
                _(
                    "You have declined the assignment; your declaration of a conflict of "
                    "interest has been recorded."
                ),
                "success",
            )
        else:
            flash(_("You have declined the assignment."), "success")
    return redirect(url_for("main.expert_home"))
