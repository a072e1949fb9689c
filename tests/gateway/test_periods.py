"""Reporting periods: parsed as people write them, bounded on CST days."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from gateway.periods import Period, PeriodError


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("2025", date(2025, 1, 1), date(2025, 12, 31)),
        ("2025-Q1", date(2025, 1, 1), date(2025, 3, 31)),
        ("2024-q4", date(2024, 10, 1), date(2024, 12, 31)),
        ("2024-02", date(2024, 2, 1), date(2024, 2, 29)),
        ("2025-12", date(2025, 12, 1), date(2025, 12, 31)),
        ("2025-03-05..2025-03-05", date(2025, 3, 5), date(2025, 3, 5)),
    ],
)
def test_periods_parse_to_their_days(text: str, first: date, last: date) -> None:
    p = Period.parse(text)
    assert (p.first, p.last) == (first, last)
    assert p.days == (last - first).days + 1


def test_a_period_runs_on_cst_days() -> None:
    p = Period.parse("2025")
    assert p.start == datetime(2024, 12, 31, 16, tzinfo=UTC)
    assert p.end == datetime(2025, 12, 31, 16, tzinfo=UTC)
    assert p.contains(datetime(2024, 12, 31, 16, tzinfo=UTC))
    assert not p.contains(datetime(2024, 12, 31, 15, 59, tzinfo=UTC))
    assert not p.contains(p.end)
    assert p.overlaps(datetime(2020, 1, 1, tzinfo=UTC), None)
    assert not p.overlaps(p.end, None)


@pytest.mark.parametrize(
    "text",
    ["", "25", "2025-13", "2025-Q5", "2025-02-30..2025-03-01", "2025-03-02..2025-03-01",
     "2000-01-01..2020-01-01", "1999", "2025; drop table", "２０２５"],
)  # fmt: skip
def test_bad_periods_are_refused_with_the_reason(text: str) -> None:
    with pytest.raises(PeriodError, match=r"period|ends before|ten years|years run"):
        Period.parse(text)
