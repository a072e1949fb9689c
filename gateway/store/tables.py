"""The metadata store's schema, as SQLAlchemy Core tables.

This module describes the schema at the newest migration; the migrations in
``gateway/store/migrations/versions`` create it, each written out in full so
that a later change here never rewrites history. A test compares the two.

Invariants:

- Timestamps are timezone-aware UTC: ``timestamptz`` on PostgreSQL, ISO 8601
  text with microseconds and ``+00:00`` on SQLite (fixed width, so text order
  is time order). Naive datetimes are refused on the way in.
- JSON columns are ``json`` (text kept as written), not ``jsonb``: the audit
  chain hashes values that must come back exactly as they went in.
- Constraint and index names come from the naming convention below, so later
  migrations can name what they alter on both backends.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def utc_iso(value: datetime) -> str:
    """``value`` as fixed-width ISO 8601 UTC text (``...T05:32:00.123456+00:00``)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamps must be timezone-aware")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on both backends (see the module docstring)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.Text())
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        iso = utc_iso(value)
        return iso if dialect.name == "sqlite" else datetime.fromisoformat(iso)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
        if not isinstance(parsed, datetime) or parsed.tzinfo is None:
            raise ValueError("stored timestamp is not timezone-aware")
        return parsed.astimezone(UTC)


# The audit log (gateway.audit.chain). Append-only: database triggers refuse
# UPDATE and DELETE (and TRUNCATE on PostgreSQL). ``id`` is the chain order and
# is assigned by the appender under the chain lock, not by a sequence: the hash
# covers it, so it must be known before the row is written, and a sequence
# would leave gaps on rollback that verification could not tell from a
# removed event.
audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),  # SQLite: the rowid
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("grant_id", sa.String(200), nullable=True),
    sa.Column("datasets", sa.JSON(), nullable=False),  # sorted list of dataset names
    sa.Column("detail", sa.JSON(), nullable=False),  # JSON object, never raw data values
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.CheckConstraint("id >= 1", name="id_positive"),
    sa.UniqueConstraint("hash"),
    sa.Index(None, "at"),
    sa.Index(None, "type", "id"),
    sa.Index(None, "actor", "id"),
    sa.Index(None, "grant_id", "id"),
)


# Identity (gateway.identity). An account is a person or a service with roles;
# an API token is shown once and stored as the SHA-256 of its secret (a
# 256-bit random secret needs no salt or slow hash); a token row is never
# deleted, only revoked, so the audit log can always name it.
accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("roles", sa.JSON(), nullable=False),  # sorted list of role names
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("disabled_at", UTCDateTime(), nullable=True),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),  # public part of the token
    sa.Column(
        "account", sa.String(100), sa.ForeignKey("accounts.name"), nullable=False, index=True
    ),
    sa.Column("secret_sha256", sa.String(64), nullable=False),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
)


# The scope policy's Casbin lines (gateway.scope_store): ptype and fields v0..v5,
# unused fields "" (never NULL, so the unique constraint holds). Grant changes
# find their lines by grant id (p's v1).
FIELDS = 6  # v0..v5: the widest line Casbin's SQL adapters store
FIELD_LENGTH = 512

scope_rules = sa.Table(
    "scope_rules",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("ptype", sa.String(8), nullable=False),
    *(
        sa.Column(f"v{i}", sa.String(FIELD_LENGTH), nullable=False, server_default="")
        for i in range(FIELDS)
    ),
    sa.UniqueConstraint("ptype", *(f"v{i}" for i in range(FIELDS)), name="uq_scope_rules_line"),
    sa.Index("ix_scope_rules_grant", "ptype", "v1"),
)
