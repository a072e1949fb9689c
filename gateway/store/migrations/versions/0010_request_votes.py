"""Providers' votes on data requests as rows: ``request_votes``.

Revision ID: 0010
Revises: 0009

A data request's provider approvals were a JSON list rewritten in place
(``data_requests.approvals``); they become one row per provider per request
in ``request_votes`` (decision, time), never changed or removed. Every
approval in the list becomes an ``approved`` row; its time is that of the
audit event that recorded it (``request.state`` with ``approved_by``, or the
move to ``provider_approved`` by that provider), else the request's
``step_started_at``. The JSON column is then dropped, so the votes have one
home (SQLite: by table copy, as Alembic's batch mode does it). A downgrade
writes the approvals back into the column.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.types.TypeEngine[Any]:
    return sa.DateTime(timezone=True).with_variant(sa.Text(), "sqlite")


def _json(value: Any) -> Any:
    """A JSON column's value as Python (SQLite's driver may hand back the text)."""
    return json.loads(value) if isinstance(value, str) else value


def _stored_time(value: Any, dialect: str) -> Any:
    """A time as the column stores it (SQLite: fixed-width ISO 8601 UTC text)."""
    if dialect != "sqlite":
        return value
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _approval_times(conn: sa.Connection) -> dict[tuple[str, str], Any]:
    """(request, provider) -> when the audit log recorded that provider's approval."""
    events = sa.table(
        "audit_events",
        sa.column("id"),
        sa.column("at"),
        sa.column("type"),
        sa.column("actor"),
        sa.column("detail"),
    )
    times: dict[tuple[str, str], Any] = {}
    rows = conn.execute(
        sa.select(events.c.at, events.c.actor, events.c.detail)
        .where(events.c.type == "request.state")
        .order_by(events.c.id)
    )
    for at, actor, raw in rows:
        detail = _json(raw)
        if not isinstance(detail, dict) or not isinstance(detail.get("request"), str):
            continue
        if isinstance(detail.get("approved_by"), str):
            times.setdefault((detail["request"], detail["approved_by"]), at)
        elif detail.get("to") == "provider_approved":
            times.setdefault((detail["request"], actor), at)
    return times


def upgrade() -> None:
    conn = op.get_bind()
    dialect = conn.dialect.name
    requests = sa.table(
        "data_requests", sa.column("id"), sa.column("approvals"), sa.column("step_started_at")
    )
    times = _approval_times(conn)
    rows = []
    for request_id, approvals, started in conn.execute(sa.select(requests)):
        for provider in sorted(set(_json(approvals) or [])):
            at = times.get((request_id, provider), started)
            rows.append(
                {
                    "request_id": request_id,
                    "provider": provider,
                    "decision": "approved",
                    "at": _stored_time(at, dialect),
                }
            )
    # Before the votes' table exists: SQLite copies data_requests to drop the column,
    # which a foreign key pointing at it would refuse.
    with op.batch_alter_table("data_requests") as batch:
        batch.drop_column("approvals")
    op.create_table(
        "request_votes",
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(100), nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint(
            "request_id", "provider", "decision", name=op.f("pk_request_votes")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["data_requests.id"],
            name=op.f("fk_request_votes_request_id_data_requests"),
        ),
    )
    votes = sa.table(
        "request_votes",
        sa.column("request_id"),
        sa.column("provider"),
        sa.column("decision"),
        sa.column("at"),
    )
    if rows:
        conn.execute(votes.insert(), rows)


def downgrade() -> None:
    conn = op.get_bind()
    votes = sa.table(
        "request_votes", sa.column("request_id"), sa.column("provider"), sa.column("decision")
    )
    approved: dict[str, list[str]] = {}
    for request_id, provider in conn.execute(
        sa.select(votes.c.request_id, votes.c.provider).where(votes.c.decision == "approved")
    ):
        approved.setdefault(request_id, []).append(provider)
    op.drop_table("request_votes")  # first: see upgrade()
    with op.batch_alter_table("data_requests") as batch:
        batch.add_column(
            sa.Column("approvals", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
    requests = sa.table("data_requests", sa.column("id"), sa.column("approvals", sa.JSON()))
    for request_id, providers in approved.items():
        conn.execute(
            requests.update().where(requests.c.id == request_id).values(approvals=sorted(providers))
        )
    with op.batch_alter_table("data_requests") as batch:
        batch.alter_column("approvals", server_default=None)
