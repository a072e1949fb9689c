"""The statutory calendar: holidays and make-up days from the package, the override file
for unknown years, weekdays (provisional) where nothing is known."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from gateway.errors import ConfigurationError
from gateway.workdays import CST, LATEST, Calendar, parse_overrides


def end_of(day: date) -> datetime:
    """The deadline that ends with ``day`` (24:00 CST), in UTC."""
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), CST).astimezone(UTC)


def test_national_day_2025_counts_the_make_up_saturday_and_skips_the_holiday() -> None:
    calendar = Calendar()
    filed = datetime(2025, 9, 30, 10, tzinfo=CST)
    due = calendar.deadline(filed, 5)
    # 1-8 October are off; Saturday 11 October is worked: 9, 10, 11, 13, 14.
    assert due == calendar.deadline(filed, 5)
    assert due.at == end_of(date(2025, 10, 14)) and not due.provisional
    assert calendar.is_working_day(date(2025, 9, 28))  # a make-up Sunday
    assert not calendar.is_working_day(date(2025, 10, 8))


def test_spring_festival_2026() -> None:
    calendar = Calendar()
    assert calendar.is_working_day(date(2026, 2, 14)) and calendar.is_working_day(date(2026, 2, 28))
    assert not any(calendar.is_working_day(date(2026, 2, d)) for d in range(15, 24))
    # From Thursday 12 February: 13, 14 (Saturday worked), then 24, 25, 26.
    due = calendar.deadline(datetime(2026, 2, 12, 9, tzinfo=CST), 5)
    assert due.at == end_of(date(2026, 2, 26))


def test_an_unknown_year_counts_weekdays_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "calendar.toml"
    calendar = Calendar.from_file(path)
    start = datetime(2026, 12, 28, 10, tzinfo=CST)  # Monday
    due = calendar.deadline(start, 5)
    assert due.provisional and due.at == end_of(date(2027, 1, 4))  # 29, 30, 31, 1 Jan, 4 Jan
    within = calendar.deadline(datetime(2026, 12, 1, tzinfo=CST), 5)
    assert not within.provisional
    path.write_text('[2027]\nholidays = ["2027-01-01"]\nworkdays = ["2027-01-02"]\n')
    again = calendar.deadline(start, 5)  # the file is read again when it changes
    assert not again.provisional and again.at == end_of(date(2027, 1, 4))  # 1 Jan off, 2 Jan on
    assert calendar.deadline(start, 4).at == end_of(date(2027, 1, 2))


def test_the_override_file_corrects_a_known_year(tmp_path: Path) -> None:
    path = tmp_path / "calendar.toml"
    path.write_text('[2025]\nholidays = ["2025-10-09"]\n')
    calendar = Calendar.from_file(path)
    assert not calendar.is_working_day(date(2025, 10, 9))
    # The file's year replaces the package's: 1 October is a weekday it does not list.
    assert calendar.is_working_day(date(2025, 10, 1))
    assert not Calendar().is_working_day(date(2025, 10, 1))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not toml [", "not TOML"),
        ('[2027]\nholidays = ["2028-01-01"]\n', "not in 2027"),
        ('[2027]\nholidays = ["tomorrow"]\n', "not a date"),
        ('[2027]\nholidays = ["2027-01-01"]\nworkdays = ["2027-01-01"]\n', "holiday and workday"),
        ("[2027]\nweekends = []\n", "unknown keys"),
        ("[next]\n", "not a year"),
    ],
)
def test_a_bad_override_file_is_refused_with_its_reason(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_overrides(text)


def test_far_times_neither_overflow_nor_take_long() -> None:
    calendar = Calendar()
    assert calendar.deadline(datetime(9999, 12, 30, tzinfo=UTC), 5).at == LATEST
    left = calendar.working_days_left(end_of(date(9999, 12, 1)), datetime(2026, 1, 1, tzinfo=UTC))
    assert 2_000_000 < left < 2_100_000
    monday = datetime(2026, 11, 23, 9, tzinfo=CST)
    due = calendar.deadline(monday, 5)
    assert calendar.working_days_left(due.at, monday) == 6  # today and five more
    assert calendar.working_days_left(due.at, due.at) == 0
