"""The center's production calendar: Russia's official calendar from the ``holidays``
package, with the center's own extra days off and extra working days from the settings.

Every count of working days in the portal (assignment deadlines, reminders and the overdue
list, discussion deadlines) asks :func:`center_calendar` for its calendar. The package knows
public holidays, the days off transferred to weekdays and the weekend days worked in their
place (a working Saturday), for every year from 1991; a year the government has not yet
decided has its fixed public holidays only, until a package release adds the decree — the
center adds such days itself on the settings page.

Building a year of the package's calendar is not free, and it never changes while the
process runs: each year is built once per process (:func:`official_year`). The center's
exceptions are settings, read once per request (the settings cache), and the calendar built
from them is kept for the rest of the request.
"""

from __future__ import annotations

import functools
from datetime import date
from typing import TYPE_CHECKING

from flask import g, has_app_context

from review_portal.settings.services import get_setting
from review_portal.working_days import WorkingCalendar, YearDays, parse_days

if TYPE_CHECKING:
    import holidays

#: The country of the official calendar.
COUNTRY = "RU"


def _package_calendar(year: int, language: str | None = None) -> holidays.HolidayBase:
    import holidays

    return holidays.country_holidays(COUNTRY, years=year, language=language)


@functools.lru_cache(maxsize=256)
def official_year(year: int) -> YearDays:
    """The official days off (public holidays and transferred days off) and working weekend
    days of ``year``; none for a year the package does not cover."""
    calendar = _package_calendar(year)  # empty outside the package's years (1991–2100)
    # weekend_workdays also holds the other years' working days of transfers across a new
    # year; the year's own are kept.
    return YearDays(
        days_off=frozenset(day for day in calendar if day.year == year),
        working_days=frozenset(day for day in calendar.weekend_workdays if day.year == year),
    )


def official_days_off(year: int, language: str) -> list[tuple[date, str]]:
    """The official days off of ``year`` that fall on weekdays, with the package's names in
    ``language`` (``ru`` or ``en_US``), for the settings page: ``[(day, name)]`` in date
    order."""
    calendar = _package_calendar(year, language)
    return sorted((day, name) for day, name in calendar.items() if day.weekday() < 5)


def center_calendar() -> WorkingCalendar:
    """The calendar of this request: the official one with the center's exceptions (the
    ``holidays`` and ``extra_working_days`` settings)."""
    days_off = tuple(get_setting("holidays"))
    working = tuple(get_setting("extra_working_days"))
    if has_app_context():
        cached = g.get("center_calendar")
        if cached is not None and cached[0] == (days_off, working):
            return cached[1]
    calendar = WorkingCalendar(official_year, parse_days(days_off), parse_days(working))
    if has_app_context():
        g.center_calendar = ((days_off, working), calendar)
    return calendar
