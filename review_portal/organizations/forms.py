"""Forms of the organization's profile and of invitations."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField, StringField
from wtforms.validators import DataRequired, Email, Length, Optional

from review_portal.forms import REQUIRED, optional_int, strip


class OrganizationProfileForm(FlaskForm):
    full_name = StringField(
        _l("Full name of the organization"),
        validators=[DataRequired(REQUIRED), Length(max=500)],
        filters=[strip],
    )
    short_name = StringField(
        _l("Short name of the organization"),
        validators=[DataRequired(REQUIRED), Length(max=255)],
        filters=[strip],
    )
    ogrn = StringField(_l("OGRN / OGRNIP"), validators=[Optional()], filters=[strip])
    municipality_id = SelectField(
        _l("Municipality"), coerce=optional_int, validators=[DataRequired(REQUIRED)]
    )
    address = StringField(_l("Address"), validators=[Optional(), Length(max=500)], filters=[strip])
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=40)], filters=[strip])
    email = EmailField(
        _l("E-mail"),
        validators=[
            Optional(),
            Email(_l("Enter a valid e-mail address."), check_deliverability=False),
        ],
        filters=[strip],
    )
    website = StringField(_l("Website"), validators=[Optional(), Length(max=255)], filters=[strip])


class InviteForm(FlaskForm):
    email = EmailField(
        _l("Colleague's e-mail"),
        validators=[
            DataRequired(REQUIRED),
            Email(_l("Enter a valid e-mail address."), check_deliverability=False),
        ],
        filters=[strip],
    )
