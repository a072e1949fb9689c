"""Holds on grants: one per provider and one for administrators; a grant is active only with none.

Revision ID: 0009
Revises: 0008

``grant_holds`` holds one row per party holding a stop on a grant (the
administrators as one party, holder ""; or a provider, by account name).
A grant suspended before this revision has no record of who stopped it in a
form the store can trust, so it gets the administrators' hold, with the
grant's stored reason and time: only an administrator can lift it (and can
read in the audit log who suspended it). Nothing else changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.types.TypeEngine[Any]:
    return sa.DateTime(timezone=True).with_variant(sa.Text(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "grant_holds",
        sa.Column("grant_id", sa.String(64), nullable=False),
        sa.Column("holder_kind", sa.String(16), nullable=False),
        sa.Column("holder", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("placed_by", sa.String(100), nullable=False),
        sa.Column("placed_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("grant_id", "holder_kind", "holder", name=op.f("pk_grant_holds")),
        sa.ForeignKeyConstraint(
            ["grant_id"], ["grants.id"], name=op.f("fk_grant_holds_grant_id_grants")
        ),
    )
    op.execute(
        "INSERT INTO grant_holds (grant_id, holder_kind, holder, reason, placed_by, placed_at) "
        "SELECT id, 'admin', '', state_reason, 'system', state_changed_at "
        "FROM grants WHERE state = 'suspended'"
    )


def downgrade() -> None:
    op.drop_table("grant_holds")
