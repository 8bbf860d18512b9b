"""Appeal pages: the provider's filing form and appeal page, the coordinators' list and
their accept / refuse / decide steps (each confirmed first), the files, and the public
verification of a decision on an appeal with its PDF.

Routes load, check, call one service and return; the request's transaction is committed in
one place (:mod:`review_portal.unit_of_work`).
"""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from review_portal import storage
from review_portal.appeals import services
from review_portal.appeals.forms import AcceptForm, DecideForm, RefuseForm, appeal_form
from review_portal.appeals.models import Appeal, AppealFile
from review_portal.appeals.permissions import (
    TEMPLATE_PREDICATES,
    can_download_appeal_decision,
    can_download_appeal_file,
    can_file_appeal,
    can_handle_appeal,
    can_list_appeals,
    can_view_appeal,
    handles_appeal,
)
from review_portal.appeals.queries import appeal_list
from review_portal.conclusions.models import Conclusion
from review_portal.conclusions.routes import INLINE_PDF_POLICY, wants_json
from review_portal.confirmation import confirmation, previewing
from review_portal.enums import AppealState, Decision, RefusalGround
from review_portal.errors import DomainError
from review_portal.extensions import db
from review_portal.forms import on_too_large, refused_status, too_large_message
from review_portal.i18n import local_date
from review_portal.input_guard import requested_page
from review_portal.permissions import ensure, open_seat_review_ids, requires
from review_portal.programs.document_routes import content_disposition
from review_portal.reviews.queries import rubric_of
from review_portal.workflow import APPEAL_FINAL_STATES

bp = Blueprint("appeals", __name__)


@bp.record_once
def _expose(state) -> None:
    state.app.jinja_env.globals.update(TEMPLATE_PREDICATES)
    state.app.jinja_env.globals["appeal_of"] = services.appeal_of
    state.app.jinja_env.globals["appeal_window_ends_on"] = services.window_ends_on


# --- the provider ----------------------------------------------------------------------------


def _filing_page_too_large():
    """The filing page with the size message (413), for a request over the limit."""
    conclusion = db.session.get(Conclusion, request.view_args.get("conclusion_id", 0))
    if (
        conclusion is None
        or not current_user.is_authenticated
        or not can_file_appeal(current_user, conclusion)
    ):
        return None
    rubric = rubric_of(conclusion.review)
    form = appeal_form(rubric, formdata=None)
    form.file.errors = [too_large_message()]
    return _filing_page(conclusion, form, rubric, status=413)


@bp.route("/conclusions/<int:conclusion_id>/appeal", methods=["GET", "POST"])
@requires(lambda user: True)
@on_too_large(_filing_page_too_large)
def new(conclusion_id: int):
    conclusion = db.get_or_404(Conclusion, conclusion_id)
    ensure(can_file_appeal(current_user, conclusion))
    rubric = rubric_of(conclusion.review)
    form = appeal_form(rubric)
    if request.method == "GET":
        return _filing_page(conclusion, form, rubric)
    if not form.validate_on_submit():
        return _filing_page(conclusion, form, rubric, status=refused_status(form))
    try:
        with db.session.begin_nested():
            appeal = services.file_appeal(
                conclusion, current_user, form.reasons(), request.files.getlist("file")
            )
    except DomainError as error:
        return _filing_page(conclusion, form, rubric, error=error.message, status=422)
    flash(
        _(
            "Your appeal against conclusion № %(number)s is filed. The center will accept it "
            "for consideration or refuse it; you will be notified.",
            number=conclusion.number,
        ),
        "success",
    )
    return redirect(url_for("appeals.show", appeal_id=appeal.id))


def _filing_page(conclusion, form, rubric, *, error=None, status: int = 200):
    return (
        render_template(
            "appeals/new.html",
            conclusion=conclusion,
            form=form,
            rubric=rubric,
            final=(conclusion.review.final_result or {}).get("scores") or {},
            ends_on=services.window_ends_on(conclusion),
            max_files=services.MAX_FILES,
            error=error,
        ),
        status,
    )


# --- reading ---------------------------------------------------------------------------------


@bp.get("/appeals")
@requires(can_list_appeals)
def index():
    state = request.args.get("state", "")
    chosen = AppealState(state) if state in AppealState._value2member_map_ else None
    hidden = open_seat_review_ids(current_user)
    page = db.paginate(
        appeal_list(chosen, hidden), page=requested_page(), per_page=50, error_out=False
    )
    return render_template("appeals/index.html", page=page, chosen=chosen, states=AppealState)


