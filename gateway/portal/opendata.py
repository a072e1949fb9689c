"""The portal's three tables as open data: the disclosure facts of a year as JSON and CSV.

One source for the pages and the data routes: ``gateway.disclosure.facts``. A row is
the facts' dataclass, field for field (001 authorized-operation art. 24-25; 004 art.
30), so the JSON, the CSV and the HTML page of a table list the same rows in the same
order.

Invariants:
- JSON: ``{"year": Y, "items": [...]}``, each item the dataclass's fields, datetimes as
  ISO 8601 in UTC, tuples as arrays.
- CSV: a header row of the same field names, then one line per item; UTF-8 with a BOM
  (so Excel opens the Chinese text as UTF-8, not as the local ANSI code page); lists
  joined with ``;``, a grant's scope as ``dataset: col, col``, a price basis as JSON.
- Only what the facts hold: metadata and counts, never a data value.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.disclosure import facts
from gateway.periods import Period
from gateway.store.tables import grants, products
from gateway.workdays import CST

BOM = "\ufeff"


class Table(StrEnum):
    """The portal's tables; the values are the data routes' and pages' path segments."""

    PRODUCTS = "products"
    GRANTS = "grants"
    USAGE = "usage"


ROW_TYPES: dict[Table, type[Any]] = {
    Table.PRODUCTS: facts.PublicProduct,
    Table.GRANTS: facts.PublicGrant,
    Table.USAGE: facts.UsageLine,
}


def year_now(now: datetime) -> int:
    """The CST year ``now`` falls in: the year a page shows when none is asked for."""
    return now.astimezone(CST).year


def rows(conn: Connection, table: Table, period: Period) -> list[Any]:
    """The facts of ``table`` for ``period``."""
    if table is Table.PRODUCTS:
        return list(facts.products(conn, period))
    if table is Table.GRANTS:
        return list(facts.grantees(conn, period))
    return list(facts.usage(conn, period))


def first_year(conn: Connection, now: datetime) -> int:
    """The CST year of the earliest grant or product (this year when there is none)."""
    earliest = [
        conn.execute(sa.select(sa.func.min(column))).scalar()
        for column in (grants.c.valid_from, products.c.registered_at)
    ]
    known = [year_now(at) for at in earliest if at is not None]
    return min([*known, year_now(now)])


def as_json(year: int, items: Sequence[Any]) -> dict[str, Any]:
    """The data route's JSON body."""
    return {"year": year, "items": [_plain(dataclasses.asdict(i)) for i in items]}


def as_csv(table: Table, items: Sequence[Any]) -> bytes:
    """The data route's CSV: header row, one line per item, UTF-8 with a BOM."""
    names = [f.name for f in dataclasses.fields(ROW_TYPES[table])]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(names)
    for item in items:
        writer.writerow([_cell(name, getattr(item, name)) for name in names])
    return (BOM + out.getvalue()).encode("utf-8")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _scope(scopes: Sequence[tuple[str, Sequence[str]]]) -> str:
    return "; ".join(f"{dataset}: {', '.join(columns)}" for dataset, columns in scopes)


CELLS: dict[str, Callable[[Any], str]] = {
    "scopes": _scope,
    "price_basis": lambda basis: json.dumps(basis, ensure_ascii=False, sort_keys=True),
}


def _cell(name: str, value: Any) -> str:
    if name in CELLS:
        return CELLS[name](value)
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return ";".join(str(v) for v in value)
    return str(value)
