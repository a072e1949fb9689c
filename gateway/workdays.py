"""The statutory working-day calendar every deadline counts in.

The rules set deadlines in working days (工作日): for example a data
request's formal review within 5 of them (Chengdu implementation rules, 004
art. 20), a termination reported 10 of them ahead (art. 24). A working day
is what the State Council's yearly notice makes it: Monday to Friday, less
the public holidays, plus the weekend days worked in their place (调休).

Where a year's days come from, first match wins:

1. the deployment's override file (``DSR_GATEWAY_CALENDAR_FILE``, by default
   ``<data_dir>/calendar.toml``), for years the package does not know yet or
   to correct one it does::

       [2027]
       holidays = ["2027-01-01", "2027-02-05", ...]   # weekdays not worked
       workdays = ["2027-02-07"]                       # weekend days worked

2. the ``chinese-calendar`` package (years it ships: 2004 to 2026 in 1.11);
3. Monday to Friday. A deadline that counts through such a year is
   *provisional* (:attr:`Due.provisional`): it is shown so, and since every
   deadline is computed again from its step's start whenever it is read, it
   becomes final by itself once the year's calendar is loaded (the file is
   read again when it changes).

Days are China Standard Time (UTC+8, no daylight saving). A step that began
on any day has ``n`` working days after that day: its deadline is the end
(24:00 CST) of the ``n``-th working day following the day it began. Any
stored time is accepted (years 1 to 9999): a deadline past the calendar's
end is :data:`LATEST` (never due).
"""

from __future__ import annotations

import threading
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path

import chinese_calendar

from gateway.errors import ConfigurationError

CST = timezone(timedelta(hours=8), "CST")
LATEST = datetime.max.replace(tzinfo=UTC)
CALENDAR_FILE = "calendar.toml"  # under the data directory, unless a setting names another
# Beyond this many days a count runs by weekday arithmetic over years nobody knows.
_DAY_BY_DAY = 800


@dataclass(frozen=True)
class YearDays:
    """One year's exceptions to Monday-Friday: weekdays off, weekend days worked."""

    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()

    def working(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays


@dataclass(frozen=True)
class Due:
    """A deadline: the end of its last working day (UTC), and whether a year it counts
    through is not known yet (weekdays were counted there)."""

    at: datetime
    provisional: bool = False


def cst_date(moment: datetime) -> date:
    """The CST calendar day ``moment`` falls on (the calendar's first or last day where
    the shift to UTC+8 runs off it)."""
    try:
        return moment.astimezone(CST).date()
    except OverflowError:
        return date.max if moment.year > 1 else date.min


def _package_years() -> frozenset[int]:
    days = [*chinese_calendar.holidays, *chinese_calendar.workdays]
    return frozenset(d.year for d in days)


PACKAGE_YEARS = _package_years()


def parse_overrides(text: str, where: str = "the calendar file") -> dict[int, YearDays]:
    """The years of an override file (TOML, see the module docstring);
    ConfigurationError naming the first thing wrong."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigurationError(f"{where} is not TOML: {e}") from e
    years: dict[int, YearDays] = {}
    for key, table in raw.items():
        if not (key.isdigit() and 1 <= int(key) <= 9999) or not isinstance(table, dict):
            raise ConfigurationError(f"{where}: [{key}] is not a year's table")
        year = int(key)
        unknown = sorted(set(table) - {"holidays", "workdays"})
        if unknown:
            raise ConfigurationError(f"{where}: [{key}] has unknown keys {unknown}")
        days: dict[str, frozenset[date]] = {}
        for name in ("holidays", "workdays"):
            values = table.get(name, [])
            parsed = set()
            for value in values if isinstance(values, list) else [values]:
                try:
                    day = value if isinstance(value, date) else date.fromisoformat(str(value))
                except ValueError as e:
                    raise ConfigurationError(
                        f"{where}: [{key}] {name}: {value!r} is not a date"
                    ) from e
                if day.year != year:
                    raise ConfigurationError(f"{where}: [{key}] {name}: {day} is not in {year}")
                parsed.add(day)
            days[name] = frozenset(parsed)
        if days["holidays"] & days["workdays"]:
            raise ConfigurationError(f"{where}: [{key}] lists a day as holiday and workday")
        years[year] = YearDays(days["holidays"], days["workdays"])
    return years


@dataclass
class Calendar:
    """Working days from the override file (if any), the package, or weekdays."""

    overrides: Mapping[int, YearDays] = field(default_factory=dict)
    path: Path | None = None
    _stamp: tuple[int, int] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_file(cls, path: Path | None) -> Calendar:
        """A calendar reading ``path`` (if it exists, now and whenever it changes)."""
        found = cls(path=path)
        found._refresh()
        return found

    def _refresh(self) -> None:
        if self.path is None:
            return
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            stamp = None
        else:
            stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if stamp == self._stamp:
                return
            text = self.path.read_text(encoding="utf-8") if stamp is not None else ""
            self.overrides = parse_overrides(text, str(self.path))
            self._stamp = stamp

    def knows(self, year: int) -> bool:
        """Whether ``year``'s holidays and make-up days are known."""
        self._refresh()
        return _knows(self.overrides, year)

    def is_working_day(self, day: date) -> bool:
        self._refresh()
        return _working(self.overrides, day)

    def deadline(self, start: datetime, days: int) -> Due:
        """The end of the ``days``-th working day after the (CST) day ``start`` falls on."""
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError("start must be timezone-aware")
        if days < 1:
            raise ValueError("a deadline is at least one working day")
        self._refresh()
        overrides = self.overrides  # one file's version for the whole count
        day = cst_date(start)
        counted, provisional = 0, False
        try:
            while counted < days:
                day += timedelta(days=1)
                provisional = provisional or not _knows(overrides, day.year)
                counted += _working(overrides, day)
            end = datetime.combine(day + timedelta(days=1), time(0), CST).astimezone(UTC)
        except OverflowError:
            return Due(LATEST, False)
        return Due(end, provisional)

    def working_days_left(self, due: datetime, now: datetime) -> int:
        """Working days from ``now`` until ``due``, counting today's when it is one
        (0: overdue). ``due`` is a deadline from :meth:`deadline`."""
        if now >= due:
            return 0
        self._refresh()
        overrides = self.overrides
        day, last = cst_date(now), cst_date(due - timedelta(microseconds=1))
        left = 0
        while day <= last:
            if (last - day).days > _DAY_BY_DAY and not _knows(overrides, day.year):
                return left + _weekdays(day, last)
            left += _working(overrides, day)
            if day == date.max:
                break
            day += timedelta(days=1)
        return left


def _knows(overrides: Mapping[int, YearDays], year: int) -> bool:
    return year in overrides or year in PACKAGE_YEARS


def _working(overrides: Mapping[int, YearDays], day: date) -> bool:
    year = overrides.get(day.year)
    if year is not None:
        return year.working(day)
    if day.year in PACKAGE_YEARS:
        return bool(chinese_calendar.is_workday(day))
    return day.weekday() < 5


def _weekdays(first: date, last: date) -> int:
    """Monday-to-Friday days from ``first`` to ``last``, both included."""
    span = (last - first).days + 1
    weeks, rest = divmod(span, 7)
    return weeks * 5 + sum((first.weekday() + i) % 7 < 5 for i in range(rest))
