"""Working days: weekends and the configured public holidays do not count (a leaf module)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta


def is_working_day(day: date, holidays: frozenset[date]) -> bool:
    return day.weekday() < 5 and day not in holidays


def add_working_days(start: date, days: int, holidays: Iterable[date] = ()) -> date:
    """The date ``days`` working days after ``start`` (``start`` itself does not count)."""
    holidays = frozenset(holidays)
    current = start
    remaining = days
    while remaining > 0:
        current += timedelta(days=1)
        if is_working_day(current, holidays):
            remaining -= 1
    return current


def working_days_between(start: date, end: date, holidays: Iterable[date] = ()) -> int:
    """Working days after ``start`` up to and including ``end`` (negative when end < start)."""
    holidays = frozenset(holidays)
    if end < start:
        return -working_days_between(end, start, holidays)
    count = 0
    current = start
    while current < end:
        current += timedelta(days=1)
        if is_working_day(current, holidays):
            count += 1
    return count


def parse_holidays(values: Iterable[str]) -> frozenset[date]:
    """The ``holidays`` setting (ISO dates) as dates."""
    return frozenset(date.fromisoformat(v) for v in values)
