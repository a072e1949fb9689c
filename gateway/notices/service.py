"""Notices: what the gateway tells people without being asked.

A deadline passed, a grant's term ends in three months, a termination was
approved: the party who must act, and whoever oversees them, are told. A
notice goes to *audiences*, each an account (``account:<name>``) or every
holder of a role (``role:<role>``); an account reads those addressed to it
and to its roles.

Invariants:

- A notice is written once: its ``key`` names the event (for example
  ``request:r-1:formal_review:overdue``), and (key, audience) is unique, so
  a sweep that sees the same event again, or two gateways sweeping at once,
  add nothing. :func:`notify` says whether this call wrote it.
- Every notice written is audited (``notice.sent``: key, kind, audiences) in
  the caller's transaction; a repeated one is not.
- Notices carry identifiers and dates, never data values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gateway.audit import append
from gateway.audit.chain import SYSTEM
from gateway.errors import GatewayError
from gateway.identity import Account, Role
from gateway.store.tables import notices


class NoticeError(GatewayError):
    """A notice that cannot be written (no audience, a malformed audience)."""


def to_account(name: str) -> str:
    return f"account:{name}"


def to_role(role: Role | str) -> str:
    return f"role:{Role(role).value}"


ADMINISTRATORS = to_role(Role.ADMIN)


@dataclass(frozen=True)
class Notice:
    id: int
    key: str
    audience: str
    kind: str
    subject: str
    detail: dict[str, Any]
    at: datetime


def _check_audience(audience: str) -> str:
    kind, _, name = audience.partition(":")
    if kind == "role":
        Role(name)  # ValueError for an unknown role
    elif kind != "account" or not name:
        raise NoticeError(f"a notice goes to account:<name> or role:<role>, not {audience!r}")
    return audience


def notify(
    conn: Connection,
    *,
    key: str,
    kind: str,
    subject: str,
    audiences: Iterable[str],
    at: datetime,
    detail: Mapping[str, Any] | None = None,
    actor: str = SYSTEM,
    grant_id: str | None = None,
    datasets: Iterable[str] = (),
) -> bool:
    """Write the notice ``key`` to each audience that has not had it; True when this call
    wrote it to any (and audited that), False when every audience had it already."""
    wanted = sorted({_check_audience(a) for a in audiences})
    if not wanted:
        raise NoticeError(f"notice {key!r} has no audience")
    rows = [
        {"key": key, "audience": a, "kind": kind, "subject": subject,
         "detail": dict(detail or {}), "at": at}
        for a in wanted
    ]  # fmt: skip
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    written = []
    for row in rows:
        stmt = (
            insert(notices)
            .values(row)
            .on_conflict_do_nothing(index_elements=["key", "audience"])
            .returning(notices.c.id)
        )
        if conn.execute(stmt).first() is not None:
            written.append(row["audience"])
    if not written:
        return False
    append(
        conn,
        "notice.sent",
        actor,
        grant_id=grant_id,
        datasets=datasets,
        detail={"key": key, "kind": kind, "subject": subject, "to": written},
    )
    return True


def audiences_of(account: Account) -> list[str]:
    return [to_account(account.name), *(to_role(r) for r in sorted(account.roles))]


def notices_for(conn: Connection, account: Account, *, limit: int = 200) -> list[Notice]:
    """The newest notices addressed to ``account`` or to one of its roles (each once)."""
    query = (
        sa.select(notices)
        .where(notices.c.audience.in_(audiences_of(account)))
        .order_by(notices.c.at.desc(), notices.c.id.desc())
        .limit(limit * 2)
    )
    seen: set[str] = set()
    found: list[Notice] = []
    for row in conn.execute(query):
        m = row._mapping
        if m["key"] in seen:
            continue
        seen.add(m["key"])
        found.append(Notice(**{k: m[k] for k in Notice.__dataclass_fields__}))
    return found[:limit]


def sent(conn: Connection, key: str) -> bool:
    """Whether the notice ``key`` was written to anyone."""
    query = sa.select(notices.c.id).where(notices.c.key == key).limit(1)
    return conn.execute(query).first() is not None
