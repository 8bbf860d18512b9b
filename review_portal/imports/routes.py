"""The coordinator's bulk import pages: the form with the documented columns, the import
itself (all or nothing, with a per-row report) and the header templates."""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, url_for
from flask_babel import ngettext
from flask_login import current_user

from review_portal.forms import form_page_too_large, on_too_large, refused_status
from review_portal.imports import services
from review_portal.imports.forms import ImportForm
from review_portal.organizations.services import municipality_choices
from review_portal.permissions import requires
from review_portal.programs.permissions import can_import

bp = Blueprint("imports", __name__)

_SUCCESS = {
    services.ORGANIZATIONS: lambda n: ngettext(
        "Imported %(num)s organization.", "Imported %(num)s organizations.", n
    ),
    services.PROGRAMS: lambda n: ngettext(
        "Imported %(num)s program as a draft.", "Imported %(num)s programs as drafts.", n
    ),
}


def _page(form: ImportForm, report=None, status: int = 200):
    return (
        render_template(
            "imports/import.html",
            form=form,
            report=report,
            columns=services.COLUMNS,
            municipalities=[name for _id, name in municipality_choices()],
            max_rows=services.MAX_ROWS,
        ),
        status,
    )


@bp.route("/import", methods=["GET", "POST"])
@on_too_large(form_page_too_large(ImportForm, _page))
@requires(can_import)
def upload():
    """The form, and the import: a refused file (a field error: 422, or 413 over the size
    limit; a file with problems: 422 with the report) writes nothing."""
    form = ImportForm()
    if not form.is_submitted():
        return _page(form)
    if not form.validate():
        return _page(form, status=refused_status(form))
    upload = form.file.data
    report = services.import_file(
        form.kind.data, upload.stream, current_user, filename=upload.filename
    )
    if not report.ok:
        return _page(form, report, status=422)
    flash(_SUCCESS[report.kind](report.created), "success")
    return redirect(url_for(".upload"))


@bp.get("/import/template/<any(organizations, programs):kind>.csv")
@requires(can_import)
def template(kind: str):
    return Response(
        services.template_csv(kind).encode("utf-8"),
        mimetype="text/csv; charset=utf-8",
        headers={"Content-Disposition": f"attachment; filename={kind}.csv"},
    )
