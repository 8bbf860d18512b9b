"""Routes of the accounts domain: log in/out, registration (also by invitation), approval,
passwords."""

from __future__ import annotations

from functools import wraps

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from review_portal.accounts import services, throttle
from review_portal.accounts.forms import (
    AcceptInvitationForm,
    ActionForm,
    ChangePasswordForm,
    ExpertRegistrationForm,
    LoginForm,
    ProviderRegistrationForm,
    RegistrationFilterForm,
    RejectForm,
    ResetPasswordForm,
    ResetRequestForm,
    TransferInnForm,
)
from review_portal.accounts.loader import renew_login
from review_portal.accounts.models import User
from review_portal.accounts.services import home_endpoint
from review_portal.enums import AccountStatus
from review_portal.extensions import db
from review_portal.forms import options, with_placeholder
from review_portal.input_guard import requested_page
from review_portal.organizations.queries import live_rivals, others_with_inn, users_of
from review_portal.organizations.services import find_invitation, municipality_choices
from review_portal.permissions import can_approve_registrations, requires
from review_portal.throttling import count_failure, throttled
from review_portal.url_safety import safe_next_url

bp = Blueprint("accounts", __name__)

PER_PAGE = 25


@bp.route("/login", methods=["GET", "POST"])
@throttled(*throttle.LOGIN)
def login():
    if current_user.is_authenticated:
        return redirect(url_for(home_endpoint(current_user)))
    form = LoginForm()
    if form.validate_on_submit():
        user = services.authenticate(form.email.data, form.password.data)
        if user is None:
            count_failure()
            flash(_("Wrong e-mail or password."), "error")
            return render_template("accounts/login.html", form=form), 200
        login_user(user, remember=form.remember.data)
        return throttle.login_succeeded(
            redirect(safe_next_url(request.args.get("next")) or url_for(home_endpoint(user))),
            user.email,
        )
    return render_template("accounts/login.html", form=form)


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        # Not only this browser's session: every copy of it and every remember cookie.
        services.log_out(current_user._get_current_object())
    logout_user()
    flash(_("You have logged out."), "info")
    return redirect(url_for("main.index"))


