"""Signed checkpoints of the audit chain head (audit anchors).

Revision ID: 0008
Revises: 0007

Creates ``audit_checkpoints`` (``gateway.audit.checkpoints``): one row per
signed head and signing key. Append-only like ``audit_events`` (see 0001):
SQLite triggers ``RAISE(ABORT)`` on UPDATE and DELETE; PostgreSQL statement
triggers call 0001's ``refuse_change_append_only()`` on UPDATE, DELETE and
TRUNCATE.

There is no downgrade: checkpoints belong to the audit log, which no
migration removes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_TRIGGERS = [
    f"CREATE TRIGGER audit_checkpoints_no_{op_name.lower()} BEFORE {op_name} "
    f"ON audit_checkpoints BEGIN SELECT RAISE(ABORT, "
    f"'audit_checkpoints is append-only: {op_name} refused'); END"
    for op_name in ("UPDATE", "DELETE")
]
_POSTGRES_TRIGGERS = [
    "CREATE TRIGGER audit_checkpoints_no_update_delete BEFORE UPDATE OR DELETE "
    "ON audit_checkpoints FOR EACH STATEMENT EXECUTE FUNCTION refuse_change_append_only()",
    "CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints "
    "FOR EACH STATEMENT EXECUTE FUNCTION refuse_change_append_only()",
]


def upgrade() -> None:
    op.create_table(
        "audit_checkpoints",
        sa.Column(
            "event_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True).with_variant(sa.Text(), "sqlite"), nullable=False
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.CheckConstraint("event_id >= 1", name=op.f("ck_audit_checkpoints_event_id_positive")),
        sa.PrimaryKeyConstraint("event_id", "key_id", name=op.f("pk_audit_checkpoints")),
    )
    op.create_index(op.f("ix_audit_checkpoints_at"), "audit_checkpoints", ["at"])
    dialect = op.get_context().dialect.name
    for statement in _SQLITE_TRIGGERS if dialect == "sqlite" else _POSTGRES_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the audit log's checkpoints are never dropped by a migration")
