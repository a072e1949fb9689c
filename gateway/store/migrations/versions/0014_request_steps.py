"""Data request deadlines, extensions and delivery.

Revision ID: 0014
Revises: 0013

One table, ``request_extensions``: a provider's ask for more working days of
provider review (Chengdu rules 004 art. 20), and the administrator's decision
on it, written once. The new request state ``data_provided`` needs no column:
states are text, and each step's start is ``data_requests.step_started_at``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.types.TypeEngine[Any]:
    return sa.DateTime(timezone=True).with_variant(sa.Text(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "request_extensions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(100), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("asked_at", _utc(), nullable=False),
        sa.Column("decision", sa.String(8), nullable=True),
        sa.Column("decided_by", sa.String(100), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("decided_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_request_extensions"),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["data_requests.id"],
            name="fk_request_extensions_request_id_data_requests",
        ),
    )
    op.create_index("ix_request_extensions_request_id", "request_extensions", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_request_extensions_request_id", table_name="request_extensions")
    op.drop_table("request_extensions")
