"""The administrator's management of users and roles."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from review_portal.accounts import services
from review_portal.accounts.forms import UserFilterForm, UserForm
from review_portal.accounts.loader import renew_login
from review_portal.accounts.models import User
from review_portal.enums import Role
from review_portal.extensions import db
from review_portal.forms import options
from review_portal.input_guard import requested_page
from review_portal.organizations.services import find_organization_by_inn, municipality_choices
from review_portal.permissions import can_manage_users, requires

bp = Blueprint("users", __name__, url_prefix="/admin/users")


def _user_form(**kwargs) -> UserForm:
    form = UserForm(**kwargs)
    form.municipality_id.choices = options([("", "—")] + municipality_choices())
    return form


def _relations(form: UserForm, user: User | None = None):
    """The municipality and organization the form names; a field error when unknown.

    The organization is the one holding the ИНН, except that a user whose own
    organization has this ИНН keeps it: several organizations may name one ИНН (claims,
    one that lost it), and editing a user never moves them to another of them."""
    municipality_id = None
    if form.municipality_id.data:
        known = {str(value) for value, _label in municipality_choices()}
        if form.municipality_id.data not in known:
            form.municipality_id.errors.append(_("Choose a municipality from the list."))
            return None
        municipality_id = int(form.municipality_id.data)
    organization_id = None
    own = user.organization if user is not None else None
    if own is not None and form.organization_inn.data == own.inn:
        organization_id = own.id
    elif form.organization_inn.data:
        organization = find_organization_by_inn(form.organization_inn.data)
        if organization is None:
            form.organization_inn.errors.append(_("No organization with this INN is registered."))
            return None
        organization_id = organization.id
    return municipality_id, organization_id


@bp.get("/")
@requires(can_manage_users)
def index():
    form = UserFilterForm(request.args)
    if not form.validate():
        abort(400)
    stmt = services.users_query(role=form.role.data, active=form.active.data, q=form.q.data)
    page = db.paginate(stmt, page=requested_page(), per_page=50, error_out=False)
    return render_template("accounts/users.html", form=form, page=page)


@bp.route("/new", methods=["GET", "POST"])
@requires(can_manage_users)
def create():
    form = _user_form()
    if form.validate_on_submit():
        relations = _relations(form)
        if services.email_taken(form.email.data):
            form.email.errors.append(_("An account with this e-mail already exists."))
        elif relations is not None:
            try:
                with db.session.begin_nested():
                    user = services.create_user_by_admin(
                        current_user,
                        email=form.email.data,
                        full_name=form.full_name.data,
                        roles=[Role(r) for r in form.roles.data],
                        municipality_id=relations[0],
                        organization_id=relations[1],
                    )
            except services.AccountError as error:
                form.roles.errors.append(str(error))
            else:
                flash(_("Account created; a link to set the password was sent."), "success")
                return redirect(url_for("users.edit", user_id=user.id))
    return render_template("accounts/user_form.html", form=form, user=None)


@bp.route("/<int:user_id>", methods=["GET", "POST"])
@requires(can_manage_users)
def edit(user_id: int):
    user = db.get_or_404(User, user_id)
    form = _user_form(
        obj=user,
        data=None
        if request.method == "POST"
        else {
            "roles": [r.value for r in user.roles],
            "municipality_id": str(user.municipality_id or ""),
            "organization_inn": user.organization.inn if user.organization else "",
        },
    )
    form.email.render_kw = {"readonly": True}
    if request.method == "POST":
        form.email.data = user.email
    if form.validate_on_submit():
        relations = _relations(form, user)
        if relations is not None:
            try:
                with db.session.begin_nested():
                    services.update_user(
                        user,
                        current_user,
                        full_name=form.full_name.data,
                        roles=[Role(r) for r in form.roles.data],
                        active=form.active.data,
                        municipality_id=relations[0],
                        organization_id=relations[1],
                    )
            except services.AccountError as error:
                form.roles.errors.append(str(error))
            else:
                if user.id == current_user.id:
                    # New roles of one's own ended one's sessions: keep this one.
                    renew_login(user)
                flash(_("Changes saved."), "success")
                return redirect(url_for("users.edit", user_id=user.id))
    return render_template("accounts/user_form.html", form=form, user=user)
