"""The analytics dashboard (progress and workload; agreement and calibration) and the CSV
and XLSX of each of its tables."""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, request
from flask_login import current_user

from review_portal.analytics import services
from review_portal.analytics.agreement import LOW_AGREEMENT
from review_portal.analytics.forms import PeriodForm
from review_portal.analytics.permissions import (
    analytics_municipality,
    can_export_table,
    can_view_analytics,
    can_view_calibration,
)
from review_portal.analytics.tables import display, to_csv, to_xlsx
from review_portal.assignment.services import local_today
from review_portal.permissions import ensure, open_seat_review_ids, requires
from review_portal.settings.services import get_setting

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

bp = Blueprint("analytics", __name__)


def _scope(form: PeriodForm) -> services.Scope:
    season, start, end = form.period(local_today())
    municipality = analytics_municipality(current_user)
    hidden = tuple(open_seat_review_ids(current_user))
    if season is not None:
        return services.Scope.for_season(season, municipality, hidden)
    return services.Scope(start, end, municipality, hidden_review_ids=hidden)


@bp.get("/analytics")
@requires(can_view_analytics)
def dashboard():
    return _page("overview", "analytics/dashboard.html")


@bp.get("/analytics/agreement")
@requires(can_view_analytics)
def agreement():
    return _page("agreement", "analytics/agreement.html")


def _page(page: str, template: str):
    form = PeriodForm(request.args)
    form.validate()
    full = can_view_calibration(current_user)
    board = services.build_dashboard(_scope(form), local_today(), full=full, page=page)
    return render_template(
        template,
        form=form,
        board=board,
        export_args=_export_args(),
        municipality=None if full else current_user.municipality.name,
        chart_of=services.chart_of,
        cell=display,
        chart_rows=services.CHART_ROWS,
        low_agreement=LOW_AGREEMENT,
        severity_flag=services.SEVERITY_FLAG,
        min_reviews=services.MIN_REVIEWS,
    )


def _export_args() -> dict:
    return {k: v for k, v in request.args.items() if k in ("season", "start", "end") and v}


@bp.get("/analytics/<name>.csv")
@requires(can_view_analytics)
def export(name: str):
    table, period = _export_table(name)
    return Response(
        to_csv(table),
        mimetype="text/csv; charset=utf-8",
        headers={"Content-Disposition": f"attachment; filename={name}_{period}.csv"},
    )


@bp.get("/analytics/<name>.xlsx")
@requires(can_view_analytics)
def export_xlsx(name: str):
    table, period = _export_table(name)
    data = to_xlsx(
        table,
        subtitle=period.replace("-", " – "),
        creator=get_setting("center_name") or get_setting("region_name"),
    )
    return Response(
        data,
        mimetype=XLSX_MIMETYPE,
        headers={"Content-Disposition": f"attachment; filename={name}_{period}.xlsx"},
    )


def _export_table(name: str) -> tuple:
    """The table ``name`` over the requested period, and the period as ``YYYYMMDD-YYYYMMDD``
    (``404`` for an unknown table, ``403`` for one the viewer may not download)."""
    if name not in services.TABLES:
        abort(404)
    ensure(can_export_table(current_user, name))
    form = PeriodForm(request.args)
    form.validate()
    scope = _scope(form)
    table = services.build_tables([name], scope, local_today())[name]
    return table, f"{scope.start:%Y%m%d}-{scope.end:%Y%m%d}"
