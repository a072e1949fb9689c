"""What a report reads from the audit log: the period's events, and every job's submission.

An event belongs to the period of its ``at`` (the time the chain recorded it,
``start <= at < end``), and to the CST month of that time. A job belongs to the
operator that submitted it: the ``actor`` of its ``job.submitted`` event, read from
the whole log (a job submitted before the period may end in it). That is all: with
an export of the log (``GET /v1/audit/events``) anyone can recount a report's
numbers; what a report takes from the store instead (names, and who owns a grant, a
registration, a product or an incident) its module says.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.audit import Event
from gateway.periods import Period
from gateway.store.tables import audit_events
from gateway.workdays import CST

# A job that ends in one of these states has ended; held and blocked wait for review.
ENDED = ("released", "failed", "cancelled", "rejected", "completed", "denied", "refused")
UNDER_REVIEW = ("held", "blocked")
# The event types the reports count: only these are read, so a year of scope decisions
# (the bulk of the log at city scale) never passes through a report's memory.
TYPES = frozenset({
    "job.submitted", "job.state", "job.refused", "review.state", "review.vote",
    "access.denied", "grant.hold", "product.registration", "product.status", "incident.state",
})  # fmt: skip


@dataclass(frozen=True)
class Submission:
    """A job as its ``job.submitted`` event describes it."""

    job: str
    operator: str
    grant: str | None
    kind: str
    dummy: bool
    datasets: tuple[str, ...]


@dataclass(frozen=True)
class Trail:
    period: Period
    events: tuple[Event, ...]  # the period's events of the TYPES, in chain order
    jobs: dict[str, Submission]  # every job ever submitted, by id

    def of_type(self, *types: str) -> Iterator[Event]:
        unread = set(types) - TYPES
        if unread:  # a programming error: the trail never read them
            raise ValueError(f"the trail reads no {sorted(unread)} events: add them to TYPES")
        return (e for e in self.events if e.type in types)

    def job_of(self, event: Event) -> Submission | None:
        """The job an event is about (``detail.job``), if it was submitted."""
        job = event.detail.get("job")
        return self.jobs.get(job) if isinstance(job, str) else None


def month(at: datetime) -> str:
    """The CST month of a time, ``2025-03``."""
    return at.astimezone(CST).strftime("%Y-%m")


def months(period: Period) -> tuple[str, ...]:
    """The CST months the period touches, ``2025-01`` ... (for charts)."""
    out, (y, m) = [], (period.first.year, period.first.month)
    while (y, m) <= (period.last.year, period.last.month):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return tuple(out)


def _event(row: sa.Row[tuple[object, ...]]) -> Event:
    m = row._mapping
    return Event(
        id=int(m["id"]),
        at=m["at"],
        type=str(m["type"]),
        actor=str(m["actor"]),
        grant_id=m["grant_id"],
        datasets=tuple(m["datasets"] or ()),
        detail=dict(m["detail"] or {}),
        prev_hash=str(m["prev_hash"]),
        hash=str(m["hash"]),
    )


def read_trail(conn: Connection, period: Period) -> Trail:
    """The period's events of the :data:`TYPES` and every submission (see the module
    docstring)."""
    c = audit_events.c
    rows = conn.execute(
        sa.select(audit_events)
        .where(c.type.in_(sorted(TYPES)), c.at >= period.start, c.at < period.end)
        .order_by(c.id)
    )
    events = tuple(_event(r) for r in rows)
    submitted = conn.execute(
        sa.select(audit_events).where(c.type == "job.submitted", c.at < period.end)
    )
    jobs: dict[str, Submission] = {}
    for r in submitted:
        e = _event(r)
        job = str(e.detail.get("job"))
        jobs[job] = Submission(
            job=job,
            operator=e.actor,
            grant=e.grant_id,
            kind=str(e.detail.get("kind")),
            dummy=bool(e.detail.get("dummy")),
            datasets=e.datasets,
        )
    return Trail(period, events, jobs)
