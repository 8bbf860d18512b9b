"""The coordinator's bulk import pages: the form with the documented columns, the import
itself (all or nothing, with a per-row report) and the header templates."""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, url_for
from flask_babel import ngettext
from flask_login import current_user

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


@bp.route("/import", methods=["GET", "POST"])
@requires(can_import)
def upload():
    form = ImportForm()
    report = None
    if form.validate_on_submit():
        upload = form.file.data
        report = services.import_file(
            form.kind.data, upload.stream, current_user, filename=upload.filename
        )
        if report.ok:
            flash(_SUCCESS[report.kind](report.created), "success")
            return redirect(url_for(".upload"))
    return render_template(
        "imports/import.html",
        form=form,
        report=report,
        columns=services.COLUMNS,
        municipalities=[name for _id, name in municipality_choices()],
        max_rows=services.MAX_ROWS,
    )


@bp.get("/import/template/<any(organizations, programs):kind>.csv")
@requires(can_import)
def template(kind: str):
    return Response(
        services.template_csv(kind).encode("utf-8"),
        mimetype="text/csv; charset=utf-8",
        headers={"Content-Disposition": f"attachment; filename={kind}.csv"},
    )
