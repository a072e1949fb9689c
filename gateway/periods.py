"""Reporting periods: a year, a quarter, a month or any run of days, on the CST calendar.

Reports, statements, metering totals and the public disclosure all count "what
happened in a period". A period is named the way people write it and parsed
once here:

- ``2025`` (a year), ``2025-Q2`` (a quarter), ``2025-03`` (a month);
- ``2025-01-01..2025-06-30`` (days, both ends included).

Days are CST days (the rules' calendar, ``gateway.workdays.CST``): a period's
``start`` is 00:00 CST of its first day and ``end`` is 00:00 CST of the day after
its last, both as UTC-aware datetimes, so ``start <= at < end`` selects a stored
timestamp. A period is at most ten years long.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from gateway.workdays import CST

MAX_DAYS = 3653 + 1  # ten years and a leap day or three


class PeriodError(ValueError):
    """A period that cannot be parsed or makes no sense; the message says why."""


@dataclass(frozen=True)
class Period:
    """``first``..``last`` (CST days, inclusive), named ``label`` as it was written."""

    first: date
    last: date
    label: str

    @property
    def start(self) -> datetime:
        """00:00 CST of the first day, in UTC."""
        return datetime.combine(self.first, time(), CST).astimezone(UTC)

    @property
    def end(self) -> datetime:
        """00:00 CST of the day after the last, in UTC (excluded)."""
        return datetime.combine(self.last + timedelta(days=1), time(), CST).astimezone(UTC)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    def overlaps(self, start: datetime, end: datetime | None) -> bool:
        """Whether ``[start, end)`` (``end`` None: open) meets this period."""
        return start < self.end and (end is None or end > self.start)

    @classmethod
    def year(cls, year: int) -> Period:
        return cls.parse(f"{year:04d}")

    @classmethod
    def parse(cls, text: str) -> Period:
        """A period from ``2025``, ``2025-Q2``, ``2025-03`` or ``2025-01-01..2025-06-30``."""
        value = text.strip()
        try:
            if m := re.fullmatch(r"(\d{4})", value, re.ASCII):
                y = int(m[1])
                return cls._make(date(y, 1, 1), date(y, 12, 31), value)
            if m := re.fullmatch(r"(\d{4})-[Qq]([1-4])", value, re.ASCII):
                y, q = int(m[1]), int(m[2])
                first = date(y, 3 * q - 2, 1)
                return cls._make(first, _month_end(date(y, 3 * q, 1)), f"{y:04d}-Q{q}")
            if m := re.fullmatch(r"(\d{4})-(\d{2})", value, re.ASCII):
                first = date(int(m[1]), int(m[2]), 1)
                return cls._make(first, _month_end(first), value)
            if m := re.fullmatch(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})", value, re.ASCII):
                return cls._make(date.fromisoformat(m[1]), date.fromisoformat(m[2]), value)
        except ValueError as e:
            raise PeriodError(f"{text!r} is not a valid period: {e}") from None
        raise PeriodError(
            f"{text!r} is not a period: write 2025, 2025-Q2, 2025-03 or 2025-01-01..2025-06-30"
        )

    @classmethod
    def _make(cls, first: date, last: date, label: str) -> Period:
        if first.year < 2000 or last.year > 2200:
            raise PeriodError(f"{label!r}: years run from 2000 to 2200")
        if last < first:
            raise PeriodError(f"{label!r} ends before it starts")
        if (last - first).days + 1 > MAX_DAYS:
            raise PeriodError(f"{label!r} is longer than ten years")
        return cls(first, last, label)


def _month_end(day: date) -> date:
    following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return following - timedelta(days=1)
