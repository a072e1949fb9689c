"""A grant's term: when it may start, how long it may run, and times made safe to use.

Stage: issuing a grant (before data flow step 1); reading any stored time.

Rules (:func:`check_term`; a refusal is :class:`~gateway.grants.errors.GrantError`,
a 422 with the rule in its message):

- A grant starts when it is issued: ``valid_from`` within the clock skew of
  the gateway's clock (``DSR_GATEWAY_GRANT_CLOCK_SKEW_SECONDS``, 300 s by
  default), neither back-dated nor post-dated.
- It runs at most three calendar years: ``valid_until`` on or before the same
  date and time three years after ``valid_from`` (from 29 February, 28
  February), and at most ``max_days`` where a deployment set a lower maximum.
- It ends by the end of :data:`LAST_YEAR`, and after it starts, in the future.

Times from people and from the store may be anywhere in ``datetime``'s range
(years 1 to 9999); :func:`utc` refuses one that cannot be moved to UTC, and
:func:`end_after` one whose end cannot be represented, instead of overflowing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.grants.errors import GrantError

TERM_YEARS = 3
# A term in days is at most three years holding one leap day: the bound of inputs
# given in days (the calendar rule above still applies).
MAX_TERM_DAYS = 3 * 365 + 1
LAST_YEAR = 2100
DEFAULT_CLOCK_SKEW = timedelta(seconds=300)
LATEST = datetime.max.replace(tzinfo=UTC)


def utc(value: datetime, what: str = "a time") -> datetime:
    """``value`` in UTC; GrantError when it is naive or cannot be represented in UTC."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise GrantError("times must be timezone-aware")
    try:
        return value.astimezone(UTC)
    except OverflowError as e:
        raise GrantError(f"{what} is out of range") from e


def years_after(start: datetime, years: int = TERM_YEARS) -> datetime:
    """The same date and time ``years`` later (29 February -> 28 February); the latest
    representable time where that is past year 9999."""
    year = start.year + years
    if year > LATEST.year:
        return LATEST
    day = 28 if (start.month, start.day) == (2, 29) else start.day
    return start.replace(year=year, day=day)


def end_after(start: datetime, days: int) -> datetime:
    """The end of a term of ``days`` days from ``start`` (1 to :data:`MAX_TERM_DAYS`)."""
    if days < 1:
        raise GrantError(f"a term is at least one day, not {days}")
    if days > MAX_TERM_DAYS:
        raise GrantError(f"a grant runs at most {MAX_TERM_DAYS} days (three years), not {days}")
    try:
        return start + timedelta(days=days)
    except OverflowError as e:
        raise GrantError("the term's end is out of range") from e


def check_term(
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
    max_days: int | None = None,
) -> None:
    """Rule: a grant starts now and ends within three calendar years, by the end of 2100."""
    if abs(start - now) > clock_skew:
        raise GrantError(
            f"valid_from must be the time of issue (within {int(clock_skew.total_seconds())} "
            f"seconds of the gateway's clock, {now.isoformat(timespec='seconds')}): "
            "a grant is neither back-dated nor post-dated"
        )
    if end <= start:
        raise GrantError("valid_until must be after valid_from")
    if end <= now:
        raise GrantError("valid_until is in the past")
    if end.year > LAST_YEAR:
        raise GrantError(f"valid_until must be no later than the end of {LAST_YEAR}")
    limit = years_after(start)
    if end > limit:
        raise GrantError(
            f"a grant runs at most {TERM_YEARS} years: valid_until must be on or before "
            f"{limit.isoformat(timespec='seconds')}"
        )
    if max_days is not None and end - start > timedelta(days=max_days):
        raise GrantError(f"a grant runs at most {max_days} days here")
