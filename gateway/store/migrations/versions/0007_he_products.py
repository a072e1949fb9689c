"""Privacy-computing products: definitions, consumers' public contexts, calls.

Revision ID: 0007
Revises: 0006

``he_products`` holds encrypted verification and scoring products with their
state; ``he_contexts`` the consumers' registered public contexts (the bytes
are files under the data directory); ``he_calls`` one row per call, counted
by the rate limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.types.TypeEngine[Any]:
    return sa.DateTime(timezone=True).with_variant(sa.Text(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "he_products",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("operator", sa.String(100), nullable=False),
        sa.Column("grant_id", sa.String(64), nullable=False),
        sa.Column("datasets", sa.JSON(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("consumers", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("state_changed_at", _utc(), nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_he_products")),
        sa.ForeignKeyConstraint(
            ["operator"], ["accounts.name"], name=op.f("fk_he_products_operator_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["grant_id"], ["grants.id"], name=op.f("fk_he_products_grant_id_grants")
        ),
    )
    op.create_index(op.f("ix_he_products_grant_id"), "he_products", ["grant_id"])
    op.create_table(
        "he_contexts",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("consumer", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_he_contexts")),
        sa.ForeignKeyConstraint(
            ["consumer"], ["accounts.name"], name=op.f("fk_he_contexts_consumer_accounts")
        ),
    )
    op.create_index(op.f("ix_he_contexts_consumer"), "he_contexts", ["consumer"])
    op.create_table(
        "he_calls",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("product_id", sa.String(32), nullable=False),
        sa.Column("consumer", sa.String(100), nullable=False),
        sa.Column("at", _utc(), nullable=False),
        sa.Column("outcome", sa.String(24), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_he_calls")),
        sa.ForeignKeyConstraint(
            ["product_id"], ["he_products.id"], name=op.f("fk_he_calls_product_id_he_products")
        ),
        sa.ForeignKeyConstraint(
            ["consumer"], ["accounts.name"], name=op.f("fk_he_calls_consumer_accounts")
        ),
    )
    op.create_index(
        op.f("ix_he_calls_product_id_consumer_at"), "he_calls", ["product_id", "consumer", "at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_he_calls_product_id_consumer_at"), table_name="he_calls")
    op.drop_table("he_calls")
    op.drop_index(op.f("ix_he_contexts_consumer"), table_name="he_contexts")
    op.drop_table("he_contexts")
    op.drop_index(op.f("ix_he_products_grant_id"), table_name="he_products")
    op.drop_table("he_products")
