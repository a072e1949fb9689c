"""Rate limits: calls of one product by one consumer, per sliding hour and day.

Every call that reaches evaluation is a row of ``he_calls`` (whatever its
outcome: a refused ciphertext counts too, so probing costs calls), written
in the transaction that checked the limits, under the writers' lock, so two
concurrent calls cannot both take the last one. The rows are in the store:
limits hold across restarts and gateway processes. A call over a limit is
refused (429, ``Retry-After``: when the oldest call in the full window
leaves it) and audited, and does not count.

Why it matters: a linear model of d features is determined by d + 1 chosen
queries, and verification answers could be chained over many claims; the
limits bound how fast either can happen (they do not prevent it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.he.errors import HERateLimited
from gateway.store.engine import serialise_writers
from gateway.store.tables import he_calls

LOCK = "dsr.he_calls"


@dataclass(frozen=True)
class Limits:
    per_hour: int
    per_day: int

    def windows(self) -> tuple[tuple[timedelta, int, str], ...]:
        hour, day = timedelta(hours=1), timedelta(days=1)
        return ((hour, self.per_hour, "hour"), (day, self.per_day, "day"))


def take(conn: Connection, limits: Limits, product_id: str, consumer: str, now: datetime) -> int:
    """Count one call of ``product_id`` by ``consumer`` at ``now`` (the app's clock), or raise
    ``HERateLimited``.

    Returns the new call's row id (its outcome is set by :func:`settle`)."""
    serialise_writers(conn, LOCK)
    mine = sa.and_(he_calls.c.product_id == product_id, he_calls.c.consumer == consumer)
    for window, limit, name in limits.windows():
        since = now - window
        times = (
            sa.select(he_calls.c.at)
            .where(mine, he_calls.c.at > since)
            .order_by(he_calls.c.at.desc())
            .limit(limit)
        )
        recent = [r[0] for r in conn.execute(times)]
        if len(recent) >= limit:
            wait = (recent[-1] + window - now).total_seconds()
            raise HERateLimited(
                f"{consumer} called product {product_id} {limit} times in the last {name}: "
                "the limit; try again later",
                max(1, math.ceil(wait)),
            )
    done = conn.execute(
        sa.insert(he_calls).values(
            product_id=product_id, consumer=consumer, at=now, outcome="evaluating"
        )
    )
    key = done.inserted_primary_key
    assert key is not None
    return int(key[0])


def settle(conn: Connection, call_id: int, outcome: str, eval_ms: float | None = None) -> None:
    """Record how the call ended (``answered`` or the refusal's class) and how long its
    evaluation took, in milliseconds (metering)."""
    conn.execute(
        sa.update(he_calls).where(he_calls.c.id == call_id).values(outcome=outcome, eval_ms=eval_ms)
    )
