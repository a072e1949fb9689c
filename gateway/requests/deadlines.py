"""Review deadlines in working days.

A working day is Monday to Friday in China Standard Time (UTC+8, no daylight
saving). A step that began on any day has ``n`` working days after that day:
its deadline is the end (24:00 CST) of the ``n``-th working day following
the day it began. Public holidays and the weekend days worked in their place
(调休) are not modelled: they change every year by State Council notice; a
deployment that needs them passes its own calendar.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, timezone

CST = timezone(timedelta(hours=8), "CST")


def is_working_day(day: date) -> bool:
    return day.weekday() < 5


def deadline_after(
    start: datetime, days: int, working: Callable[[date], bool] = is_working_day
) -> datetime:
    """The end of the ``days``-th working day after the (CST) day ``start`` falls on, in UTC."""
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("start must be timezone-aware")
    if days < 1:
        raise ValueError("a deadline is at least one working day")
    day = start.astimezone(CST).date()
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        if working(day):
            counted += 1
    return datetime.combine(day + timedelta(days=1), time(0), CST).astimezone(UTC)


def working_days_left(
    due: datetime, now: datetime, working: Callable[[date], bool] = is_working_day
) -> int:
    """Working days from ``now`` until ``due``, counting today's when it is one (0: overdue).

    ``due`` is a deadline from :func:`deadline_after` (the end of a CST day)."""
    if now >= due:
        return 0
    day, last = now.astimezone(CST).date(), (due.astimezone(CST) - timedelta(seconds=1)).date()
    left = 0
    while day <= last:
        left += working(day)
        day += timedelta(days=1)
    return left
