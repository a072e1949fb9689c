"""Stored data requests, read with their approvals (counted from ``request_votes``) and
the working days of their approved extension (``request_extensions``).

Stage: a data request, from submission to supply. Reading only: every write
is :class:`gateway.requests.service.RequestService`'s.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.requests import extension_rows, votes
from gateway.requests.errors import UnknownRequest
from gateway.requests.model import RequestRecord, State
from gateway.store.tables import data_requests
from sandbox.views.build import DatasetScope


def _record(row: sa.Row[Any]) -> RequestRecord:
    m = row._mapping
    return RequestRecord(
        id=m["id"],
        operator=m["operator"],
        scenario=m["scenario"],
        purpose=m["purpose"],
        content=m["content"],
        use=m["intended_use"],
        scopes=tuple(DatasetScope(s["dataset"], tuple(s["columns"])) for s in m["scopes"]),
        state=State(m["state"]),
        created_at=m["created_at"],
        step_started_at=m["step_started_at"],
        approvals=(),
        reason=m["reason"],
        legal_basis=m["legal_basis"],
        grant_id=m["grant_id"],
    )


def _with_approvals(conn: Connection, found: list[RequestRecord]) -> list[RequestRecord]:
    ids = [r.id for r in found]
    cast = votes.votes_of(conn, ids)
    extended = extension_rows.extensions_of(conn, ids)
    return [
        replace(
            r,
            approvals=votes.approvals(cast.get(r.id, ())),
            extension_days=extension_rows.approved_days(extended.get(r.id, ())),
        )
        for r in found
    ]


def read_request(conn: Connection, request_id: str) -> RequestRecord:
    """The request ``request_id``; UnknownRequest when there is none."""
    row = conn.execute(sa.select(data_requests).where(data_requests.c.id == request_id)).first()
    if row is None:
        raise UnknownRequest(f"no data request {request_id!r}")
    return _with_approvals(conn, [_record(row)])[0]


def read_requests(conn: Connection, *, operator: str | None = None) -> list[RequestRecord]:
    """Every request (of ``operator``), oldest first."""
    stmt = sa.select(data_requests).order_by(data_requests.c.created_at, data_requests.c.id)
    if operator is not None:
        stmt = stmt.where(data_requests.c.operator == operator)
    return _with_approvals(conn, [_record(r) for r in conn.execute(stmt)])
