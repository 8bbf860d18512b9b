"""The form of a user's notification choices: which kinds also come by e-mail, and (staff)
the daily digest."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField

from review_portal.forms import MultiCheckboxField
from review_portal.notifications.services import MUTABLE_KINDS


class ChoicesForm(FlaskForm):
    by_mail = MultiCheckboxField(_l("Also send by e-mail"))
    daily_digest = BooleanField(
        _l(
            "Send me the center's work once a day (soon after 8:00) in one e-mail instead of "
            "one e-mail per event"
        )
    )

    def __init__(self, *args, kinds=MUTABLE_KINDS, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.by_mail.choices = [(kind.value, kind.label) for kind in kinds]

    def muted_kinds(self, stored: list[str]) -> list[str]:
        """The kinds offered and left unticked (in the portal only), and those muted before
        that the form does not offer (kept as they were)."""
        offered = {value for value, _label in self.by_mail.choices}
        ticked = set(self.by_mail.data or ())
        return [
            kind.value
            for kind in MUTABLE_KINDS
            if (kind.value in offered and kind.value not in ticked)
            or (kind.value not in offered and kind.value in stored)
        ]


class OpenForm(FlaskForm):
    """Opening a notification: the page's CSRF token only."""
