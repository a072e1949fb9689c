"""Notices: what the gateway tells people without being asked.

Revision ID: 0012
Revises: 0011

One row per audience (``account:<name>`` or ``role:<role>``) per notice,
unique by the notice's key and audience, so a sweep that sees the same event
twice, or two gateways sweeping at once, write it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.types.TypeEngine[Any]:
    return sa.DateTime(timezone=True).with_variant(sa.Text(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("audience", sa.String(120), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notices"),
        sa.UniqueConstraint("key", "audience", name="uq_notices_key_audience"),
    )
    op.create_index("ix_notices_audience", "notices", ["audience"])


def downgrade() -> None:
    op.drop_index("ix_notices_audience", table_name="notices")
    op.drop_table("notices")
