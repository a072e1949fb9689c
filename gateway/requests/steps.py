"""Each open step of a data request, its deadline on the statutory calendar, and who must act.

Stage: a data request, from submission to supply (Chengdu rules 004 art. 20).

Invariants:

- A deadline is computed from the step's start (``step_started_at``) whenever
  it is read, never stored: a deadline counted through a year the calendar
  did not know (``provisional``) becomes final by itself once the year's
  days are loaded (``gateway.workdays.Calendar``).
- Provider review counts its 10 working days plus the days of an approved
  extension (``RequestRecord.extension_days``).
- The responsible party of a step is fixed by art. 20: formal review and
  delivery the city office (administrators), provider review the providers
  who have not voted yet, supply the request's providers.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from datetime import datetime

from gateway.identity import Role
from gateway.notices.service import ADMINISTRATORS, to_account, to_role
from gateway.requests.model import STEP, RequestRecord, State
from gateway.workdays import Calendar

# The stored name of each step (notice keys, audit details): never change one.
STEP_KEY = {
    State.SUBMITTED: "formal_review",
    State.FORMAL_REVIEW_PASSED: "provider_review",
    State.PROVIDER_APPROVED: "supply",
    State.DATA_PROVIDED: "delivery",
}


@dataclass(frozen=True)
class Deadline:
    """The current step's deadline: the end of its last working day (UTC), whether a year
    it counts through is not known yet, and the working days it has."""

    step: str
    due: datetime
    overdue: bool
    provisional: bool
    days: int  # working days the step has, an approved extension included
    left: int  # working days from now until due, today's included (0: overdue)


def step_days(record: RequestRecord, deadline_days: Mapping[State, int]) -> int | None:
    """Working days the current step has (None once supplied or rejected)."""
    days = deadline_days.get(record.state)
    if days is None:
        return None
    if record.state == State.FORMAL_REVIEW_PASSED:
        days += record.extension_days
    return days


def deadline_of(
    calendar: Calendar,
    record: RequestRecord,
    deadline_days: Mapping[State, int],
    now: datetime,
) -> Deadline | None:
    """The current step's deadline at ``now`` (None once supplied or rejected)."""
    days = step_days(record, deadline_days)
    if days is None:
        return None
    due = calendar.deadline(record.step_started_at, days)
    return Deadline(
        STEP[record.state],
        due.at,
        now >= due.at,
        due.provisional,
        days,
        calendar.working_days_left(due.at, now),
    )


def responsible(record: RequestRecord, providers: Set[str]) -> list[str]:
    """The notice audiences who must act on the current step (empty once it is closed)."""
    if record.state in (State.SUBMITTED, State.DATA_PROVIDED):
        return [to_role(Role.ADMIN)]
    if record.state == State.FORMAL_REVIEW_PASSED:
        return [to_account(p) for p in sorted(providers - set(record.approvals))]
    if record.state == State.PROVIDER_APPROVED:
        return [to_account(p) for p in sorted(providers)]
    return []


def overseers() -> list[str]:
    """Who is told of every overdue step besides the responsible party."""
    return [ADMINISTRATORS]
