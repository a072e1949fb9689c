"""Scope policy lines: ``scope_rules`` (Casbin lines, read by gateway.scope).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FIELDS = 6
FIELD_LENGTH = 512


def upgrade() -> None:
    op.create_table(
        "scope_rules",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ptype", sa.String(8), nullable=False),
        *(
            sa.Column(f"v{i}", sa.String(FIELD_LENGTH), nullable=False, server_default="")
            for i in range(FIELDS)
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scope_rules")),
        sa.UniqueConstraint("ptype", *(f"v{i}" for i in range(FIELDS)), name="uq_scope_rules_line"),
    )
    op.create_index("ix_scope_rules_grant", "scope_rules", ["ptype", "v1"])


def downgrade() -> None:
    op.drop_index("ix_scope_rules_grant", table_name="scope_rules")
    op.drop_table("scope_rules")
