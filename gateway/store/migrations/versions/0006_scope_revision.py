"""The scope policy's revision: one row, bumped with every change of ``scope_rules``.

Revision ID: 0006
Revises: 0005

Each gateway process holds the Casbin lines in memory; before deciding it
compares the revision it loaded with this one and reloads if another
process changed the lines (``gateway.scope``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "scope_revision",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scope_revision")),
        sa.CheckConstraint("id = 1", name=op.f("ck_scope_revision_one_row")),
    )
    # Existing lines count as revision 1, so a process that loaded them before
    # this migration (revision unknown) reloads once.
    op.bulk_insert(table, [{"id": 1, "revision": 1}])


def downgrade() -> None:
    op.drop_table("scope_revision")
