"""The audit log: ``audit_events``, append-only and hash-chained.

Revision ID: 0001
Revises: (none)

Creates the table and its indexes, and the triggers that refuse UPDATE and
DELETE (SQLite: ``RAISE(ABORT)``; PostgreSQL: a statement trigger calling
``refuse_change_append_only()``, which also refuses TRUNCATE). Both backends
report the refusal as an integrity violation (SQLite's constraint error,
PostgreSQL's SQLSTATE 23001 restrict_violation). The PostgreSQL function
names the table it guards, so later append-only tables reuse it.

There is no downgrade: the audit log is kept at least three years, and no
migration removes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_TRIGGERS = [
    f"CREATE TRIGGER audit_events_no_{op_name.lower()} BEFORE {op_name} ON audit_events "
    f"BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: {op_name} refused'); END"
    for op_name in ("UPDATE", "DELETE")
]

_POSTGRES_GUARD = """
CREATE OR REPLACE FUNCTION refuse_change_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Concatenated, not RAISE placeholders: offline (--sql) output would double those.
    RAISE EXCEPTION USING
        MESSAGE = TG_TABLE_NAME || ' is append-only: ' || TG_OP || ' refused',
        ERRCODE = 'restrict_violation';
END
$$
"""
_POSTGRES_TRIGGERS = [
    "CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events "
    "FOR EACH STATEMENT EXECUTE FUNCTION refuse_change_append_only()",
    "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
    "FOR EACH STATEMENT EXECUTE FUNCTION refuse_change_append_only()",
]


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column(
            "at", sa.DateTime(timezone=True).with_variant(sa.Text(), "sqlite"), nullable=False
        ),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("grant_id", sa.String(200), nullable=True),
        sa.Column("datasets", sa.JSON(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.CheckConstraint("id >= 1", name=op.f("ck_audit_events_id_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_events_hash")),
    )
    op.create_index(op.f("ix_audit_events_at"), "audit_events", ["at"])
    op.create_index(op.f("ix_audit_events_type_id"), "audit_events", ["type", "id"])
    op.create_index(op.f("ix_audit_events_actor_id"), "audit_events", ["actor", "id"])
    op.create_index(op.f("ix_audit_events_grant_id_id"), "audit_events", ["grant_id", "id"])
    if op.get_context().dialect.name == "sqlite":
        statements = _SQLITE_TRIGGERS
    else:
        statements = [_POSTGRES_GUARD, *_POSTGRES_TRIGGERS]
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the audit log is never dropped by a migration")
