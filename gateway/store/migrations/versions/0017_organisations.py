"""Organisations and data-quality feedback.

Revision ID: 0017
Revises: 0016

``organisations`` (operator company, provider department, financial
institution, other) and ``organisation_members``: one row per account that
belongs to one, keyed by the account, so an account belongs to at most one.
Accounts without a row keep working as before. ``feedback_issues`` are the
data-quality issues operators file on datasets, ``feedback_answers`` the
providers' answers, one row each, never changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.types.TypeEngine[Any]:
    return sa.DateTime(timezone=True).with_variant(sa.Text(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
        sa.UniqueConstraint("name", name=op.f("uq_organisations_name")),
    )
    op.create_table(
        "organisation_members",
        sa.Column("account", sa.String(100), nullable=False),
        sa.Column("organisation_id", sa.String(64), nullable=False),
        sa.Column("assigned_by", sa.String(100), nullable=False),
        sa.Column("assigned_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_organisation_members")),
        sa.ForeignKeyConstraint(
            ["account"], ["accounts.name"], name=op.f("fk_organisation_members_account_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_organisation_members_organisation_id_organisations"),
        ),
    )
    op.create_index(
        op.f("ix_organisation_members_organisation_id"),
        "organisation_members",
        ["organisation_id"],
    )
    op.create_table(
        "feedback_issues",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("operator", sa.String(100), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("columns_concerned", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("filed_at", _utc(), nullable=False),
        sa.Column("state_changed_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback_issues")),
        sa.ForeignKeyConstraint(
            ["operator"], ["accounts.name"], name=op.f("fk_feedback_issues_operator_accounts")
        ),
    )
    op.create_index(op.f("ix_feedback_issues_dataset"), "feedback_issues", ["dataset"])
    op.create_index(op.f("ix_feedback_issues_operator"), "feedback_issues", ["operator"])
    op.create_table(
        "feedback_answers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("issue_id", sa.String(32), nullable=False),
        sa.Column("provider", sa.String(100), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("disposition", sa.String(16), nullable=False),
        sa.Column("at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback_answers")),
        sa.ForeignKeyConstraint(
            ["issue_id"],
            ["feedback_issues.id"],
            name=op.f("fk_feedback_answers_issue_id_feedback_issues"),
        ),
        sa.ForeignKeyConstraint(
            ["provider"], ["accounts.name"], name=op.f("fk_feedback_answers_provider_accounts")
        ),
    )
    op.create_index(op.f("ix_feedback_answers_issue_id"), "feedback_answers", ["issue_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_feedback_answers_issue_id"), table_name="feedback_answers")
    op.drop_table("feedback_answers")
    op.drop_index(op.f("ix_feedback_issues_operator"), table_name="feedback_issues")
    op.drop_index(op.f("ix_feedback_issues_dataset"), table_name="feedback_issues")
    op.drop_table("feedback_issues")
    op.drop_index(
        op.f("ix_organisation_members_organisation_id"), table_name="organisation_members"
    )
    op.drop_table("organisation_members")
    op.drop_table("organisations")
