"""Grants and data requests: ``grants`` and ``data_requests``.

Revision ID: 0004
Revises: 0003

A grant holds its scope (datasets and columns), term, state and per-grant
pseudonym key (a secret of the trusted side); a data request holds what the
operator asked for and where its review stands.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.types.TypeEngine[Any]:
    return sa.DateTime(timezone=True).with_variant(sa.Text(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "grants",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("operator", sa.String(100), nullable=False),
        sa.Column("scenario", sa.String(200), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("valid_from", _utc(), nullable=False),
        sa.Column("valid_until", _utc(), nullable=False),
        sa.Column("pseudonym_key", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("state_changed_at", _utc(), nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grants")),
        sa.ForeignKeyConstraint(
            ["operator"], ["accounts.name"], name=op.f("fk_grants_operator_accounts")
        ),
    )
    op.create_index(op.f("ix_grants_operator"), "grants", ["operator"])
    op.create_index(op.f("ix_grants_state"), "grants", ["state"])
    op.create_table(
        "data_requests",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("operator", sa.String(100), nullable=False),
        sa.Column("scenario", sa.String(200), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("intended_use", sa.Text(), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("step_started_at", _utc(), nullable=False),
        sa.Column("approvals", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("legal_basis", sa.Text(), nullable=True),
        sa.Column("grant_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_requests")),
        sa.ForeignKeyConstraint(
            ["operator"], ["accounts.name"], name=op.f("fk_data_requests_operator_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["grant_id"], ["grants.id"], name=op.f("fk_data_requests_grant_id_grants")
        ),
    )
    op.create_index(op.f("ix_data_requests_operator"), "data_requests", ["operator"])
    op.create_index(op.f("ix_data_requests_state"), "data_requests", ["state"])


def downgrade() -> None:
    op.drop_index(op.f("ix_data_requests_state"), table_name="data_requests")
    op.drop_index(op.f("ix_data_requests_operator"), table_name="data_requests")
    op.drop_table("data_requests")
    op.drop_index(op.f("ix_grants_state"), table_name="grants")
    op.drop_index(op.f("ix_grants_operator"), table_name="grants")
    op.drop_table("grants")