@bp.get("/appeals/<int:appeal_id>")
@requires(lambda user: True)
def show(appeal_id: int):
    appeal = db.get_or_404(Appeal, appeal_id)
    ensure(can_view_appeal(current_user, appeal))
    return _appeal_page(appeal)


def _appeal_page(appeal, *, refuse_form=None, decide_form=None, error=None, status: int = 200):
    rubric = rubric_of(appeal.review)
    panel = appeal.panel_review
    decide_form = decide_form or DecideForm(
        formdata=None,
        decision=(panel.computed_decision.value if panel and panel.computed_decision else None),
    )
    return (
        render_template(
            "appeals/show.html",
            appeal=appeal,
            titles={c.id: c.title for c in rubric.criteria},
            final=(appeal.review.final_result or {}).get("scores") or {},
            panel=panel,
            # The panel's scores once the appeal is decided (the staff: as soon as they are in).
            panel_final=((panel.final_result or {}).get("scores") or {})
            if panel is not None
            and (appeal.state in APPEAL_FINAL_STATES or handles_appeal(current_user, appeal))
            else {},
            accept_form=AcceptForm(formdata=None),
            refuse_form=refuse_form or RefuseForm(formdata=None),
            decide_form=decide_form,
            filed_on=local_date(appeal.filed_at),
            error=error,
        ),
        status,
    )


@bp.get("/appeals/<int:appeal_id>/files/<int:file_id>")
@requires(lambda user: True)
def file(appeal_id: int, file_id: int):
    appeal = db.get_or_404(Appeal, appeal_id)
    ensure(can_download_appeal_file(current_user, appeal))
    attached = db.session.execute(
        select(AppealFile).where(AppealFile.id == file_id, AppealFile.appeal_id == appeal.id)
    ).scalar_one_or_none()
    if attached is None:
        abort(404)
    stored = attached.file
    response = Response(storage.read_bytes(stored.sha256), mimetype=stored.media_type)
    response.headers["Content-Disposition"] = content_disposition("attachment", attached.name)
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.cache_control.private = True
    return response


# --- the coordinator -------------------------------------------------------------------------


@bp.post("/appeals/<int:appeal_id>/accept")
@requires(lambda user: True)
def accept(appeal_id: int):
    appeal = db.get_or_404(Appeal, appeal_id)
    ensure(can_handle_appeal(current_user, appeal))
    if not AcceptForm().validate_on_submit():
        abort(400)
    if previewing():
        try:
            services.check_acceptance(appeal)
        except DomainError as error:
            return _appeal_page(appeal, error=error.message, status=422)
        rubric = rubric_of(appeal.review)
        scope = getattr(rubric, "appeal_scope", "contested")
        return confirmation(
            _("Accept the appeal against conclusion № %(number)s", number=appeal.conclusion.number),
            [
                _(
                    "A new panel of experts who never sat on this program's reviews is "
                    "assigned at once by the usual rules; the program is under review again."
                ),
                _(
                    "The panel scores the contested criteria: %(criteria)s.",
                    criteria=", ".join(appeal.contested),
                )
                if scope == "contested"
                else _("The panel scores the whole sheet."),
                _("The provider is told that the appeal is accepted. This cannot be undone."),
            ],
            button=_("Accept the appeal"),
            back=url_for("appeals.show", appeal_id=appeal.id),
        )
    try:
        with db.session.begin_nested():
            panel = services.accept_appeal(appeal, current_user)
    except DomainError as error:
        return _appeal_page(appeal, error=error.message, status=422)
    assigned = sum(1 for a in panel.assignments)
    flash(
        _(
            "The appeal is accepted; experts assigned to the panel: %(count)s.",
            count=assigned,
        ),
        "success",
    )
    return redirect(url_for("appeals.show", appeal_id=appeal.id))


@bp.post("/appeals/<int:appeal_id>/refuse")
@requires(lambda user: True)
def refuse(appeal_id: int):
    appeal = db.get_or_404(Appeal, appeal_id)
    ensure(can_handle_appeal(current_user, appeal))
    form = RefuseForm()
    if not form.validate_on_submit():
        return _appeal_page(appeal, refuse_form=form, status=422)
    if appeal.state != AppealState.FILED:
        return _appeal_page(
            appeal, error=_("This appeal is no longer waiting for a decision."), status=422
        )
    ground = RefusalGround(form.ground.data)
    if previewing():
        return confirmation(
            _("Refuse the appeal against conclusion № %(number)s", number=appeal.conclusion.number),
            [
                _(
                    "The appeal is refused (%(ground)s) for good; conclusion № %(number)s stands.",
                    ground=ground.label,
                    number=appeal.conclusion.number,
                ),
                _("The provider reads your reason: %(reason)s", reason=form.reason.data),
            ],
            button=_("Refuse the appeal"),
            back=url_for("appeals.show", appeal_id=appeal.id),
            style="danger",
        )
    try:
        with db.session.begin_nested():
            services.refuse_appeal(appeal, current_user, ground, form.reason.data)
    except DomainError as error:
        return _appeal_page(appeal, refuse_form=form, error=error.message, status=422)
    flash(_("The appeal is refused; the provider is told why."), "success")
    return redirect(url_for("appeals.show", appeal_id=appeal.id))


