"""The store's gauges, read at scrape time: jobs, queues, the audit chain, encrypted calls.

A scrape reads the store in one read-only transaction (one snapshot, no write
lock; ``gateway.store.read_transaction``) with six aggregate queries, each
answered from an index (``ix_jobs_state_outcome`` and ``ix_he_calls_outcome``
are there for it) or bounded by the queue's cap:

1. ``dsr_jobs{state, outcome}``: jobs counted by state and outcome;
2. the operators with a job (``dsr_jobs_queued`` shows each, 0 when none waits);
3. ``dsr_jobs_queued{operator}``: queued jobs per operator (at most
   ``max_queued_per_operator`` each);
4. the audit chain's head (``max(id)``: ids run from 1 without gaps);
5. the newest checkpoint (``max(event_id)``, ``max(at)``): its age, and the
   events since it;
6. encrypted calls counted by outcome (``he_calls``).

Label values are the store's own bounded sets (job states and outcome codes,
call outcomes, operator account names), never an id. Ages use the app's clock.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine

from gateway.store import read_transaction
from gateway.store.lifecycle import Clock
from gateway.store.tables import audit_checkpoints, audit_events, he_calls, jobs

QUEUED = "queued"  # gateway.jobs.model.State.QUEUED


@dataclass(frozen=True)
class StoreSnapshot:
    """What one scrape read from the store."""

    jobs: tuple[tuple[str, str, int], ...]  # (state, outcome, count)
    queued: tuple[tuple[str, int], ...]  # (operator, queued jobs), every operator with a job
    audit_head: int  # the newest event's id: the chain's length
    checkpoint_event: int | None  # the newest checkpoint's head
    checkpoint_at: datetime | None
    he_calls: tuple[tuple[str, int], ...]  # (outcome, count)
    now: datetime
    read_seconds: float


def read(conn: Connection, now: datetime) -> StoreSnapshot:
    """The snapshot of the store the gauges show (six aggregate queries on ``conn``)."""
    started = time.perf_counter()
    counted = conn.execute(
        sa.select(jobs.c.state, jobs.c.outcome, sa.func.count()).group_by(
            jobs.c.state, jobs.c.outcome
        )
    ).all()
    operators = conn.execute(sa.select(jobs.c.operator).distinct()).scalars().all()
    waiting: dict[str, int] = dict(
        conn.execute(
            sa.select(jobs.c.operator, sa.func.count())
            .where(jobs.c.state == QUEUED)
            .group_by(jobs.c.operator)
        ).all()
    )
    head = conn.execute(sa.select(sa.func.max(audit_events.c.id))).scalar()
    checkpoint = conn.execute(
        sa.select(sa.func.max(audit_checkpoints.c.event_id), sa.func.max(audit_checkpoints.c.at))
    ).one()
    calls = conn.execute(
        sa.select(he_calls.c.outcome, sa.func.count()).group_by(he_calls.c.outcome)
    ).all()
    return StoreSnapshot(
        jobs=tuple((str(s), str(c), int(n)) for s, c, n in counted),
        queued=tuple((str(o), int(waiting.get(o, 0))) for o in sorted(operators)),
        audit_head=int(head or 0),
        checkpoint_event=int(checkpoint[0]) if checkpoint[0] is not None else None,
        checkpoint_at=checkpoint[1],
        he_calls=tuple((str(outcome), int(n)) for outcome, n in calls),
        now=now,
        read_seconds=time.perf_counter() - started,
    )


def families(snapshot: StoreSnapshot | None) -> list[Metric]:
    """The metric families of ``snapshot``; without one, the families alone (``describe``)."""
    by_state = GaugeMetricFamily(
        "dsr_jobs", "Jobs in the store by state and outcome code.", labels=["state", "outcome"]
    )
    queued = GaugeMetricFamily(
        "dsr_jobs_queued", "Jobs waiting in the queue, per operator.", labels=["operator"]
    )
    chain = GaugeMetricFamily("dsr_audit_chain_length", "Events in the audit chain.")
    age = GaugeMetricFamily(
        "dsr_audit_checkpoint_age_seconds",
        "Seconds since the newest signed checkpoint of the audit chain (absent before the first).",
    )
    lag = GaugeMetricFamily(
        "dsr_audit_checkpoint_lag_events",
        "Audit events after the newest signed checkpoint (all of them before the first).",
    )
    calls = CounterMetricFamily(
        "dsr_he_calls", "Encrypted calls that reached evaluation, by outcome.", labels=["outcome"]
    )
    cost = GaugeMetricFamily(
        "dsr_metrics_store_read_seconds", "Seconds this scrape spent reading the store."
    )
    every = [by_state, queued, chain, age, lag, calls, cost]
    if snapshot is None:
        return every
    for state, outcome, n in sorted(snapshot.jobs):
        by_state.add_metric([state, outcome], n)
    for operator, n in snapshot.queued:
        queued.add_metric([operator], n)
    chain.add_metric([], snapshot.audit_head)
    if snapshot.checkpoint_at is not None:
        age.add_metric([], max(0.0, (snapshot.now - snapshot.checkpoint_at).total_seconds()))
    else:
        every.remove(age)
    lag.add_metric([], snapshot.audit_head - (snapshot.checkpoint_event or 0))
    for outcome, n in sorted(snapshot.he_calls):
        calls.add_metric([outcome], n)
    cost.add_metric([], snapshot.read_seconds)
    return every


class StoreCollector(Collector):
    """The store's gauges for one app's registry: one read transaction per scrape."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    def describe(self) -> Iterable[Metric]:
        return families(None)

    def collect(self) -> Iterator[Metric]:
        with read_transaction(self._engine) as conn:
            snapshot = read(conn, self._clock())
        yield from families(snapshot)
