"""The dashboard's period: a season (year) or dates from–to (a GET form, no CSRF)."""

from __future__ import annotations

from datetime import date

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField
from wtforms.validators import NumberRange, Optional, ValidationError

from review_portal.forms import IntegerField


class PeriodForm(FlaskForm):
    class Meta:
        csrf = False

    season = IntegerField(_l("Season (year)"), validators=[Optional(), NumberRange(2000, 2100)])
    start = DateField(_l("From"), validators=[Optional()], format=["%Y-%m-%d", "%d.%m.%Y"])
    end = DateField(_l("To"), validators=[Optional()], format=["%Y-%m-%d", "%d.%m.%Y"])

    def validate_end(self, field):
        if field.data and self.start.data and field.data < self.start.data:
            raise ValidationError(_l("The end of the period is before its start."))
        if field.data and self.start.data and (field.data - self.start.data).days > 3 * 366:
            raise ValidationError(_l("Choose a period of three years at most."))

    def period(self, today: date) -> tuple[int | None, date | None, date | None]:
        """``(season, start, end)``: dates when both are given and valid, else the season
        asked for (default: this year)."""
        if self.start.data and self.end.data and not self.errors:
            return None, self.start.data, self.end.data
        season = self.season.data if self.season.data and not self.season.errors else today.year
        return season, None, None
