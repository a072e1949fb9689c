"""Review deadlines in working days.

A working day is Monday to Friday in China Standard Time (UTC+8, no daylight
saving). A step that began on any day has ``n`` working days after that day:
its deadline is the end (24:00 CST) of the ``n``-th working day following
the day it began. Public holidays and the weekend days worked in their place
(调休) are not modelled: they change every year by State Council notice; a
deployment that needs them passes its own calendar.

Any stored time is accepted (years 1 to 9999): a deadline that would fall past
the calendar's end is :data:`LATEST` (never due), and the working days left
are counted by arithmetic, not day by day, so a far deadline costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, timezone

CST = timezone(timedelta(hours=8), "CST")
LATEST = datetime.max.replace(tzinfo=UTC)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5


def cst_date(moment: datetime) -> date:
    """The CST calendar day ``moment`` falls on (the calendar's first or last day where
    the shift to UTC+8 runs off it)."""
    try:
        return moment.astimezone(CST).date()
    except OverflowError:
        return date.max if moment.year > 1 else date.min


def deadline_after(
    start: datetime, days: int, working: Callable[[date], bool] = is_working_day
) -> datetime:
    """The end of the ``days``-th working day after the (CST) day ``start`` falls on, in
    UTC; :data:`LATEST` where that is past the calendar's end."""
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("start must be timezone-aware")
    if days < 1:
        raise ValueError("a deadline is at least one working day")
    day = cst_date(start)
    counted = 0
    try:
        while counted < days:
            day += timedelta(days=1)
            if working(day):
                counted += 1
        return datetime.combine(day + timedelta(days=1), time(0), CST).astimezone(UTC)
    except OverflowError:
        return LATEST


def _weekdays(first: date, last: date) -> int:
    """Monday-to-Friday days from ``first`` to ``last``, both included."""
    span = (last - first).days + 1
    weeks, rest = divmod(span, 7)
    return weeks * 5 + sum((first.weekday() + i) % 7 < 5 for i in range(rest))


def working_days_left(
    due: datetime, now: datetime, working: Callable[[date], bool] = is_working_day
) -> int:
    """Working days from ``now`` until ``due``, counting today's when it is one (0: overdue).

    ``due`` is a deadline from :func:`deadline_after` (the end of a CST day). The
    default calendar is counted by arithmetic; another ``working`` day by day."""
    if now >= due:
        return 0
    day, last = cst_date(now), cst_date(due - timedelta(microseconds=1))
    if working is is_working_day:
        return _weekdays(day, last) if day <= last else 0
    left = 0
    while day <= last:
        left += working(day)
        if day == date.max:
            break
        day += timedelta(days=1)
    return left
