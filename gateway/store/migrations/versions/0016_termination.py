"""Termination, rectification deadlines and incidents.

Revision ID: 0016
Revises: 0015

- ``terminations``: proposals to end a grant (a provider's or the administrators',
  an operator's request to end supply, a missed rectification deadline), with
  their basis, notice period and decision (Chengdu implementation rules, 004
  art. 24 and 33). ``origin`` names the event a sweep raised one for, unique, so
  it is raised once.
- ``grant_holds.rectify_by``: the rectification deadline a stop may carry.
- ``incidents`` and ``incident_actions``: security incidents and the actions taken
  on them, one row per action (never rewritten).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.types.TypeEngine[Any]:
    return sa.DateTime(timezone=True).with_variant(sa.Text(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "terminations",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("grant_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("datasets", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("proposed_by", sa.String(100), nullable=False),
        sa.Column("proposed_at", _utc(), nullable=False),
        sa.Column("effective_after", _utc(), nullable=False),
        sa.Column("provisional", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_changed_at", _utc(), nullable=False),
        sa.Column("decided_by", sa.String(100), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("origin", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_terminations"),
        sa.ForeignKeyConstraint(
            ["grant_id"], ["grants.id"], name="fk_terminations_grant_id_grants"
        ),
        sa.UniqueConstraint("origin", name="uq_terminations_origin"),
    )
    op.create_index("ix_terminations_grant_id", "terminations", ["grant_id"])
    op.create_index("ix_terminations_state", "terminations", ["state"])
    with op.batch_alter_table("grant_holds") as batch:
        batch.add_column(sa.Column("rectify_by", _utc(), nullable=True))
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("datasets", sa.JSON(), nullable=False),
        sa.Column("grants", sa.JSON(), nullable=False),
        sa.Column("occurred_at", _utc(), nullable=False),
        sa.Column("detected_at", _utc(), nullable=False),
        sa.Column("reported_by", sa.String(100), nullable=False),
        sa.Column("reported_at", _utc(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("resolved_at", _utc(), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
    )
    op.create_index("ix_incidents_detected_at", "incidents", ["detected_at"])
    op.create_table(
        "incident_actions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.String(32), nullable=False),
        sa.Column("at", _utc(), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_incident_actions"),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name="fk_incident_actions_incident_id_incidents"
        ),
    )
    op.create_index("ix_incident_actions_incident_id", "incident_actions", ["incident_id"])


def downgrade() -> None:
    op.drop_index("ix_incident_actions_incident_id", table_name="incident_actions")
    op.drop_table("incident_actions")
    op.drop_index("ix_incidents_detected_at", table_name="incidents")
    op.drop_table("incidents")
    with op.batch_alter_table("grant_holds") as batch:
        batch.drop_column("rectify_by")
    op.drop_index("ix_terminations_state", table_name="terminations")
    op.drop_index("ix_terminations_grant_id", table_name="terminations")
    op.drop_table("terminations")
