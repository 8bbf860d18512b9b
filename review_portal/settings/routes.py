"""The center's settings page (``/settings``): the center's details, the deadlines' lengths,
the time zone and the production calendar's exceptions. Coordinators and administrators."""

from __future__ import annotations

import json
from datetime import date
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from review_portal.db import utcnow
from review_portal.extensions import db
from review_portal.permissions import requires
from review_portal.settings import services
from review_portal.settings.calendar import center_calendar, official_days_off, official_year
from review_portal.settings.forms import CalendarDayForm, SettingsForm, time_zone_choices
from review_portal.settings.permissions import can_manage_settings
from review_portal.settings.services import FORM_KEYS, SettingError, SettingsConflict

bp = Blueprint("settings", __name__)

#: ``<kind>`` of the calendar's URLs: the center's two lists of days.
KINDS = "any(days_off, working_days)"


def _today() -> date:
    """Today in the center's time zone."""
    return utcnow().astimezone(ZoneInfo(services.get_setting("timezone"))).date()


def _official_calendar(years: list[int]) -> list[dict]:
    """Per year: the official days off on weekdays (with their names) and the working
    weekend days, in the interface's language."""
    language = "ru" if str(get_locale() or "ru").startswith("ru") else "en_US"
    return [
        {
            "year": year,
            "days_off": official_days_off(year, language),
            "working_days": sorted(official_year(year).working_days),
        }
        for year in years
    ]


def _page(
    form: SettingsForm,
    day_form: CalendarDayForm | None = None,
    failed_kind: str | None = None,
    status: int = 200,
):
    settings = services.center_settings()
    today = _today()
    calendar = center_calendar()
    return (
        render_template(
            "settings/index.html",
            form=form,
            day_form=day_form,
            failed_kind=failed_kind,
            days_off=[date.fromisoformat(d) for d in settings["holidays"]],
            working_days=[date.fromisoformat(d) for d in settings["extra_working_days"]],
            official=_official_calendar([today.year, today.year + 1]),
            example_due=calendar.add_working_days(today, settings["deadline_working_days"]),
            today=today,
        ),
        status,
    )


def _fill(form: SettingsForm, values: dict) -> None:
    """Show ``values`` in the form and remember them as what the page showed."""
    for key in FORM_KEYS:
        form[key].data = values[key]
    form.seen.data = json.dumps({key: values[key] for key in FORM_KEYS}, ensure_ascii=False)


@bp.route("/settings", methods=["GET", "POST"])
@requires(can_manage_settings)
def index():
    form = SettingsForm()
    stored = services.center_settings()
    form.timezone.choices = time_zone_choices(stored["timezone"])
    if request.method == "GET":
        _fill(form, stored)
        return _page(form)
    if not form.validate_on_submit():
        return _page(form, status=422)
    try:
        with db.session.begin_nested():
            changed = services.update_settings(current_user, form.values(), form.seen_values)
    except SettingError as error:
        target = form[error.key] if error.key in FORM_KEYS else form.seen
        target.errors = [*target.errors, str(error.message)]
        return _page(form, status=422)
    except SettingsConflict as error:
        # The others' values are shown for the settings in conflict; the user's own changes
        # to the rest stay in the form, to be saved again.
        fresh = services.center_settings()
        for key in error.keys:
            form[key].data = fresh[key]
        form.seen.data = json.dumps({key: fresh[key] for key in FORM_KEYS}, ensure_ascii=False)
        flash(str(error.message), "danger")
        return _page(form, status=409)
    if changed:
        flash(
            _(
                "Settings saved: %(names)s. They apply to deadlines set from now on.",
                names=", ".join(str(services.SETTING_LABELS[key]) for key in changed),
            ),
            "success",
        )
    else:
        flash(_("Nothing was changed."), "info")
    return redirect(url_for("settings.index"))


def _calendar_change(operation, kind: str, done_message):
    day_form = CalendarDayForm()
    if day_form.validate_on_submit():
        try:
            with db.session.begin_nested():
                day = operation(current_user, kind, day_form.day.data)
        except SettingError as error:
            day_form.day.errors = [*day_form.day.errors, str(error.message)]
        else:
            flash(done_message(day.strftime("%d.%m.%Y")), "success")
            return redirect(url_for("settings.index", _anchor="calendar"))
    form = SettingsForm(formdata=None)
    stored = services.center_settings()
    form.timezone.choices = time_zone_choices(stored["timezone"])
    _fill(form, stored)
    return _page(form, day_form, failed_kind=kind, status=422)


@bp.post("/settings/calendar/<" + KINDS + ":kind>/add")
@requires(can_manage_settings)
def add_day(kind: str):
    return _calendar_change(
        services.add_calendar_day, kind, lambda day: _("%(day)s added to the calendar.", day=day)
    )


@bp.post("/settings/calendar/<" + KINDS + ":kind>/remove")
@requires(can_manage_settings)
def remove_day(kind: str):
    return _calendar_change(
        services.remove_calendar_day,
        kind,
        lambda day: _("%(day)s removed from the calendar.", day=day),
    )
