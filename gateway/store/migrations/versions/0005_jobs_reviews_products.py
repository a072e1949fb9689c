"""Jobs, their outcomes, security reviews with their votes, and data products.

Revision ID: 0005
Revises: 0004

``jobs`` holds the coarse state of each submission; ``job_outcomes`` what the
run and the checks found (never values, logs only of dummy runs);
``reviews`` and ``review_votes`` the security review of held and blocked
jobs; ``products`` the registered data products with their lineage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.types.TypeEngine[Any]:
    return sa.DateTime(timezone=True).with_variant(sa.Text(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("operator", sa.String(100), nullable=False),
        sa.Column("grant_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("dummy", sa.Boolean(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("code_sha256", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("datasets", sa.JSON(), nullable=False),
        sa.Column("submitted_at", _utc(), nullable=False),
        sa.Column("started_at", _utc(), nullable=True),
        sa.Column("finished_at", _utc(), nullable=True),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.ForeignKeyConstraint(
            ["operator"], ["accounts.name"], name=op.f("fk_jobs_operator_accounts")
        ),
    )
    op.create_index(op.f("ix_jobs_state_submitted_at"), "jobs", ["state", "submitted_at"])
    op.create_index(op.f("ix_jobs_operator_submitted_at"), "jobs", ["operator", "submitted_at"])
    op.create_index(op.f("ix_jobs_grant_id_state"), "jobs", ["grant_id", "state"])
    op.create_table(
        "job_outcomes",
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("exit_class", sa.String(32), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("runtime", sa.String(16), nullable=True),
        sa.Column("run_seconds", sa.Float(), nullable=True),
        sa.Column("sandbox_seconds", sa.Float(), nullable=True),
        sa.Column("memory_peak_bytes", sa.BigInteger(), nullable=True),
        sa.Column("pids_peak", sa.Integer(), nullable=True),
        sa.Column("verdict", sa.String(8), nullable=True),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("rejections", sa.JSON(), nullable=False),
        sa.Column("outputs", sa.JSON(), nullable=False),
        sa.Column("dataset_versions", sa.JSON(), nullable=False),
        sa.Column("policy_versions", sa.JSON(), nullable=False),
        sa.Column("stdout", sa.Text(), nullable=True),
        sa.Column("stderr", sa.Text(), nullable=True),
        sa.Column("recorded_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_job_outcomes")),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_job_outcomes_job_id_jobs")),
    )
    op.create_table(
        "reviews",
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("required", sa.Integer(), nullable=False),
        sa.Column("opened_at", _utc(), nullable=False),
        sa.Column("closed_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_reviews")),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_reviews_job_id_jobs")),
    )
    op.create_table(
        "review_votes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("reviewer", sa.String(100), nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_votes")),
        sa.ForeignKeyConstraint(
            ["job_id"], ["reviews.job_id"], name=op.f("fk_review_votes_job_id_reviews")
        ),
        sa.ForeignKeyConstraint(
            ["reviewer"], ["accounts.name"], name=op.f("fk_review_votes_reviewer_accounts")
        ),
        sa.UniqueConstraint("job_id", "reviewer", name=op.f("uq_review_votes_job_id_reviewer")),
    )
    op.create_table(
        "products",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("registration_code", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("operator", sa.String(100), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("grant_id", sa.String(200), nullable=False),
        sa.Column("code_sha256", sa.String(64), nullable=False),
        sa.Column("datasets", sa.JSON(), nullable=False),
        sa.Column("dataset_versions", sa.JSON(), nullable=False),
        sa.Column("policy_versions", sa.JSON(), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("registered_at", _utc(), nullable=False),
        sa.Column("valid_until", _utc(), nullable=False),
        sa.Column("renewed_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.ForeignKeyConstraint(
            ["operator"], ["accounts.name"], name=op.f("fk_products_operator_accounts")
        ),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_products_job_id_jobs")),
        sa.UniqueConstraint("registration_code", name=op.f("uq_products_registration_code")),
        sa.UniqueConstraint("job_id", name=op.f("uq_products_job_id")),
    )


def downgrade() -> None:
    op.drop_table("products")
    op.drop_table("review_votes")
    op.drop_table("reviews")
    op.drop_table("job_outcomes")
    op.drop_index(op.f("ix_jobs_grant_id_state"), table_name="jobs")
    op.drop_index(op.f("ix_jobs_operator_submitted_at"), table_name="jobs")
    op.drop_index(op.f("ix_jobs_state_submitted_at"), table_name="jobs")
    op.drop_table("jobs")
