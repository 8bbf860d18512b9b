"""The audit log's filter form."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, StringField
from wtforms.validators import Optional, ValidationError


class AuditFilterForm(FlaskForm):
    class Meta:
        csrf = False

    user = StringField(_l("User (e-mail)"), validators=[Optional()])
    object_type = StringField(_l("Object type"), validators=[Optional()])
    object_id = StringField(_l("Object id"), validators=[Optional()])
    action = StringField(_l("Action"), validators=[Optional()])
    date_from = DateField(_l("From"), validators=[Optional()])
    date_to = DateField(_l("To"), validators=[Optional()])

    def validate_date_to(self, field) -> None:
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError(_l("The end date is before the start date."))
