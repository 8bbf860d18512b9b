"""Forms of the coordinator's assignment pages."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, NumberRange, Optional

from review_portal.forms import REQUIRED, IntegerField, strip


class RunForm(FlaskForm):
    seed = IntegerField(
        _l("Plan variant number"),
        default=0,
        validators=[Optional(), NumberRange(0, 2**31 - 1)],
        description=_l(
            "When several plans are equally good, this number picks one of them; the same "
            "number on the same data always gives the same plan. Usually leave 0."
        ),
    )
    #: The dry run's plan the coordinator saw; applying refuses if the plan has changed.
    fingerprint = HiddenField()


class AssignForm(FlaskForm):
    expert_id = IntegerField(validators=[InputRequired(REQUIRED)])


class RemoveForm(FlaskForm):
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(REQUIRED)], filters=[strip])
