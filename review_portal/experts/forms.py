"""Forms of the experts domain: registry filters, the expert's own profile, periods of
unavailability, conflicts of interest, suspension, the answer to an assignment and the CSV
import."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, DateField, SelectField, StringField, TextAreaField
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from review_portal.enums import Direction
from review_portal.experts.queries import ExpertStatus, LoadFilter
from review_portal.experts.services import CAPACITY_MAX, CAPACITY_MIN, EXPERIENCE_MAX
from review_portal.forms import (
    REQUIRED,
    IntegerField,
    MultiCheckboxField,
    check_upload_size,
    options,
    strip,
)
from review_portal.organizations.validators import is_valid_inn


class ExpertFilterForm(FlaskForm):
    """The registry's filters (a GET form: no CSRF token)."""

    class Meta:
        csrf = False

    direction = SelectField(
        _l("Direction"),
        choices=options([("", _l("All"))] + Direction.choices()),
        validators=[Optional()],
    )
    municipality_id = SelectField(_l("Municipality"), validators=[Optional()])
    status = SelectField(
        _l("Status"),
        choices=options([("", _l("All"))] + ExpertStatus.choices()),
        validators=[Optional()],
    )
    load = SelectField(
        _l("Load"),
        choices=options([("", _l("All"))] + LoadFilter.choices()),
        validators=[Optional()],
    )
    q = StringField(_l("Name, e-mail or organization"), validators=[Optional()], filters=[strip])

    def filters(self) -> dict:
        return {
            "direction": self.direction.data or None,
            "municipality_id": int(self.municipality_id.data)
            if self.municipality_id.data
            else None,
            "status": self.status.data or None,
            "load": self.load.data or None,
            "q": self.q.data or None,
        }


class ExpertProfileForm(FlaskForm):
    """What an expert keeps up to date themself."""

    directions = MultiCheckboxField(
        _l("Directions you can assess"),
        choices=options(Direction.choices()),
        validators=[DataRequired(_l("Choose at least one direction."))],
    )
    capacity = IntegerField(
        _l("How many programs you can assess at the same time"),
        validators=[
            InputRequired(REQUIRED),
            NumberRange(
                CAPACITY_MIN,
                CAPACITY_MAX,
                _l("Enter a number from %(low)s to %(high)s.", low=CAPACITY_MIN, high=CAPACITY_MAX),
            ),
        ],
    )
    qualification = TextAreaField(
        _l("Qualification and experience"), validators=[DataRequired(REQUIRED)], filters=[strip]
    )
    experience_years = IntegerField(
        _l("Years of experience"),
        validators=[
            Optional(),
            NumberRange(0, EXPERIENCE_MAX, _l("Enter a number from 0 to %(n)s.", n=EXPERIENCE_MAX)),
        ],
    )
    position = StringField(
        _l("Position"), validators=[Optional(), Length(max=255)], filters=[strip]
    )
    home_organization_name = StringField(
        _l("Home organization"),
        validators=[DataRequired(REQUIRED), Length(max=500)],
        filters=[strip],
    )
    home_organization_inn = StringField(
        _l("INN of the home organization"), validators=[Optional()], filters=[strip]
    )

    def validate_home_organization_inn(self, field) -> None:
        if field.data and not is_valid_inn(field.data.replace(" ", "")):
            raise ValidationError(_l("The INN control digits do not match: check the number."))


class UnavailabilityForm(FlaskForm):
    starts_on = DateField(_l("From"), validators=[InputRequired(REQUIRED)])
    ends_on = DateField(_l("To (inclusive)"), validators=[InputRequired(REQUIRED)])
    reason = StringField(
        _l("Reason (optional)"), validators=[Optional(), Length(max=255)], filters=[strip]
    )


class SuspendForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason for the suspension"),
        validators=[DataRequired(REQUIRED), Length(max=2000)],
        filters=[strip],
    )


class DeclineForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason"), validators=[DataRequired(REQUIRED), Length(max=2000)], filters=[strip]
    )
    conflict = BooleanField(_l("I have a conflict of interest with this program"))
    whole_organization = BooleanField(
        _l("The conflict concerns the whole organization (all its programs)")
    )


def _id_or_none(value):
    """A select's value as an id; its empty placeholder as ``None`` (then "required")."""
    return None if value in ("", None) else int(value)


class ConflictDeclarationForm(FlaskForm):
    """The expert's declaration, from the profile, of a conflict with an organization."""

    organization_id = SelectField(
        _l("Organization"), coerce=_id_or_none, validators=[InputRequired(REQUIRED)]
    )
    text = TextAreaField(
        _l("How you are connected with it"),
        validators=[DataRequired(REQUIRED), Length(max=2000)],
        filters=[strip],
    )


class ActionForm(FlaskForm):
    """A form with only the CSRF token, for POST buttons."""


class ExpertImportForm(FlaskForm):
    file = FileField(_l("CSV file"), validators=[FileRequired(REQUIRED), check_upload_size])