@bp.post("/appeals/<int:appeal_id>/decide")
@requires(lambda user: True)
def decide(appeal_id: int):
    appeal = db.get_or_404(Appeal, appeal_id)
    ensure(can_handle_appeal(current_user, appeal))
    form = DecideForm()
    if not form.validate_on_submit():
        return _appeal_page(appeal, decide_form=form, status=422)
    decision = Decision(form.decision.data)
    answer = form.answer.data or ""
    try:
        outcome = services.check_appeal_decision(appeal, decision, answer)
    except DomainError as error:
        return _appeal_page(appeal, decide_form=form, error=error.message, status=422)
    if previewing():
        if outcome.upheld:
            lines = [
                _(
                    "The appeal is upheld: the program is %(decision)s. A new conclusion is "
                    "issued and supersedes conclusion № %(number)s, whose verification page "
                    "then says so.",
                    decision=decision.label,
                    number=appeal.conclusion.number,
                )
            ]
            if decision == Decision.ADMITTED:
                lines.append(_("The program enters the registry's pending changes."))
        else:
            lines = [
                _(
                    "The appeal is dismissed: conclusion № %(number)s stands. The decision on "
                    "the appeal is issued with its own number and your reasoned answer.",
                    number=appeal.conclusion.number,
                )
            ]
        lines.append(_("The provider is told. This cannot be undone."))
        return confirmation(
            _("Decide the appeal against conclusion № %(number)s", number=appeal.conclusion.number),
            lines,
            button=_("Confirm the decision on the appeal"),
            back=url_for("appeals.show", appeal_id=appeal.id),
            busy=_("Issuing the document…"),
        )
    try:
        with db.session.begin_nested():
            services.decide_appeal(appeal, current_user, decision, answer)
    except DomainError as error:
        return _appeal_page(appeal, decide_form=form, error=error.message, status=422)
    if appeal.state == AppealState.UPHELD:
        flash(
            _(
                "The appeal is upheld; conclusion № %(number)s is issued.",
                number=appeal.new_conclusion.number,
            ),
            "success",
        )
    else:
        flash(
            _("The appeal is dismissed; decision № %(number)s is issued.", number=appeal.number),
            "success",
        )
    return redirect(url_for("appeals.show", appeal_id=appeal.id))


# --- public verification ---------------------------------------------------------------------


@bp.get("/verify/appeal/<conclusion_number:number>")
def verify(number: str):
    appeal = services.find_decision(number)
    if appeal is None:
        if wants_json():
            return jsonify(error="not_found"), 404
        return render_template("appeals/not_found.html", number=number), 404
    facts = {
        "appeal": appeal,
        "title": appeal.review.version.title,
        "organization": appeal.review.program.organization.full_name,
        "issued_on": local_date(appeal.issued_at),
    }
    if wants_json():
        return jsonify(
            {
                "number": appeal.number,
                "kind": "appeal_decision",
                "valid": True,
                "outcome": appeal.state.value,
                "program": {"title": facts["title"], "organization": facts["organization"]},
                "conclusion": appeal.conclusion.number,
                "conclusion_status": appeal.conclusion.status.value,
                "issued_on": facts["issued_on"].isoformat(),
                "sha256": appeal.sha256,
                "content_sha256": appeal.content_sha256,
            }
        )
    return render_template("appeals/verify.html", **facts)


@bp.get("/verify/appeal/<conclusion_number:number>.pdf")
def pdf(number: str):
    appeal = services.find_decision(number)
    if appeal is None:
        abort(404)
    if not current_user.is_authenticated:
        from review_portal.extensions import login_manager

        return login_manager.unauthorized()
    ensure(can_download_appeal_decision(current_user, appeal))
    response = Response(services.stored_decision_pdf(appeal), mimetype="application/pdf")
    response.headers["Content-Disposition"] = content_disposition(
        "inline", f"appeal-decision-{appeal.number}.pdf"
    )
    response.headers["Content-Security-Policy"] = INLINE_PDF_POLICY
    response.set_etag(appeal.sha256)
    response.cache_control.private = True
    response.cache_control.no_cache = True
    return response.make_conditional(request)
