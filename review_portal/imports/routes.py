"""The coordinator's bulk import pages: the form with the documented columns, the upload
(which queues the import as a background job), the import's own page (its progress, then
the outcome: the number imported, or the report by row and column) and the header
templates."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from review_portal.forms import form_page_too_large, on_too_large, refused_status
from review_portal.imports import services
from review_portal.imports.background import (
    candidates_digest,
    hold_for_mapping,
    import_job,
    pending_candidates,
    pending_header,
    pending_upload,
    start_import,
    start_mapped_import,
)
from review_portal.imports.forms import ImportForm, column_fields, mapping_form, value_fields
from review_portal.imports.mapping import suggest_mapping
from review_portal.jobs.services import queue_unavailable_message, start_in_background
from review_portal.organizations.services import municipality_choices
from review_portal.permissions import requires
from review_portal.programs.permissions import can_import

bp = Blueprint("imports", __name__)

#: Seconds between refreshes of the page of an import that has not ended.
REFRESH_SECONDS = 2

_SUCCESS = {
    services.ORGANIZATIONS: lambda n: ngettext(
        "Imported %(num)s organization.", "Imported %(num)s organizations.", n
    ),
    services.PROGRAMS: lambda n: ngettext(
        "Imported %(num)s program as a draft.", "Imported %(num)s programs as drafts.", n
    ),
}


def _page(form: ImportForm, report=None, status: int = 200, **outcome):
    return (
        render_template(
            "imports/import.html",
            form=form,
            report=report,
            columns=services.COLUMNS,
            municipalities=[name for _id, name in municipality_choices()],
            max_rows=services.MAX_ROWS,
            **outcome,
        ),
        status,
    )


@bp.route("/import", methods=["GET", "POST"])
@on_too_large(form_page_too_large(ImportForm, _page))
@requires(can_import)
def upload():
    """The form, and the upload: a file refused at once (a field error: 422, or 413 over
    the size limit; a file whose head shows it cannot be imported: 422 with the report)
    writes nothing; an accepted one is imported by a job whose page this redirects to."""
    form = ImportForm()
    if not form.is_submitted():
        return _page(form)
    if not form.validate():
        return _page(form, status=refused_status(form))
    upload = form.file.data
    report, job = start_import(
        form.kind.data, upload.stream, current_user, filename=upload.filename
    )
    if job is None and report.needs_mapping:
        token = hold_for_mapping(
            form.kind.data, upload.stream, current_user, report, upload.filename
        )
        if token is not None:
            return redirect(url_for(".mapping", token=token))
    if job is None:
        return _page(form, report, status=422)
    if report.saved_mapping_used:
        flash(
            _("The columns were read with the mapping saved for files with these columns."), "info"
        )
    return _started(job)


def _started(job):
    start_in_background(current_app._get_current_object(), job.id)
    if job.waiting_for_queue:
        flash(queue_unavailable_message(), "warning")
    return redirect(url_for(".status", job_id=job.id))


def _mapping_page(pending, form, report=None, status: int = 200, asked: bool = False):
    return (
        render_template(
            "imports/mapping.html",
            pending=pending,
            form=form,
            columns=column_fields(form),
            values=value_fields(form),
            report=report,
            asked=asked,
        ),
        status,
    )


@bp.route("/import/mapping/<token>", methods=["GET", "POST"])
@requires(can_import)
def mapping(token: str):
    """The mapping page of an uploaded file whose titles are not the portal's: a field
    (or "ignore") for each column and a portal word for each unknown word, suggested;
    posted, the mapping is saved for the file's layout and the import queued. The words
    are asked again (not imported) when the columns posted find words not shown."""
    pending = pending_upload(token[:1000], current_user)
    header = pending_header(pending) if pending is not None else None
    if header is None:
        abort(404)
    suggested = suggest_mapping(pending.kind, header)
    if request.method == "GET":
        candidates = pending_candidates(pending, suggested)
        form = mapping_form(pending.kind, header, suggested, candidates)
        form.shown.data = candidates_digest(candidates)
        return _mapping_page(pending, form)
    form = mapping_form(pending.kind, header, suggested, formdata=request.form)
    if not form.validate():
        return _mapping_page(pending, form, status=422)
    columns = {index: field.data for index, field in column_fields(form)}
    candidates = pending_candidates(pending, columns)
    form = mapping_form(pending.kind, header, suggested, candidates, formdata=request.form)
    digest = candidates_digest(candidates)
    if form.shown.data != digest:
        form.shown.data = digest
        return _mapping_page(pending, form, asked=True)
    if not form.validate():
        return _mapping_page(pending, form, status=422)
    values = {
        (candidate.field, candidate.value): field.data
        for candidate, (_number, field) in zip(candidates, value_fields(form), strict=True)
    }
    report, job = start_mapped_import(pending, current_user, header, columns, values)
    if job is None:
        return _mapping_page(pending, form, report, status=422)
    return _started(job)


@bp.get("/import/<int:job_id>")
@requires(can_import)
def status(job_id: int):
    """An import's page: its progress, refreshing itself while the job has not ended; then
    its outcome above the form, for the next file."""
    found = import_job(job_id)
    if found is None:
        abort(404)
    job, state = found
    if job.active:
        response = make_response(
            render_template("imports/status.html", job=job, state=state, refresh=REFRESH_SECONDS)
        )
        response.headers["Refresh"] = str(REFRESH_SECONDS)
        return response
    success = None
    if state.report is not None and state.report.created:
        success = _SUCCESS[state.kind](state.report.created)
    return _page(ImportForm(formdata=None), state.report, job=job, state=state, success=success)


@bp.get("/import/template/<any(organizations, programs):kind>.csv")
@requires(can_import)
def template(kind: str):
    return Response(
        services.template_csv(kind).encode("utf-8"),
        mimetype="text/csv; charset=utf-8",
        headers={"Content-Disposition": f"attachment; filename={kind}.csv"},
    )
