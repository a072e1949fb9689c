"""Rectification deadlines: a stop's deadline passed with the stop still placed raises a
termination proposal, once.

Stage: governing a grant. Chengdu implementation rules (004) art. 33: the implementing
agency sets a time limit for rectification and may suspend data supply meanwhile,
restoring it once rectified; a limit missed ends the agreement. A stop
(``gateway.grants.stops``) may carry the limit as ``rectify_by`` on its hold; lifting
the stop in time removes the hold, and with it the deadline.

Invariants:

- One proposal per hold whose deadline passed: its ``origin`` names the grant, the
  holder and when the hold was placed, and is unique in the store, so a sweep that
  sees the same hold again, or two sweeps at once, raise it once.
- The proposal goes through the ordinary process (administrators approve, the notice
  period runs): a missed deadline does not revoke by itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.grants.model import LIVE
from gateway.store.tables import grant_holds, grants
from gateway.terminations.model import RECTIFICATION_BASIS, Kind
from gateway.terminations.service import TerminationService


@dataclass(frozen=True)
class MissedDeadline:
    grant_id: str
    holder_kind: str
    holder: str
    placed_at: datetime
    rectify_by: datetime

    @property
    def origin(self) -> str:
        held = f"{self.holder_kind}:{self.holder}:{self.placed_at.isoformat()}"
        return f"rectify:{self.grant_id}:{hashlib.sha256(held.encode()).hexdigest()[:24]}"


def missed(conn: Connection, now: datetime) -> list[MissedDeadline]:
    """Holds on live grants whose rectification deadline is past at ``now``."""
    query = (
        sa.select(grant_holds)
        .join(grants, grants.c.id == grant_holds.c.grant_id)
        .where(grants.c.state.in_([s.value for s in LIVE]))
        .where(grant_holds.c.rectify_by.is_not(None), grant_holds.c.rectify_by <= now)
        .order_by(grant_holds.c.rectify_by, grant_holds.c.grant_id)
    )
    return [
        MissedDeadline(r.grant_id, r.holder_kind, r.holder, r.placed_at, r.rectify_by)
        for r in conn.execute(query)
    ]


def propose_for(conn: Connection, service: TerminationService, m: MissedDeadline) -> str | None:
    """Raise the proposal for ``m`` unless it was raised: its id, or None."""
    grant = service.grants.get(conn, m.grant_id)
    who = "the administrators" if m.holder_kind == "admin" else f"provider {m.holder}"
    reason = (
        f"rectification deadline {m.rectify_by.isoformat()} of the stop placed by {who} "
        f"on {m.placed_at.date().isoformat()} missed"
    )
    found = service.raise_once(
        conn, grant, kind=Kind.RECTIFICATION, reason=reason, legal_basis=RECTIFICATION_BASIS,
        origin=m.origin, now=service.clock(),
    )  # fmt: skip
    return None if found is None else found.id
