"""The audit log's filter form: who acted, on which object, what kind of event, when."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField
from wtforms.validators import Length, Optional, Regexp, ValidationError

from review_portal.audit.describe import GROUPS
from review_portal.forms import options

#: The kinds of objects the log records, as the filter offers them.
OBJECT_TYPES = {
    "user": _l("Account"),
    "organization": _l("Organization"),
    "program": _l("Program"),
    "review": _l("Review of a program"),
    "assignment": _l("Assignment of an expert"),
    "score_sheet": _l("Score sheet"),
    "conclusion": _l("Conclusion"),
    "appeal": _l("Appeal"),
    "registry_entry": _l("Registry entry"),
    "registry_snapshot": _l("Registry publication"),
    "expert_conflict": _l("Conflict of interest"),
    "setting": _l("Setting"),
    "program_type": _l("Rubric of a program type"),
    "job": _l("Background job"),
    "import": _l("Import"),
    "assignment_run": _l("Automatic assignment"),
    "storage": _l("Storage"),
}


class AuditFilterForm(FlaskForm):
    class Meta:
        csrf = False

    user = StringField(_l("Who (e-mail or name)"), validators=[Optional(), Length(max=255)])
    group = SelectField(
        _l("Kind of event"),
        choices=options([("", _l("Any")), *GROUPS.items()]),
        default="",
        validators=[Optional()],
    )
    object_type = SelectField(
        _l("Object"),
        choices=options([("", _l("Any")), *OBJECT_TYPES.items()]),
        default="",
        validators=[Optional()],
    )
    object_id = StringField(
        _l("Object number"),
        validators=[
            Optional(),
            Length(max=64),
            Regexp(r"^[\w.:-]+$", message=_l("Letters, digits, dots and dashes only.")),
        ],
    )
    #: The beginning of an action name (``review.``), for links and exports; not on the form.
    action = StringField(_l("Action"), validators=[Optional(), Length(max=80)])
    date_from = DateField(_l("From"), validators=[Optional()])
    date_to = DateField(_l("To"), validators=[Optional()])

    def validate_date_to(self, field) -> None:
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError(_l("The end date is before the start date."))
