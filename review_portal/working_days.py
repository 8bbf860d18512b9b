"""Working days and the arithmetic of deadlines on them (a leaf module: it imports nothing of
the app).

A day is a working day when it is Monday to Friday and not a day off, or when it is a
weekend day declared a working day (a working Saturday of a transferred day off). Which days
are off or worked comes from two places, combined by :class:`WorkingCalendar`:

* the official calendar, year by year, from a source function (the Russian production
  calendar of the ``holidays`` package: :mod:`review_portal.settings.calendar`), asked once
  per year a calendar object touches;
* the center's own exceptions: extra days off and extra working days. They win over the
  official calendar (the center knows its region's decrees).

Deadlines count from the day after the start: ``add_working_days(start, n)`` is the n-th
working day after ``start``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class YearDays:
    """One year of the official calendar: weekdays that are not worked (public holidays and
    days off transferred to them) and weekend days that are worked."""

    days_off: frozenset[date] = frozenset()
    working_days: frozenset[date] = frozenset()


#: No official calendar: weekends are the only days off.
NO_OFFICIAL_DAYS = YearDays()


def _weekends_only(year: int) -> YearDays:
    return NO_OFFICIAL_DAYS


@dataclass
class WorkingCalendar:
    """The official calendar (``official(year)``) with the center's exceptions on top."""

    official: Callable[[int], YearDays] = _weekends_only
    extra_days_off: frozenset[date] = frozenset()
    extra_working_days: frozenset[date] = frozenset()
    _years: dict[int, YearDays] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.extra_days_off = frozenset(self.extra_days_off)
        self.extra_working_days = frozenset(self.extra_working_days)

    def _year(self, year: int) -> YearDays:
        days = self._years.get(year)
        if days is None:
            days = self._years[year] = self.official(year)
        return days

    def is_officially_working(self, day: date) -> bool:
        """``day`` is a working day of the official calendar (the center's exceptions aside)."""
        year = self._year(day.year)
        if day in year.working_days:
            return True
        return day.weekday() < 5 and day not in year.days_off

    def is_working_day(self, day: date) -> bool:
        if day in self.extra_working_days:
            return True
        if day in self.extra_days_off:
            return False
        return self.is_officially_working(day)

    def add_working_days(self, start: date, days: int) -> date:
        """The date ``days`` working days after ``start`` (``start`` itself does not count)."""
        current = start
        remaining = days
        while remaining > 0:
            current += ONE_DAY
            if self.is_working_day(current):
                remaining -= 1
        return current

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after ``start`` up to and including ``end`` (negative when end < start)."""
        if end < start:
            return -self.working_days_between(end, start)
        count = 0
        current = start
        while current < end:
            current += ONE_DAY
            if self.is_working_day(current):
                count += 1
        return count

    def count_working_days(self, first: date, last: date) -> int:
        """Working days from ``first`` to ``last``, both included."""
        return self.working_days_between(first - ONE_DAY, last)

    def last_working_day(self, day: date) -> date:
        """``day`` itself when it is a working day, else the working day before it."""
        while not self.is_working_day(day):
            day -= ONE_DAY
        return day


def parse_days(values: Iterable[str]) -> frozenset[date]:
    """A list setting of ISO dates (``["2026-11-09"]``) as dates."""
    return frozenset(date.fromisoformat(v) for v in values)
