"""Programs: list, create, edit, view with timeline and versions, submit, withdraw."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from review_portal.confirmation import confirmation, previewing
from review_portal.extensions import db
from review_portal.forms import options, with_placeholder
from review_portal.i18n import quote
from review_portal.input_guard import requested_page
from review_portal.organizations.services import municipality_choices
from review_portal.permissions import ensure, is_staff, requires
from review_portal.programs import queries, services
from review_portal.programs.forms import (
    ActionForm,
    OptionalReasonForm,
    ProgramFilterForm,
    ProgramForm,
    ReasonForm,
)
from review_portal.programs.models import Program, ProgramVersion
from review_portal.programs.permissions import (
    can_create_program,
    can_edit_program,
    can_renew_program,
    can_submit_program,
    can_view_program,
    can_view_program_list,
    can_view_result,
    can_withdraw_program,
)
from review_portal.workflow import ReviewState, WorkflowError

bp = Blueprint("programs", __name__, url_prefix="/programs")

PER_PAGE = 25


def _filter_form() -> ProgramFilterForm:
    form = ProgramFilterForm(request.args)
    form.state.choices = options([("", _("All"))] + ReviewState.choices())
    form.municipality_id.choices = options(
        [("", _("All"))] + [(str(i), name) for i, name in municipality_choices()]
    )
    return form


@bp.get("/")
@requires(can_view_program_list)
def index():
    form = _filter_form()
    if not form.validate():
        abort(400)
    stmt = queries.filter_programs(
        queries.visible_programs(current_user),
        q=form.q.data,
        state=form.state.data or None,
        direction=form.direction.data or None,
        municipality_id=int(form.municipality_id.data) if form.municipality_id.data else None,
        organization=form.organization.data if is_staff(current_user) else None,
    ).order_by(Program.updated_at.desc(), Program.id.desc())
    page = db.paginate(stmt, page=requested_page(), per_page=PER_PAGE, error_out=False)
    return render_template("programs/index.html", form=form, page=page)


@bp.route("/new", methods=["GET", "POST"])
@requires(can_create_program)
def create():
    form = ProgramForm()
    form.municipality_id.choices = with_placeholder(municipality_choices())
    if request.method == "GET":
        form.municipality_id.data = current_user.organization.municipality_id
    if form.validate_on_submit():
        program = services.create_program(current_user.organization, current_user, **form.to_data())
        flash(_("The program has been created. Upload the program document."), "success")
        return redirect(url_for("programs.view", program_id=program.id))
    return render_template("programs/form.html", form=form, program=None)


@bp.route("/<int:program_id>/edit", methods=["GET", "POST"])
@requires(lambda user: True)
def edit(program_id: int):
    program = db.get_or_404(Program, program_id)
    ensure(can_edit_program(current_user, program))
    form = ProgramForm.from_program(program) if request.method == "GET" else ProgramForm()
    form.municipality_id.choices = with_placeholder(municipality_choices())
    if form.validate_on_submit():
        try:
            with db.session.begin_nested():
                services.update_program(program, current_user, **form.to_data())
        except WorkflowError as error:
            flash(str(error.message), "error")
        else:
            flash(_("Changes saved."), "success")
            return redirect(url_for("programs.view", program_id=program.id))
    return render_template("programs/form.html", form=form, program=program)


def render_view(program: Program, status: int = 200, upload_error=None, **forms):
    """The program's page; ``forms`` replace the empty action forms (to show their errors),
    ``upload_error`` is shown at the upload form (a refused file). The empty forms never read
    the request (``formdata=None``): after a refused POST, the body may be one never read."""
    context = {
        "unchanged_document": queries.unchanged_program_document(program)
        if can_submit_program(current_user, program)
        else None,
        "action_form": ActionForm(formdata=None),
        "withdraw_form": OptionalReasonForm(formdata=None),
        "return_form": ReasonForm(formdata=None),
        "upload_error": upload_error,
        **forms,
    }
    return (
        render_template(
            "programs/view.html",
            program=program,
            timeline=queries.program_timeline(program),
            results=[r for r in program.reviews if can_view_result(current_user, r)],
            **context,
        ),
        status,
    )


@bp.get("/<int:program_id>")
@requires(lambda user: True)
def view(program_id: int):
    program = db.get_or_404(Program, program_id)
    ensure(can_view_program(current_user, program))
    return render_view(program)


@bp.get("/<int:program_id>/versions/<int:number>")
@requires(lambda user: True)
def version(program_id: int, number: int):
    program = db.get_or_404(Program, program_id)
    ensure(can_view_program(current_user, program))
    version = db.session.execute(
        select(ProgramVersion).where(
            ProgramVersion.program_id == program.id, ProgramVersion.number == number
        )
    ).scalar_one_or_none()
    if version is None:
        abort(404)
    return render_template("programs/version.html", program=program, version=version)


@bp.post("/<int:program_id>/submit")
@requires(lambda user: True)
def submit(program_id: int):
    program = db.get_or_404(Program, program_id)
    ensure(can_submit_program(current_user, program))
    if not ActionForm().validate_on_submit():
        abort(400)
    if previewing():
        try:
            services.check_submission(program, current_user)
        except WorkflowError as error:
            flash(str(error.message), "error")
            return redirect(url_for("programs.view", program_id=program.id))
        version = len(program.versions) + 1
        unchanged = queries.unchanged_program_document(program)
        warning = (
            [
                _(
                    "Attention: the program document is the same file as in version "
                    "%(n)s. If you have corrected the text, go back and upload it as the "
                    "program document first.",
                    n=unchanged.number,
                )
            ]
            if unchanged is not None
            else []
        )
        return confirmation(
            _("Submit the program for assessment"),
            [
                *warning,
                _(
                    "The program %(title)s and its files are fixed as version %(version)s "
                    "and sent to the regional model center for screening.",
                    title=quote(program.title),
                    version=version,
                ),
                _(
                    "The program card and its files cannot be changed until the center "
                    "returns the program for fixes or decides that it needs revision."
                ),
            ],
            button=_("Submit for assessment"),
            back=url_for("programs.view", program_id=program.id),
        )
    try:
        with db.session.begin_nested():
            services.submit_program(program, current_user)
    except WorkflowError as error:
        flash(str(error.message), "error")
    else:
        flash(_("The program has been submitted for assessment."), "success")
    return redirect(url_for("programs.view", program_id=program.id))


@bp.post("/<int:program_id>/renew")
@requires(lambda user: True)
def renew(program_id: int):
    """Submit an admitted program for renewal: a new draft round (confirmed first)."""
    program = db.get_or_404(Program, program_id)
    ensure(can_renew_program(current_user, program))
    if not ActionForm().validate_on_submit():
        abort(400)
    entry = services.renewal_entry(program)
    if previewing():
        return confirmation(
            _("Submit the program for renewal"),
            [
                _(
                    "The registry entry № %(number)s of %(title)s is valid until %(date)s.",
                    number=entry.registry_number,
                    title=quote(program.title),
                    date=entry.valid_until.strftime("%d.%m.%Y"),
                ),
                _(
                    "The program becomes a draft of a new round: update the card and the "
                    "program document, then submit it; it goes through a new assessment by "
                    "the same rules (its previous experts preferred)."
                ),
                _(
                    "The entry stays in the registry meanwhile. If the renewal is admitted, "
                    "the entry keeps its number and gets a new end date at the next "
                    "publication; otherwise it leaves the registry after its end date."
                ),
            ],
            button=_("Start the renewal"),
            back=url_for("programs.view", program_id=program.id),
        )
    try:
        with db.session.begin_nested():
            services.start_renewal(program, current_user)
    except WorkflowError as error:
        flash(str(error.message), "error")
    else:
        flash(
            _("The renewal has started: update the program and submit it for assessment."),
            "success",
        )
    return redirect(url_for("programs.view", program_id=program.id))


@bp.post("/<int:program_id>/withdraw")
@requires(lambda user: True)
def withdraw(program_id: int):
    program = db.get_or_404(Program, program_id)
    ensure(can_withdraw_program(current_user, program))
    form = OptionalReasonForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        with db.session.begin_nested():
            services.withdraw_program(program, current_user, reason=form.reason.data)
    except WorkflowError as error:
        flash(str(error.message), "error")
    else:
        flash(_("The program has been withdrawn."), "success")
    return redirect(url_for("programs.view", program_id=program.id))
