"""Forms of the coordinator's reconciliation and decision pages.

They read and check the shape of the input only (CSRF, integers, one of the decisions); the
rules (a justification is required, the chosen sheets must be submitted, an override needs a
reason) are the services' and their messages are shown as the services word them.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, TextAreaField
from wtforms.validators import InputRequired

from review_portal.enums import Decision
from review_portal.forms import REQUIRED, MultiCheckboxField, db_int, options, strip


class ResolveForm(FlaskForm):
    """The coordinator settles a reconciliation: the sheets to count and a justification.

    ``counted`` gets its choices (the submitted sheets) from the view."""

    counted = MultiCheckboxField(_l("Sheets to count"), coerce=db_int)
    justification = TextAreaField(_l("Justification"), filters=[strip])


class DecisionForm(FlaskForm):
    decision = RadioField(
        _l("Decision"),
        choices=options(Decision.choices()),
        validators=[InputRequired(REQUIRED)],
    )
    justification = TextAreaField(
        _l("Justification"),
        filters=[strip],
        description=_l("Required when the decision differs from the computed one."),
    )


class ConfirmForm(FlaskForm):
    """Many reviews confirmed at once. Any id is accepted: the service skips the reviews that
    cannot be confirmed (decided meanwhile, divergent) and the page says why."""

    review_ids = MultiCheckboxField(_l("Reviews"), coerce=db_int, validate_choice=False)
