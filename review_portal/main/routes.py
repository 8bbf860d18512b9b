"""Landing page, per-role home pages, the health check and the language switch."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user
from sqlalchemy import text

from review_portal.accounts.services import home_endpoint
from review_portal.enums import AccountStatus, Role
from review_portal.extensions import db
from review_portal.main import services
from review_portal.organizations.queries import has_rival_claims
from review_portal.permissions import has_role, is_staff, requires
from review_portal.programs.models import Program
from review_portal.settings.services import get_setting
from review_portal.url_safety import safe_next_url

bp = Blueprint("main", __name__)


@bp.get("/")
def index():
    if current_user.is_authenticated:
        return redirect(url_for(home_endpoint(current_user)))
    contacts = {
        key: get_setting(key)
        for key in ("center_name", "region_name", "center_address", "center_phone", "center_email")
    }
    return render_template("main/index.html", contacts=contacts)


@bp.get("/home")
def home():
    if not current_user.is_authenticated:
        return redirect(url_for("accounts.login"))
    return redirect(url_for(home_endpoint(current_user)))


@bp.get("/pending")
@requires(lambda user: True)
def pending():
    endpoint = home_endpoint(current_user)
    # An approved account without any role has no other home: show it here, don't loop.
    if endpoint != "main.pending":
        return redirect(url_for(endpoint))
    organization = current_user.organization
    # A provider's registration naming an ИНН another organization holds or claims: the
    # page says how the claim is checked (nothing about the others).
    inn_claim = (
        current_user.status == AccountStatus.PENDING
        and organization is not None
        and organization.status == AccountStatus.PENDING
        and has_rival_claims(organization)
    )
    return render_template("main/pending.html", inn_claim=inn_claim)


@bp.get("/coordinator")
@requires(is_staff)
def coordinator_home():
    from review_portal.assignment.capacity import load_capacity_check

    return render_template(
        "main/coordinator_home.html",
        counts=services.count_by_state(),
        pending_registrations=services.pending_registrations_count(),
        capacity=load_capacity_check(),
    )


@bp.get("/provider")
@requires(lambda user: has_role(user, Role.APPLICANT))
def provider_home():
    return render_template(
        "main/provider_home.html",
        organization=current_user.organization,
        programs=services.organization_programs(current_user.organization_id),
    )


@bp.get("/expert")
@requires(lambda user: has_role(user, Role.EXPERT))
def expert_home():
    from review_portal.reconciliation.permissions import can_view_discussion

    # Each row's assignment comes with its review (the discussion links read it).
    groups = services.expert_assignments(current_user.id)
    discussions = [
        row for row in groups.submitted if can_view_discussion(current_user, row.assignment)
    ]
    return render_template("main/expert_home.html", groups=groups, discussions=discussions)


@bp.get("/municipal")
@requires(lambda user: has_role(user, Role.MUNICIPAL))
def municipal_home():
    from review_portal.assignment.services import local_today
    from review_portal.registry.validity import expiring_entries

    return render_template(
        "main/municipal_home.html",
        municipality=current_user.municipality,
        counts=services.count_by_state(Program.municipality_id == current_user.municipality_id),
        expiring=expiring_entries(current_user.municipality_id, local_today())
        if current_user.municipality_id is not None
        else [],
    )


@bp.post("/language")
def set_language():
    language = request.form.get("language")
    if language in current_app.config["LANGUAGES"]:
        session["locale"] = language
        if current_user.is_authenticated:
            current_user.locale = language
    return redirect(safe_next_url(request.form.get("next")) or url_for("main.index"))


@bp.get("/healthz")
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
        database = "ok"
    except Exception:  # the point is to report any failure, not to raise it
        current_app.logger.exception("health check: database unreachable")
        database = "error"
    status = "ok" if database == "ok" else "error"
    return jsonify(status=status, database=database), 200 if status == "ok" else 503
