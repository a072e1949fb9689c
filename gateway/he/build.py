"""Building a verification product's table from the grant's authorized view (trusted side).

The predicate is evaluated over exactly what the grant's view holds: the
view is materialised with the machinery jobs use (``sandbox.views.build``: only
granted columns, row filters applied, values generalised as the exposure
policy says), so a product can never answer about a row or a precision the
view does not show.

The subject key. In the view the entity column is a keyed pseudonym (HMAC
under the grant's key), but a consumer knows the raw identifier (the credit
code, the resident ID) and cannot compute the pseudonym (the key is a
secret of the trusted side). So the table is keyed by the raw identifier:
the registered dataset's entity column is read here, on the trusted side,
pseudonymised with the grant's key by the same SQL the views use, and
joined to the view on the pseudonym. Only subjects present in the view
(after its row filters) enter the table; the raw identifiers exist only in
memory and are never written to the store, the logs or a file. What is
written is the table's claim elements (``sandbox.container.he.verify.build_table``,
salted by the product id), for the evaluation container
(``gateway.he.sandboxed``, under a mode-0700 directory).

Tables are cached in memory per product and per view cache key (dataset
and policy versions, grant scope and key), so a changed policy or dataset
builds a new table; after a restart the first call builds it again.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from gateway.he.errors import HEConflict, HEProductError
from sandbox.container.he.verify import Band, VerificationTable, build_table
from sandbox.errors import SandboxError
from sandbox.sqltext import ident
from sandbox.views.build import Grant, View, ViewBuilder
from sandbox.views.query import hmac_pads, hmac_sql

NUMERIC = re.compile(
    r"(BOOLEAN|TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT"
    r"|FLOAT|DOUBLE|REAL|DECIMAL\(\d+,\s*\d+\))"
)


def grant_view(views: ViewBuilder, grant: Grant, dataset: str) -> tuple[View, str]:
    """The grant's view of ``dataset`` (built or from the cache) and the set's cache key."""
    try:
        built = views.build(grant)
    except SandboxError as e:
        raise HEConflict(f"the grant's views cannot be built: {e}") from e
    view = next((v for v in built.views if v.dataset == dataset), None)
    if view is None:
        raise HEProductError(f"grant {grant.grant_id} has no view of {dataset!r}")
    return view, built.cache_key


def check_value_column(view: View, column: str) -> None:
    """Rule: the value column is in the view, is not the subject, and holds numbers
    (or booleans) as the view presents them, generalisation included."""
    found = next((c for c in view.columns if c.name == column), None)
    if found is None:
        raise HEProductError(f"the view of {view.dataset!r} has no column {column!r}")
    if column == view.entity_column or found.visibility == "entity":
        raise HEProductError("the value column cannot be the subject (entity) column")
    if not NUMERIC.fullmatch(found.type.upper()):
        detail = f" ({found.generalised})" if found.generalised else ""
        raise HEProductError(
            f"column {column!r} is {found.type}{detail} in the view: a band needs numbers "
            "or booleans"
        )


def subject_values(
    views: ViewBuilder, grant: Grant, view: View, value_column: str
) -> list[tuple[str, Any]]:
    """(raw subject key, value as the view shows it) for every row of the view."""
    resolved = {s.dataset: d for s, d, _ in views.resolve(grant)}
    source = resolved[view.dataset].path
    entity, value = ident(view.entity_column), ident(value_column)
    # Names enter SQL only through sandbox.sqltext; paths and keys are bound.
    sql = (
        f"WITH raw AS (SELECT DISTINCT {entity} AS v FROM read_parquet($source)), "
        f"keyed AS (SELECT CAST(v AS VARCHAR) AS subject, {hmac_sql('v')} AS h FROM raw) "
        f"SELECT keyed.subject, view.{value} FROM read_parquet($view) AS view "
        f"JOIN keyed ON view.{entity} = keyed.h"
    )
    params = {**hmac_pads(grant.key), "source": str(source), "view": str(view.path)}
    spill = Path(tempfile.mkdtemp(prefix=".he-spill-", dir=view.path.parent.parent))
    con = duckdb.connect(config={"memory_limit": "1GB", "threads": 1, "temp_directory": str(spill)})
    try:
        rows = con.execute(sql, params).fetchall()
    except duckdb.Error as e:
        raise HEConflict(f"the view of {view.dataset!r} cannot be read") from e
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    return [(str(s), v) for s, v in rows]


class TableCache:
    """Verification tables in memory, per (product, view cache key); built once at a time."""

    def __init__(self) -> None:
        self._tables: dict[str, tuple[str, VerificationTable]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(
        self, product_id: str, cache_key: str, build: Callable[[], VerificationTable]
    ) -> VerificationTable:
        with self._guard:
            lock = self._locks.setdefault(product_id, threading.Lock())
        with lock:
            held = self._tables.get(product_id)
            if held is not None and held[0] == cache_key:
                return held[1]
            table = build()
            self._tables[product_id] = (cache_key, table)
            return table

    def drop(self, product_id: str) -> None:
        with self._guard:
            self._tables.pop(product_id, None)


def verification_table(
    views: ViewBuilder, grant: Grant, product_id: str, spec: dict[str, Any]
) -> tuple[VerificationTable, str]:
    """The product's table built now from the grant's view, and the view's cache key."""
    view, key = grant_view(views, grant, spec["dataset"])
    check_value_column(view, spec["value_column"])
    rows = subject_values(views, grant, view, spec["value_column"])
    try:
        band = Band(spec["value_column"], tuple(float(b) for b in spec["boundaries"]))
        return build_table(product_id, rows, band, bucket_bits=spec.get("bucket_bits")), key
    except SandboxError as e:
        raise HEProductError(f"the verification table cannot be built: {e}") from e
