"""Registration codes and validity (registration measures 001 art. 15, 16).

- A code (登记编号) is issued only when an application ends registered, by the
  deployment's scheme ``DSR_GATEWAY_PRODUCT_CODE_FORMAT`` (a format string over
  ``{year}`` and ``{seq}``; default ``CQGSJ-{year}-{seq:06d}``, e.g.
  ``CQGSJ-2025-000001``). ``{year}`` is the CST year of issue and ``{seq}`` a
  per-year sequence taken with one upsert (a row lock on PostgreSQL, the
  single writer on SQLite), so two registrations at once never share a code;
  the products table's unique constraint is the backstop.
- Validity (有效期) is three calendar years from the code's date (art. 15:
  原则上为三年, 自赋码之日起计算), or the grant's term end if that is sooner
  (art. 15: 运营期限不超过三年的, 以实际运营期限为准; the operating agreement
  runs at most three years, authorized-operation measures art. 15).
- Renewal (续展, art. 16) is possible only within the :data:`RENEWAL_WINDOW`
  before expiry; the new term is counted from the day after the old one ended
  (自上一届有效期满次日起计算: from the old expiry instant, for three years),
  and never past the grant's term.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gateway.grants.terms import LATEST, years_after
from gateway.store.tables import grants, product_code_sequences
from gateway.workdays import cst_date

DEFAULT_FORMAT = "CQGSJ-{year}-{seq:06d}"
VALIDITY_YEARS = 3  # 001 art. 15, art. 16 (每次续展期最长为三年)
RENEWAL_WINDOW = timedelta(days=60)  # 001 art. 16: 期满前60日内


def next_sequence(conn: Connection, year: int) -> int:
    """The next number of ``year``'s sequence, taken in the caller's transaction."""
    table = product_code_sequences
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(table)
        .values(year=year, last=1)
        .on_conflict_do_update(index_elements=["year"], set_={"last": table.c.last + 1})
        .returning(table.c.last)
    )
    return int(conn.execute(stmt).scalar_one())


def issue_code(conn: Connection, code_format: str, now: datetime) -> str:
    """A new registration code by ``code_format`` (see the module docstring)."""
    year = cst_date(now).year
    return code_format.format(year=year, seq=next_sequence(conn, year))


def validity_end(start: datetime, grant_until: datetime) -> datetime:
    """Three calendar years from ``start``, or the grant's term end if sooner."""
    return min(years_after(start, VALIDITY_YEARS), grant_until)


def renewal_opens(valid_until: datetime) -> datetime:
    """When renewal becomes possible: :data:`RENEWAL_WINDOW` before expiry."""
    return valid_until - RENEWAL_WINDOW


def in_renewal_window(valid_until: datetime, now: datetime) -> bool:
    return renewal_opens(valid_until) <= now < valid_until


def grant_term_end(conn: Connection, grant_id: str) -> datetime:
    """The end of the grant's term as the store records it. A grant the gateway's resolver
    vouched for but the store does not hold (an embedding's own resolver) caps nothing:
    validity is then three years."""
    query = sa.select(grants.c.valid_until).where(grants.c.id == grant_id)
    found: datetime | None = conn.execute(query).scalar()
    return found if found is not None else LATEST