def signed_out_only(view):
    """Registration is for visitors: a signed-in user (any method) goes to their home page
    with a message, and nothing is created."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if current_user.is_authenticated:
            flash(
                _("You are already signed in. To register another account, log out first."),
                "info",
            )
            return redirect(url_for(home_endpoint(current_user)))
        return view(*args, **kwargs)

    return wrapper


@bp.route("/register/provider", methods=["GET", "POST"])
@throttled(throttle.REGISTRATION)
@signed_out_only
def register_provider():
    form = ProviderRegistrationForm()
    form.municipality_id.choices = with_placeholder(municipality_choices())
    if form.validate_on_submit():
        if services.email_taken(form.email.data):
            form.email.errors.append(_("An account with this e-mail already exists."))
        else:
            try:
                with db.session.begin_nested():
                    user = services.register_provider(
                        services.NewUser(
                            form.email.data,
                            form.password.data,
                            form.full_name.data,
                            form.phone.data,
                        ),
                        full_name=form.org_full_name.data,
                        short_name=form.org_short_name.data,
                        inn=form.inn.data,
                        ogrn=form.ogrn.data,
                        kind=form.org_kind.data,
                        municipality_id=form.municipality_id.data,
                        address=form.address.data,
                        consent=form.consent.data,
                    )
            except services.AccountError as error:
                form.inn.errors.append(str(error))
            else:
                login_user(user)
                return redirect(url_for("main.pending"))
    return render_template("accounts/register_provider.html", form=form)


@bp.route("/register/expert", methods=["GET", "POST"])
@throttled(throttle.REGISTRATION)
@signed_out_only
def register_expert():
    form = ExpertRegistrationForm()
    form.municipality_id.choices = with_placeholder(municipality_choices())
    if form.validate_on_submit():
        if services.email_taken(form.email.data):
            form.email.errors.append(_("An account with this e-mail already exists."))
        else:
            user = services.register_expert(
                services.NewUser(
                    form.email.data, form.password.data, form.full_name.data, form.phone.data
                ),
                municipality_id=form.municipality_id.data,
                home_organization_name=form.home_organization_name.data,
                home_organization_inn=form.home_organization_inn.data,
                position=form.position.data,
                directions=form.directions.data,
                qualification=form.qualification.data,
                experience_years=form.experience_years.data,
                capacity=form.capacity.data,
                consent=form.consent.data,
            )
            login_user(user)
            return redirect(url_for("main.pending"))
    return render_template("accounts/register_expert.html", form=form)


@bp.route("/invite/<token>", methods=["GET", "POST"])
def accept_invitation(token: str):
    """An applicant's colleague creates their account from the invitation's link."""
    invitation = find_invitation(token)
    if invitation is None:
        flash(_("The invitation is invalid, used or expired."), "error")
        return redirect(url_for("main.index"))
    form = AcceptInvitationForm()
    if form.validate_on_submit():
        user = services.accept_invitation(
            token,
            full_name=form.full_name.data,
            password=form.password.data,
            consent=form.consent.data,
        )
        login_user(user)
        flash(_("Welcome! Your account has been created."), "success")
        return redirect(url_for("main.provider_home"))
    return render_template("accounts/accept_invitation.html", form=form, invitation=invitation)


@bp.get("/registrations")
@requires(can_approve_registrations)
def registrations():
    form = RegistrationFilterForm(request.args)
    form.municipality_id.choices = options(
        [("", _("All"))] + [(str(i), name) for i, name in municipality_choices()]
    )
    if not form.validate():
        abort(400)
    stmt = services.registrations_query(
        role=form.role.data or None,
        status=form.status.data if "status" in request.args else form.status.default,
        municipality_id=int(form.municipality_id.data) if form.municipality_id.data else None,
        q=form.q.data or None,
    )
    page = db.paginate(stmt, page=requested_page(), per_page=PER_PAGE, error_out=False)
    rivals = live_rivals(user.organization for user in page.items)
    return render_template("accounts/registrations.html", form=form, page=page, rivals=rivals)


def _render_registration(
    user: User, status: int = 200, *, reject_form=None, transfer_form=None, inn_error=None
):
    """The registration's page; for a provider, with the other organizations naming the same
    ИНН and their users (the claims the coordinator decides)."""
    organization = user.organization
    others = others_with_inn(organization) if organization is not None else []
    return (
        render_template(
            "accounts/registration.html",
            user=user,
            others=others,
            holder=next((o for o in others if o.status == AccountStatus.APPROVED), None),
            users_of=users_of(others),
            action_form=ActionForm(),
            reject_form=reject_form or RejectForm(),
            transfer_form=transfer_form or TransferInnForm(),
            inn_error=inn_error,
        ),
        status,
    )


@bp.get("/registrations/<int:user_id>")
@requires(can_approve_registrations)
def registration(user_id: int):
    return _render_registration(db.get_or_404(User, user_id))


@bp.post("/registrations/<int:user_id>/approve")
@requires(can_approve_registrations)
def approve(user_id: int):
    user = db.get_or_404(User, user_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        with db.session.begin_nested():
            services.approve_registration(user, current_user)
    except services.InnHeld as error:
        # Not an accident to undo later: the page says who holds the ИНН and offers the
        # explicit transfer.
        return _render_registration(user, error.status, inn_error=str(error))
    except services.AccountError as error:
        flash(str(error), "error")
        return redirect(url_for("accounts.registration", user_id=user_id))
    flash(_("Registration approved: %(name)s.", name=user.full_name), "success")
    return redirect(url_for("accounts.registrations"))


@bp.post("/registrations/<int:user_id>/transfer-inn")
@requires(can_approve_registrations)
def transfer_inn(user_id: int):
    """Approve the registration and give it the ИНН the other approved organization holds."""
    user = db.get_or_404(User, user_id)
    form = TransferInnForm()
    if not form.validate_on_submit():
        return _render_registration(user, 400, transfer_form=form)
    try:
        with db.session.begin_nested():
            services.approve_registration(
                user, current_user, transfer_inn_reason=form.transfer_reason.data
            )
    except services.AccountError as error:
        return _render_registration(user, error.status, transfer_form=form, inn_error=str(error))
    flash(
        _(
            "The INN has been transferred and the registration approved: %(name)s.",
            name=user.full_name,
        ),
        "success",
    )
    return redirect(url_for("accounts.registrations"))


@bp.post("/registrations/<int:user_id>/reject")
@requires(can_approve_registrations)
def reject(user_id: int):
    user = db.get_or_404(User, user_id)
    form = RejectForm()
    if form.validate_on_submit():
        try:
            with db.session.begin_nested():
                services.reject_registration(user, current_user, form.reason.data)
        except services.AccountError as error:
            flash(str(error), "error")
        else:
            flash(_("Registration rejected: %(name)s.", name=user.full_name), "success")
            return redirect(url_for("accounts.registrations"))
    return _render_registration(user, 400, reject_form=form)


@bp.route("/password", methods=["GET", "POST"])
@login_required
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            with db.session.begin_nested():
                services.change_password(
                    current_user, form.current_password.data, form.password.data
                )
        except services.AccountError as error:
            form.current_password.errors.append(str(error))
        else:
            # The new password ended every session of the user (other browsers are logged
            # out): this one logs in again, renewing its "remember me" cookie if it had one.
            renew_login(current_user._get_current_object())
            flash(_("Your password has been changed."), "success")
            return redirect(url_for("main.home"))
    return render_template("accounts/change_password.html", form=form)


@bp.route("/password/reset", methods=["GET", "POST"])
@throttled(throttle.RESET_REQUEST)
def request_reset():
    form = ResetRequestForm()
    if form.validate_on_submit():
        # Past the limit for this e-mail the answer is the same and nothing is sent.
        if throttle.reset_mail_allowed(form.email.data):
            services.request_password_reset(form.email.data)
        flash(
            _("If an account with this e-mail exists, we have sent a link to reset the password."),
            "info",
        )
        return redirect(url_for("accounts.login"))
    return render_template("accounts/request_reset.html", form=form)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    if services.find_reset_token(token) is None:
        flash(_("The reset link is invalid or has expired. Ask for a new one."), "error")
        return redirect(url_for("accounts.request_reset"))
    form = ResetPasswordForm()
    if form.validate_on_submit():
        services.reset_password(token, form.password.data)
        logout_user()
        flash(_("Your password has been set. Log in with the new password."), "success")
        return redirect(url_for("accounts.login"))
    return render_template("accounts/reset_password.html", form=form)
