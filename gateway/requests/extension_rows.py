"""Extensions of a data request's provider review, as rows of ``request_extensions``.

Stage: a data request's provider review (Chengdu rules 004 art. 20: extended
once, by at most 10 working days, with the city office's approval).

Invariants:

- A row is a provider's ask (days, reason); its decision (``approved`` or
  ``refused``, by whom, why, when) is written once, by a compare-and-set on
  an undecided row, and never changed. Rows are never removed.
- These functions only read and write rows, in the caller's transaction; the
  rules (who may ask or decide, when, how many days) and the audit events and
  notices are ``gateway.requests.extensions``'.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.store.engine import serialise_writers
from gateway.store.tables import request_extensions

_BATCH = 500  # request ids per IN (SQLite's parameter limit)


class ExtensionDecision(StrEnum):
    """The city office's decision on an ask. Values are stored: never change them."""

    APPROVED = "approved"
    REFUSED = "refused"


@dataclass(frozen=True)
class Extension:
    id: str
    request_id: str
    provider: str
    days: int
    reason: str
    asked_at: datetime
    decision: ExtensionDecision | None
    decided_by: str | None
    decision_reason: str | None
    decided_at: datetime | None


def _extension(row: sa.Row[Any]) -> Extension:
    m = row._mapping
    decision = m["decision"]
    return Extension(
        id=m["id"],
        request_id=m["request_id"],
        provider=m["provider"],
        days=m["days"],
        reason=m["reason"],
        asked_at=m["asked_at"],
        decision=ExtensionDecision(decision) if decision else None,
        decided_by=m["decided_by"],
        decision_reason=m["decision_reason"],
        decided_at=m["decided_at"],
    )


def serialise(conn: Connection, request_id: str) -> None:
    """Hold the lock of ``request_id``'s extensions until ``conn``'s transaction ends, so
    an ask or decision reads every one committed before it."""
    serialise_writers(conn, f"dsr.request_extensions.{request_id}")


def extensions_of(conn: Connection, request_ids: Iterable[str]) -> dict[str, list[Extension]]:
    """The extensions of each of ``request_ids``, oldest first; those without are absent."""
    ids = sorted(set(request_ids))
    found: dict[str, list[Extension]] = defaultdict(list)
    for start in range(0, len(ids), _BATCH):
        rows = conn.execute(
            sa.select(request_extensions)
            .where(request_extensions.c.request_id.in_(ids[start : start + _BATCH]))
            .order_by(request_extensions.c.asked_at, request_extensions.c.id)
        )
        for row in rows:
            found[row._mapping["request_id"]].append(_extension(row))
    return dict(found)


def approved_days(found: Iterable[Extension]) -> int:
    return sum(e.days for e in found if e.decision == ExtensionDecision.APPROVED)


def insert(conn: Connection, extension: Extension) -> None:
    conn.execute(
        request_extensions.insert().values(
            id=extension.id,
            request_id=extension.request_id,
            provider=extension.provider,
            days=extension.days,
            reason=extension.reason,
            asked_at=extension.asked_at,
        )
    )


def record_decision(
    conn: Connection,
    extension_id: str,
    decision: ExtensionDecision,
    by: str,
    reason: str,
    at: datetime,
) -> bool:
    """Write the decision on an undecided ask; False when it was decided already."""
    done = conn.execute(
        sa.update(request_extensions)
        .where(request_extensions.c.id == extension_id, request_extensions.c.decision.is_(None))
        .values(decision=decision.value, decided_by=by, decision_reason=reason, decided_at=at)
    )
    return done.rowcount == 1
