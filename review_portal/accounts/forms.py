"""Forms of the accounts domain: login, registration, password change and reset, approval."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import (
    DataRequired,
    Email,
    EqualTo,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from review_portal.enums import AccountStatus, Direction, OrganizationType, Role
from review_portal.forms import (
    REQUIRED,
    IntegerField,
    MultiCheckboxField,
    optional_int,
    options,
    strip,
)
from review_portal.organizations.services import registration_number_errors
from review_portal.organizations.validators import is_valid_inn


def strong_password(form, field) -> None:
    value = field.data or ""
    if len(value) < 10:
        raise ValidationError(_l("The password must be at least 10 characters long."))
    if value.isdigit() or value.isalpha():
        raise ValidationError(_l("The password must contain both letters and digits or symbols."))


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(REQUIRED)], filters=[strip])
    password = PasswordField(_l("Password"), validators=[DataRequired(REQUIRED)])
    remember = BooleanField(_l("Remember me"))


class NewAccountFields(FlaskForm):
    """Name, password (twice) and the consent to data processing: every new account's."""

    full_name = StringField(
        _l("Full name"), validators=[DataRequired(REQUIRED), Length(max=255)], filters=[strip]
    )
    password = PasswordField(_l("Password"), validators=[DataRequired(REQUIRED), strong_password])
    password_confirm = PasswordField(
        _l("Repeat the password"),
        validators=[DataRequired(REQUIRED), EqualTo("password", _l("The passwords do not match."))],
    )
    consent = BooleanField(
        _l("I consent to the processing of my personal data (Federal Law 152-FZ)"),
        validators=[DataRequired(_l("Consent is required to register."))],
    )


class _AccountFields(NewAccountFields):
    email = EmailField(
        _l("E-mail"),
        validators=[
            DataRequired(REQUIRED),
            Email(_l("Enter a valid e-mail address."), check_deliverability=False),
            Length(max=255),
        ],
        filters=[strip],
    )
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=40)], filters=[strip])


class ProviderRegistrationForm(_AccountFields):
    org_full_name = StringField(
        _l("Full name of the organization"),
        validators=[DataRequired(REQUIRED), Length(max=500)],
        filters=[strip],
    )
    org_short_name = StringField(
        _l("Short name of the organization"),
        validators=[DataRequired(REQUIRED), Length(max=255)],
        filters=[strip],
    )
    org_kind = SelectField(
        _l("Type of provider"),
        choices=options(OrganizationType.choices()),
        validators=[InputRequired()],
    )
    inn = StringField(_l("INN"), validators=[DataRequired(REQUIRED)], filters=[strip])
    ogrn = StringField(_l("OGRN / OGRNIP"), validators=[Optional()], filters=[strip])
    municipality_id = SelectField(
        _l("Municipality"), coerce=optional_int, validators=[DataRequired(REQUIRED)]
    )
    address = StringField(_l("Address"), validators=[Optional(), Length(max=500)], filters=[strip])

    def validate_inn(self, field) -> None:
        error = registration_number_errors(self.org_kind.data, field.data, None).get("inn")
        if error:
            raise ValidationError(error)

    def validate_ogrn(self, field) -> None:
        error = registration_number_errors(self.org_kind.data, "", field.data).get("ogrn")
        if error:
            raise ValidationError(error)


class ExpertRegistrationForm(_AccountFields):
    municipality_id = SelectField(
        _l("Municipality"), coerce=optional_int, validators=[DataRequired(REQUIRED)]
    )
    home_organization_name = StringField(
        _l("Home organization"),
        validators=[DataRequired(REQUIRED), Length(max=500)],
        filters=[strip],
    )
    home_organization_inn = StringField(
        _l("INN of the home organization"), validators=[Optional()], filters=[strip]
    )
    position = StringField(_l("Position"), validators=[Optional(), Length(max=255)])
    directions = MultiCheckboxField(
        _l("Directions you can assess"),
        choices=options(Direction.choices()),
        validators=[DataRequired(_l("Choose at least one direction."))],
    )
    qualification = TextAreaField(
        _l("Qualification and experience"), validators=[DataRequired(REQUIRED)]
    )
    experience_years = IntegerField(
        _l("Years of experience"),
        validators=[Optional(), NumberRange(0, 70, _l("Enter a number from 0 to 70."))],
    )
    capacity = IntegerField(
        _l("How many programs you can assess at the same time"),
        default=5,
        validators=[
            InputRequired(REQUIRED),
            NumberRange(1, 50, _l("Enter a number from 1 to 50.")),
        ],
    )

    def validate_home_organization_inn(self, field) -> None:
        if field.data and not is_valid_inn(field.data):
            raise ValidationError(_l("The INN control digits do not match: check the number."))


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[DataRequired(REQUIRED)])
    password = PasswordField(
        _l("New password"), validators=[DataRequired(REQUIRED), strong_password]
    )
    password_confirm = PasswordField(
        _l("Repeat the new password"),
        validators=[DataRequired(REQUIRED), EqualTo("password", _l("The passwords do not match."))],
    )


