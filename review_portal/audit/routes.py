"""The coordinator's view of the audit log: filters, pages, CSV export, chain check."""

from __future__ import annotations

import json

from flask import Blueprint, Response, abort, render_template, request, stream_with_context
from flask_babel import get_timezone
from flask_babel import gettext as _
from flask_login import current_user

from review_portal.audit.describe import describe_page, group_actions
from review_portal.audit.forms import AuditFilterForm
from review_portal.audit.services import events_query
from review_portal.audit.verification import verify_chain
from review_portal.extensions import db
from review_portal.input_guard import requested_page
from review_portal.permissions import can_view_audit, requires
from review_portal.spreadsheets import Code, CsvWriter

bp = Blueprint("audit", __name__, url_prefix="/audit")


def _filtered():
    form = AuditFilterForm(request.args)
    if not form.validate():
        return form, None
    stmt = events_query(
        user=form.user.data,
        object_type=form.object_type.data,
        object_id=form.object_id.data,
        action=form.action.data,
        actions=group_actions(form.group.data) if form.group.data else None,
        date_from=form.date_from.data,
        date_to=form.date_to.data,
        tz=str(get_timezone()),
        viewer=current_user,
    )
    return form, stmt


@bp.get("/")
@requires(can_view_audit)
def events():
    form, stmt = _filtered()
    page = (
        db.paginate(stmt, page=requested_page(), per_page=50, error_out=False)
        if stmt is not None
        else None
    )
    report = verify_chain() if request.args.get("verify") else None
    rows = describe_page(page.items, current_user) if page is not None else []
    return render_template("audit/events.html", form=form, page=page, rows=rows, report=report), (
        400 if stmt is None else 200
    )


def _json(value) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


@bp.get("/export.csv")
@requires(can_view_audit)
def export():
    form, stmt = _filtered()
    if stmt is None:
        abort(400)
    header = [
        _("Id"),
        _("Time (UTC)"),
        _("User"),
        _("IP address"),
        _("Action"),
        _("Object"),
        _("Object id"),
        _("Before"),
        _("After"),
        _("Hash"),
    ]

    writer = CsvWriter(header)

    def rows():
        yield writer.header()
        # A server-side cursor on PostgreSQL: closed even when the client stops reading.
        result = db.session.execute(stmt.execution_options(yield_per=500))
        try:
            yield from writer.rows(
                (
                    event.id,
                    # ISO 8601 to the microsecond, as text: the exact moment of the record.
                    event.occurred_at.isoformat(),
                    event.actor_label,
                    event.ip_address,
                    event.action,
                    event.object_type,
                    Code(event.object_id) if event.object_id is not None else None,
                    _json(event.before),
                    _json(event.after),
                    Code(event.hash) if event.hash else None,
                )
                for event in result.scalars()
            )
        finally:
            result.close()

    return Response(
        stream_with_context(rows()),
        mimetype="text/csv; charset=utf-8",
        headers={"Content-Disposition": "attachment; filename=audit.csv"},
    )
