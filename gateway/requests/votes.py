"""Providers' votes on data requests, as rows of ``request_votes``: cast, read, counted.

Stage: a data request's provider review (before a grant supplies it).

Invariants:

- One row per provider, request and decision, never changed or removed: a
  provider approves once (a second approval is refused by the row's primary
  key and, before that, with a plain :class:`IllegalRequestTransition`); a
  provider who approved may still reject while the request waits for the
  others, which adds a row and ends the request.
- These functions only read and write rows, in the caller's transaction; the
  rules (who may vote, when the request moves) and the audit events are
  :class:`gateway.requests.service.RequestService`'s. :func:`serialise`
  queues the votes on one request, so the count a voter reads includes every
  vote committed before its own: two last approvals at once cannot both see
  the other missing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.requests.errors import IllegalRequestTransition
from gateway.requests.model import Decision, Vote
from gateway.store.engine import serialise_writers
from gateway.store.tables import request_votes

_BATCH = 500  # request ids per IN (SQLite's parameter limit)


def serialise(conn: Connection, request_id: str) -> None:
    """Hold the lock of ``request_id``'s votes until the end of ``conn``'s transaction."""
    serialise_writers(conn, f"dsr.request_votes.{request_id}")


def votes_of(conn: Connection, request_ids: Iterable[str]) -> dict[str, tuple[Vote, ...]]:
    """The votes on each of ``request_ids``, by provider; requests without any are absent."""
    ids = sorted(set(request_ids))
    found: dict[str, list[Vote]] = defaultdict(list)
    for start in range(0, len(ids), _BATCH):
        rows = conn.execute(
            sa.select(request_votes)
            .where(request_votes.c.request_id.in_(ids[start : start + _BATCH]))
            .order_by(request_votes.c.request_id, request_votes.c.provider)
        )
        for r in rows:
            m = r._mapping
            found[m["request_id"]].append(Vote(m["provider"], Decision(m["decision"]), m["at"]))
    return {k: tuple(v) for k, v in found.items()}


def approvals(votes: Iterable[Vote]) -> tuple[str, ...]:
    """The providers who approved, sorted."""
    return tuple(sorted(v.provider for v in votes if v.decision == Decision.APPROVED))


def cast(
    conn: Connection, request_id: str, provider: str, decision: Decision, at: datetime
) -> Vote:
    """Record ``provider``'s vote; IllegalRequestTransition when it cast this one already."""
    serialise(conn, request_id)
    earlier = votes_of(conn, [request_id]).get(request_id, ())
    mine = next((v for v in earlier if v.provider == provider and v.decision == decision), None)
    if mine is not None:
        raise IllegalRequestTransition(
            f"{provider} {mine.decision} data request {request_id} already"
        )
    conn.execute(
        request_votes.insert().values(
            request_id=request_id, provider=provider, decision=decision.value, at=at
        )
    )
    return Vote(provider, decision, at)
