"""The organization's profile, its colleagues and invitations; the coordinators' list."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from review_portal.enums import Role
from review_portal.extensions import db
from review_portal.forms import with_placeholder
from review_portal.input_guard import requested_page
from review_portal.organizations import services
from review_portal.organizations.forms import InviteForm, OrganizationProfileForm
from review_portal.organizations.models import Organization
from review_portal.organizations.permissions import (
    can_edit_organization,
    can_invite_colleagues,
    can_list_organizations,
    can_view_organization,
)
from review_portal.permissions import ensure, has_role, requires

bp = Blueprint("organizations", __name__)


def _render_profile(organization: Organization, invite_form=None, status: int = 200):
    return (
        render_template(
            "organizations/profile.html",
            organization=organization,
            colleagues=services.colleagues(organization),
            invitations=services.pending_invitations(organization),
            invite_form=invite_form or InviteForm(),
            can_edit=can_edit_organization(current_user, organization),
            can_invite=can_invite_colleagues(current_user, organization),
        ),
        status,
    )


@bp.get("/organization")
@requires(lambda user: has_role(user, Role.APPLICANT) and user.organization_id is not None)
def profile():
    return _render_profile(current_user.organization)


@bp.get("/organizations/<int:organization_id>")
@requires(lambda user: True)
def view(organization_id: int):
    organization = db.get_or_404(Organization, organization_id)
    ensure(can_view_organization(current_user, organization))
    return _render_profile(organization)


@bp.route("/organization/edit", methods=["GET", "POST"])
@requires(lambda user: has_role(user, Role.APPLICANT) and user.organization_id is not None)
def edit():
    organization = current_user.organization
    ensure(can_edit_organization(current_user, organization))
    form = OrganizationProfileForm(obj=organization)
    form.municipality_id.choices = with_placeholder(services.municipality_choices())
    if form.validate_on_submit():
        try:
            with db.session.begin_nested():
                services.update_organization_profile(
                    organization,
                    current_user,
                    **{name: getattr(form, name).data or None for name in services.PROFILE_FIELDS},
                )
        except services.OrganizationError as error:
            form.ogrn.errors.append(str(error))
        else:
            flash(_("Changes saved."), "success")
            return redirect(url_for("organizations.profile"))
    return render_template("organizations/edit.html", form=form, organization=organization)


@bp.post("/organization/invite")
@requires(lambda user: has_role(user, Role.APPLICANT) and user.organization_id is not None)
def invite():
    organization = current_user.organization
    ensure(can_invite_colleagues(current_user, organization))
    form = InviteForm()
    if form.validate_on_submit():
        try:
            with db.session.begin_nested():
                services.invite_colleague(organization, current_user, form.email.data)
        except services.OrganizationError as error:
            form.email.errors.append(str(error))
        else:
            flash(_("The invitation has been sent to %(email)s.", email=form.email.data), "success")
            return redirect(url_for("organizations.profile"))
    return _render_profile(organization, invite_form=form, status=400)


@bp.get("/organizations")
@requires(can_list_organizations)
def index():
    q = (request.args.get("q") or "").strip()
    stmt = (
        select(Organization)
        .options(selectinload(Organization.municipality))
        .order_by(Organization.short_name)
    )
    if q:
        stmt = stmt.where(
            or_(
                Organization.short_name.icontains(q, autoescape=True),
                Organization.full_name.icontains(q, autoescape=True),
                Organization.inn == q,
            )
        )
    page = db.paginate(stmt, page=requested_page(), per_page=50, error_out=False)
    return render_template("organizations/index.html", page=page, q=q)
