"""The production calendar: Russia's official calendars of 2025, 2026 and 2027 as the
``holidays`` package gives them, pinned against the published production calendars, and the
center's own extra days off and working days on top.

How the official calendar is made (Labour Code art. 112): the public holidays are 1–6 and 8
January (New Year holidays), 7 January (Christmas), 23 February, 8 March, 1 May, 9 May,
12 June and 4 November; a holiday on a weekend moves to the next working day, except the
January ones, whose weekend days the government moves by decree to other dates of the year
(with a Saturday made a working day where a decree says so).

* 2025: 4 January (Sat) → 2 May, 5 January (Sun) →
  31 December, 23 February (Sun) → 8 May, 8 March (Sat) → 13 June, and the working
  Saturday 1 November for the day off on Monday 3 November. 247 working days.
* 2026: 3 January (Sat) → 9 January, 4 January (Sun) →
  31 December; 8 March (Sun) → Monday 9 March and 9 May (Sat) → Monday 11 May by the
  Labour Code. No working Saturday. 247 working days.
* 2027: 2 January (Sat) → 5 November, 3 January (Sun) → 31 December, the working
  Saturday 20 February for the day off on Monday 22 February; 1 May, 9 May and 12 June fall
  on weekends and move to 3 May, 10 May and 14 June. 247 working days.

The package cites the decrees as consultant.ru documents 481586 (2025), 515170 (2026) and
544706 (2027). The 2025 and 2026 figures below are those of the published production
calendars (247 working days each); the 2027 ones were checked against the package's data
only (the same transfers as 2021, a year with the same weekdays), not against the decree's
own text.
"""

from __future__ import annotations

import calendar as month_calendar
from datetime import date, timedelta

import pytest

from review_portal.assignment.services import due_date
from review_portal.settings.calendar import center_calendar, official_year
from review_portal.settings.services import set_setting
from review_portal.working_days import WorkingCalendar

OFFICIAL = WorkingCalendar(official_year)

#: Working days per month (January to December) of the official production calendars.
WORKING_DAYS_PER_MONTH = {
    2025: (17, 20, 21, 22, 18, 19, 23, 21, 22, 23, 19, 22),
    2026: (15, 19, 21, 22, 19, 21, 23, 21, 22, 22, 20, 22),
    2027: (15, 19, 22, 22, 19, 21, 22, 22, 22, 21, 20, 22),
}


@pytest.mark.parametrize("year", sorted(WORKING_DAYS_PER_MONTH))
def test_working_days_per_month_and_year_are_the_official_ones(year):
    months = tuple(
        OFFICIAL.count_working_days(
            date(year, month, 1), date(year, month, month_calendar.monthrange(year, month)[1])
        )
        for month in range(1, 13)
    )
    assert months == WORKING_DAYS_PER_MONTH[year]
    assert OFFICIAL.count_working_days(date(year, 1, 1), date(year, 12, 31)) == 247


def test_ten_working_days_from_26_december_2025_end_on_21_january_2026():
    """Friday 26.12.2025, then: Mon 29.12 (1), Tue 30.12 (2); Wed 31.12.2025 is off (the
    day off of Sunday 05.01.2025 moved there); 1–8 January 2026 are the New Year holidays
    and Christmas; Fri 09.01.2026 is off (the day off of Saturday 03.01.2026 moved there);
    10–11 January is a weekend; Mon 12.01 (3), 13 (4), 14 (5), 15 (6), Fri 16 (7); a
    weekend; Mon 19.01 (8), Tue 20 (9), Wed 21.01.2026 (10)."""
    assert not OFFICIAL.is_working_day(date(2025, 12, 31))
    assert not OFFICIAL.is_working_day(date(2026, 1, 9))
    assert OFFICIAL.add_working_days(date(2025, 12, 26), 10) == date(2026, 1, 21)