class ResetRequestForm(FlaskForm):
    email = EmailField(
        _l("E-mail"),
        validators=[DataRequired(REQUIRED), Email(_l("Enter a valid e-mail address."))],
        filters=[strip],
    )


class ResetPasswordForm(FlaskForm):
    password = PasswordField(
        _l("New password"), validators=[DataRequired(REQUIRED), strong_password]
    )
    password_confirm = PasswordField(
        _l("Repeat the new password"),
        validators=[DataRequired(REQUIRED), EqualTo("password", _l("The passwords do not match."))],
    )


class RejectForm(FlaskForm):
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(REQUIRED)], filters=[strip])


class TransferInnForm(FlaskForm):
    """The coordinator's explicit decision to give a registration the ИНН another approved
    organization holds (that organization loses it)."""

    transfer_reason = TextAreaField(
        _l("Why the INN is transferred (the documents checked)"),
        validators=[DataRequired(REQUIRED), Length(max=2000)],
        filters=[strip],
    )
    transfer_confirmed = BooleanField(
        _l(
            "I have checked that this applicant acts for the organization with this INN, and "
            "the organization that now holds it loses it"
        ),
        validators=[DataRequired(_l("Confirm the transfer."))],
    )


class ActionForm(FlaskForm):
    """A form with only the CSRF token, for POST buttons."""


class RegistrationFilterForm(FlaskForm):
    class Meta:
        csrf = False

    role = SelectField(
        _l("Role"),
        choices=options(
            [("", _l("All"))] + [(r.value, r.label) for r in (Role.APPLICANT, Role.EXPERT)]
        ),
        validators=[Optional()],
    )
    status = SelectField(
        _l("Status"),
        choices=options([("", _l("All"))] + AccountStatus.choices()),
        default=AccountStatus.PENDING.value,
        validators=[Optional()],
    )
    municipality_id = SelectField(_l("Municipality"), validators=[Optional()])
    q = StringField(_l("Search"), validators=[Optional()], filters=[strip])


class UserForm(FlaskForm):
    """The administrator's form for one account."""

    full_name = StringField(
        _l("Full name"), validators=[DataRequired(REQUIRED), Length(max=255)], filters=[strip]
    )
    email = EmailField(
        _l("E-mail"),
        validators=[
            DataRequired(REQUIRED),
            Email(_l("Enter a valid e-mail address."), check_deliverability=False),
        ],
        filters=[strip],
    )
    roles = MultiCheckboxField(
        _l("Roles"),
        choices=options(Role.choices()),
        validators=[DataRequired(_l("Choose at least one role."))],
    )
    active = BooleanField(_l("Account is active"), default=True)
    municipality_id = SelectField(
        _l("Municipality (for a municipal viewer)"), default="", validate_choice=False
    )
    organization_inn = StringField(
        _l("INN of the organization (for a provider user)"),
        validators=[Optional()],
        filters=[strip],
    )


class UserFilterForm(FlaskForm):
    class Meta:
        csrf = False

    role = SelectField(
        _l("Role"), choices=options([("", _l("All"))] + Role.choices()), validators=[Optional()]
    )
    active = SelectField(
        _l("Active"),
        choices=options([("", _l("All")), ("1", _l("Active")), ("0", _l("Switched off"))]),
        validators=[Optional()],
    )
    q = StringField(_l("Search"), validators=[Optional()], filters=[strip])


class AcceptInvitationForm(NewAccountFields):
    """The invited colleague's name, password and consent (the e-mail is the invitation's)."""
