"""The store's column types: timezone-aware UTC timestamps on SQLite and PostgreSQL.

Timestamps are ``timestamptz`` on PostgreSQL and ISO 8601 text with
microseconds and ``+00:00`` on SQLite (fixed width, so text order is time
order). Naive datetimes are refused on the way in, and a stored time without
a zone on the way out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine


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