def test_ten_working_days_from_25_december_2026_end_on_19_january_2027_not_in_the_holidays():
    """The issue's example: without the official calendar 10 working days from Friday
    25.12.2026 ended on 08.01.2027, a New Year holiday. With it: Mon 28.12 (1), 29 (2),
    Wed 30.12 (3); Thu 31.12.2026 is off (the day off of Sunday 04.01.2026 moved there);
    1–8 January 2027 are holidays; 9–10 January a weekend; Mon 11.01 (4) … Fri 15.01 (8),
    a weekend, Mon 18.01 (9), Tue 19.01.2027 (10)."""
    assert WorkingCalendar().add_working_days(date(2026, 12, 25), 10) == date(2027, 1, 8)
    assert OFFICIAL.add_working_days(date(2026, 12, 25), 10) == date(2027, 1, 19)


@pytest.mark.parametrize(
    ("day", "why"),
    [
        (date(2025, 11, 1), "Saturday worked for the day off on Monday 3 November 2025"),
        (date(2027, 2, 20), "Saturday worked for the day off on Monday 22 February 2027"),
    ],
)
def test_a_working_saturday_counts_as_a_working_day(day, why):
    assert day.weekday() == 5, why
    assert OFFICIAL.is_working_day(day)
    assert not WorkingCalendar().is_working_day(day)
    # Friday to the next working day: the Saturday itself.
    assert OFFICIAL.add_working_days(day - timedelta(days=1), 1) == day


@pytest.mark.parametrize(
    "day",
    [
        date(2025, 5, 2),  # Sat 04.01.2025 moved here
        date(2025, 5, 8),  # Sun 23.02.2025 moved here
        date(2025, 6, 13),  # Sat 08.03.2025 moved here
        date(2025, 11, 3),  # for the working Saturday 01.11.2025
        date(2026, 3, 9),  # 8 March 2026 is a Sunday
        date(2026, 5, 11),  # 9 May 2026 is a Saturday
        date(2027, 2, 22),  # for the working Saturday 20.02.2027
        date(2027, 5, 3),  # 1 May 2027 is a Saturday
        date(2027, 5, 10),  # 9 May 2027 is a Sunday
        date(2027, 6, 14),  # 12 June 2027 is a Saturday
        date(2027, 11, 5),  # Sat 02.01.2027 moved here
        date(2027, 12, 31),  # Sun 03.01.2027 moved here
    ],
)
def test_transferred_days_off_are_not_working_days(day):
    assert day.weekday() < 5
    assert not OFFICIAL.is_working_day(day)


def test_a_year_the_package_does_not_know_has_weekends_only():
    assert official_year(2150).days_off == frozenset()
    # January 2150 starts on a Thursday: 4 weeks and Thursday to Saturday, 22 weekdays, and
    # no New Year holidays (the package's years end with 2100).
    assert OFFICIAL.count_working_days(date(2150, 1, 1), date(2150, 1, 31)) == 22


def test_the_center_adds_days_off_and_working_days(session):
    # Thursday 5 November 2026 + 3 working days: Fri 6, Mon 9, Tue 10.
    start = date(2026, 11, 5)
    set_setting("deadline_working_days", 3)
    assert due_date(start) == date(2026, 11, 10)
    # An extra day off (a regional holiday on Monday the 9th) pushes it one day on.
    set_setting("holidays", ["2026-11-09"])
    assert not center_calendar().is_working_day(date(2026, 11, 9))
    assert due_date(start) == date(2026, 11, 11)
    # An extra working day (Saturday the 7th) pulls it back.
    set_setting("extra_working_days", ["2026-11-07"])
    assert center_calendar().is_working_day(date(2026, 11, 7))
    assert due_date(start) == date(2026, 11, 10)
    # An official holiday the center works: Wednesday 4 November 2026 (Unity Day).
    set_setting("extra_working_days", ["2026-11-04"])
    assert due_date(date(2026, 11, 3)) == date(2026, 11, 6)  # Wed 4, Thu 5, Fri 6
    set_setting("extra_working_days", [])
    set_setting("holidays", [])
    assert due_date(date(2026, 11, 3)) == date(2026, 11, 9)  # Thu 5, Fri 6, Mon 9


def test_official_years_are_built_once_per_process():
    official_year.cache_clear()
    first = official_year(2026)
    assert official_year(2026) is first
    assert official_year.cache_info().hits == 1
