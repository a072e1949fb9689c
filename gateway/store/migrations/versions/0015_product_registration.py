"""Product registration by the registration measures.

Revision ID: 0015
Revises: 0014

``product_registrations`` (the applications and their procedure, registration
measures 001 art. 13), ``product_objections`` (objections raised during
publicity) and ``product_code_sequences`` (the per-year sequence of codes,
art. 15). ``products`` gains its status (registered, expired, cancelled,
revoked) and may name a privacy-computing product instead of a job: its
``job_id`` becomes nullable, ``he_product_id`` is added. Products registered
before this revision keep their codes and validity, as registered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.types.TypeEngine[Any]:
    return sa.DateTime(timezone=True).with_variant(sa.Text(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("products") as batch:
        batch.alter_column("job_id", existing_type=sa.String(64), nullable=True)
        batch.add_column(sa.Column("he_product_id", sa.String(32), nullable=True))
        batch.add_column(
            sa.Column("status", sa.String(16), nullable=False, server_default="registered")
        )
        batch.add_column(sa.Column("status_changed_at", _utc(), nullable=True))
        batch.add_column(sa.Column("status_reason", sa.Text(), nullable=True))
        batch.create_foreign_key(
            "fk_products_he_product_id_he_products", "he_products", ["he_product_id"], ["id"]
        )
        batch.create_unique_constraint("uq_products_he_product_id", ["he_product_id"])
        batch.create_index("ix_products_status", ["status"])
    op.create_table(
        "product_registrations",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=True),
        sa.Column("he_product_id", sa.String(32), nullable=True),
        sa.Column("product_id", sa.String(32), nullable=True),
        sa.Column("applicant", sa.String(100), nullable=False),
        sa.Column("grant_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("applied_at", _utc(), nullable=False),
        sa.Column("state_changed_at", _utc(), nullable=False),
        sa.Column("publicity_ends_at", _utc(), nullable=True),
        sa.Column("decided_by", sa.String(100), nullable=True),
        sa.Column("refusal_reason", sa.Text(), nullable=True),
        sa.Column("refusal_basis", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_product_registrations"),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name="fk_product_registrations_job_id_jobs"
        ),
        sa.ForeignKeyConstraint(
            ["he_product_id"],
            ["he_products.id"],
            name="fk_product_registrations_he_product_id_he_products",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name="fk_product_registrations_product_id_products"
        ),
        sa.ForeignKeyConstraint(
            ["applicant"], ["accounts.name"], name="fk_product_registrations_applicant_accounts"
        ),
    )
    op.create_index("ix_product_registrations_state", "product_registrations", ["state"])
    op.create_table(
        "product_objections",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("registration_id", sa.String(32), nullable=False),
        sa.Column("objector", sa.String(100), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("filed_at", _utc(), nullable=False),
        sa.Column("resolved_by", sa.String(100), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("resolved_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_product_objections"),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["product_registrations.id"],
            name="fk_product_objections_registration_id_product_registrations",
        ),
        sa.ForeignKeyConstraint(
            ["objector"], ["accounts.name"], name="fk_product_objections_objector_accounts"
        ),
    )
    op.create_index(
        "ix_product_objections_registration_id", "product_objections", ["registration_id"]
    )
    op.create_table(
        "product_code_sequences",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year", name="pk_product_code_sequences"),
    )


def downgrade() -> None:
    op.drop_table("product_code_sequences")
    op.drop_index("ix_product_objections_registration_id", table_name="product_objections")
    op.drop_table("product_objections")
    op.drop_index("ix_product_registrations_state", table_name="product_registrations")
    op.drop_table("product_registrations")
    with op.batch_alter_table("products") as batch:
        batch.drop_index("ix_products_status")
        batch.drop_constraint("uq_products_he_product_id", type_="unique")
        batch.drop_constraint("fk_products_he_product_id_he_products", type_="foreignkey")
        batch.drop_column("status_reason")
        batch.drop_column("status_changed_at")
        batch.drop_column("status")
        batch.drop_column("he_product_id")
        batch.alter_column("job_id", existing_type=sa.String(64), nullable=False)
