"""The stops held on grants, as rows of ``grant_holds``: read, placed, lifted.

A hold may carry a rectification deadline (``rectify_by``, Chengdu implementation
rules 004 art. 33): ``gateway.terminations.rectification`` proposes ending the grant
when it passes with the hold still placed.

Stage: governing a grant (before data flow step 1; in force at every step).

These functions only read and write rows, in the caller's transaction; the
rules (who holds what, when the grant's state follows) and the audit events
are :class:`gateway.grants.service.GrantService`'s, which calls them with the
grant's row locked, so two parties changing holds at once queue.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.grants.model import Hold, Holder, HolderKind
from gateway.store.tables import grant_holds

_BATCH = 500  # grant ids per IN (SQLite's parameter limit)


def _where(grant_id: str, holder: Holder) -> sa.ColumnElement[bool]:
    return sa.and_(
        grant_holds.c.grant_id == grant_id,
        grant_holds.c.holder_kind == holder.kind.value,
        grant_holds.c.holder == holder.name,
    )


def holds_of(conn: Connection, grant_ids: Iterable[str]) -> dict[str, tuple[Hold, ...]]:
    """The holds on each of ``grant_ids`` (oldest first); grants without any are absent."""
    ids = sorted(set(grant_ids))
    found: dict[str, list[Hold]] = defaultdict(list)
    for start in range(0, len(ids), _BATCH):
        rows = conn.execute(
            sa.select(grant_holds)
            .where(grant_holds.c.grant_id.in_(ids[start : start + _BATCH]))
            .order_by(grant_holds.c.placed_at, grant_holds.c.holder_kind, grant_holds.c.holder)
        )
        for r in rows:
            m = r._mapping
            holder = Holder(HolderKind(m["holder_kind"]), m["holder"])
            found[m["grant_id"]].append(
                Hold(holder, m["reason"], m["placed_by"], m["placed_at"], m["rectify_by"])
            )
    return {k: tuple(v) for k, v in found.items()}


def place(
    conn: Connection,
    grant_id: str,
    holder: Holder,
    *,
    reason: str,
    actor: str,
    at: datetime,
    rectify_by: datetime | None = None,
) -> Hold:
    conn.execute(
        grant_holds.insert().values(
            grant_id=grant_id,
            holder_kind=holder.kind.value,
            holder=holder.name,
            reason=reason,
            placed_by=actor,
            placed_at=at,
            rectify_by=rectify_by,
        )
    )
    return Hold(holder, reason, actor, at, rectify_by)


def lift(conn: Connection, grant_id: str, holder: Holder) -> None:
    conn.execute(grant_holds.delete().where(_where(grant_id, holder)))


def clear(conn: Connection, grant_id: str) -> None:
    """Remove every hold on the grant (it ended: its holds are moot)."""
    conn.execute(grant_holds.delete().where(grant_holds.c.grant_id == grant_id))
