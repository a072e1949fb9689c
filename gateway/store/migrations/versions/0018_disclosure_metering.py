"""Metering, price classes and charges.

Revision ID: 0018
Revises: 0017

``job_outcomes`` gains what a job used beyond wall time and peak memory: the
container's CPU seconds (cgroup accounting), the rows and bytes the trusted
evidence query scanned, and the bytes of its collected outputs. ``he_calls``
gains each call's evaluation time. ``products`` and ``product_registrations``
gain a price class and its basis (gateway.pricing): a product registered
before this revision takes ``free`` when it serves public governance and
``cost_plus`` with no margin otherwise (sold at cost until its operator sets
a price). ``charges`` are what consumers were charged for products, one row
each, never changed: the revenue side of the cost accounting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.types.TypeEngine[Any]:
    return sa.DateTime(timezone=True).with_variant(sa.Text(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("job_outcomes") as batch:
        batch.add_column(sa.Column("cpu_seconds", sa.Float(), nullable=True))
        batch.add_column(sa.Column("rows_scanned", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("bytes_scanned", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("output_bytes", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("he_calls") as batch:
        batch.add_column(sa.Column("eval_ms", sa.Float(), nullable=True))
    with op.batch_alter_table("products") as batch:
        batch.add_column(
            sa.Column("price_class", sa.String(24), nullable=False, server_default="free")
        )
        batch.add_column(sa.Column("price_basis", sa.JSON(), nullable=False, server_default="{}"))
    op.execute(
        "UPDATE products SET price_class = 'cost_plus', price_basis = '{\"margin\": 0}' "
        "WHERE category <> 'public_governance'"
    )
    with op.batch_alter_table("product_registrations") as batch:
        batch.add_column(sa.Column("price_class", sa.String(24), nullable=True))
        batch.add_column(sa.Column("price_basis", sa.JSON(), nullable=True))
    op.create_table(
        "charges",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("product_id", sa.String(32), nullable=False),
        sa.Column("payer", sa.String(100), nullable=False),
        sa.Column("at", _utc(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit", sa.String(32), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("price_class", sa.String(24), nullable=False),
        sa.Column("basis", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("recorded_by", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charges")),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_charges_product_id_products")
        ),
        sa.CheckConstraint("amount_fen >= 0", name=op.f("ck_charges_amount_not_negative")),
        sa.CheckConstraint("quantity >= 1", name=op.f("ck_charges_quantity_positive")),
        sa.UniqueConstraint("source", name=op.f("uq_charges_source")),
    )
    op.create_index(op.f("ix_charges_product_id_at"), "charges", ["product_id", "at"])
    # A scrape of /metrics counts jobs by state and outcome and calls by outcome
    # (gateway.metrics.collector): index-only scans, not the tables.
    op.create_index(op.f("ix_jobs_state_outcome"), "jobs", ["state", "outcome"])
    op.create_index(op.f("ix_he_calls_outcome"), "he_calls", ["outcome"])


def downgrade() -> None:
    op.drop_index(op.f("ix_he_calls_outcome"), table_name="he_calls")
    op.drop_index(op.f("ix_jobs_state_outcome"), table_name="jobs")
    op.drop_index(op.f("ix_charges_product_id_at"), table_name="charges")
    op.drop_table("charges")
    with op.batch_alter_table("product_registrations") as batch:
        batch.drop_column("price_basis")
        batch.drop_column("price_class")
    with op.batch_alter_table("products") as batch:
        batch.drop_column("price_basis")
        batch.drop_column("price_class")
    with op.batch_alter_table("he_calls") as batch:
        batch.drop_column("eval_ms")
    with op.batch_alter_table("job_outcomes") as batch:
        batch.drop_column("output_bytes")
        batch.drop_column("bytes_scanned")
        batch.drop_column("rows_scanned")
        batch.drop_column("cpu_seconds")
