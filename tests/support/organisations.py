"""Helpers of the organisation and data-quality feedback tests: audit events and notices
as rows, organisations made through the REST API, and the role-by-route check.

Plain functions over ``tests.support.grants_world``'s ``World`` (accounts
``<role>-1``, tokens by role, plus ``operator-2`` and ``provider-2``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from gateway.store.tables import audit_events, notices
from tests.support.access import Access

ROLES = ("operator", "provider", "reviewer", "admin", "auditor", "consumer")


def events(engine: sa.Engine, kind: str) -> list[dict[str, Any]]:
    """The audit events of ``kind``, oldest first: actor, datasets and detail in one dict."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_events.c.actor, audit_events.c.datasets, audit_events.c.detail)
            .where(audit_events.c.type == kind)
            .order_by(audit_events.c.id)
        ).all()
    return [{"actor": r.actor, "datasets": r.datasets, **r.detail} for r in rows]


def notice_rows(engine: sa.Engine, prefix: str) -> list[tuple[str, str, str]]:
    """(key, audience, kind) of every notice whose key starts with ``prefix``."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(notices.c.key, notices.c.audience, notices.c.kind)
            .where(notices.c.key.startswith(prefix))
            .order_by(notices.c.id)
        ).all()
    return [(r.key, r.audience, r.kind) for r in rows]


def check_access(
    client: TestClient, headers: dict[str, dict[str, str]], table: Access, ids: dict[str, str]
) -> None:
    """Every role on every route of ``table``: a 403 where it is not allowed, never a 401
    or 403 where it is; no token: 401. ``ids`` fills the path's ``{names}``."""
    for (method, path), allowed in sorted(table.items()):
        url = path.format(**ids)
        for role in ROLES:
            got = client.request(method, url, headers=headers[role], json={})
            if allowed == "any" or role in allowed:
                assert got.status_code not in (401, 403), (method, path, role, got.text)
            else:
                assert got.status_code == 403, (method, path, role, got.text)
        assert client.request(method, url, json={}).status_code == 401, (method, path)
