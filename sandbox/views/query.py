"""The SQL of one view: projection, keyed pseudonyms, generalisation and row filters.

``view_query`` writes the SELECT of a view over ``read_parquet($source)``
from the exposure policy and the grant's scope: hidden columns are refused,
``join_key`` columns and the entity column become an HMAC-SHA256 pseudonym
under the grant's key (``hmac_sql``, the key pads bound as parameters by
``hmac_pads``), group keys are generalised as the policy says, and row
filters compare with bound values. Identifiers are quoted
(``sandbox.sqltext``) and come from the validated policy.
"""

from __future__ import annotations

import hashlib
import itertools
from typing import TYPE_CHECKING, Any

from sandbox.errors import ViewError
from sandbox.intake.policy import Bands, ExposurePolicy, Prefix, Truncate, Visibility, Width
from sandbox.sqltext import ident, sql_number, sql_string

if TYPE_CHECKING:  # build.py imports this module
    from sandbox.views.build import DatasetScope

_OPS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def hmac_sql(column_sql: str) -> str:
    """HMAC-SHA256 of a column's text, as hex, with the key pads bound as $ipad/$opad."""
    return f"sha256($opad || unhex(sha256($ipad || encode(CAST({column_sql} AS VARCHAR)))))"


def hmac_pads(key: bytes) -> dict[str, bytes]:
    block = hashlib.sha256(key).digest() if len(key) > 64 else key
    block = block.ljust(64, b"\0")
    return {"ipad": bytes(b ^ 0x36 for b in block), "opad": bytes(b ^ 0x5C for b in block)}


def _generalised(col_sql: str, g: Bands | Width | Truncate | Prefix) -> tuple[str, str]:
    """SQL generalising the column expression ``col_sql``, and a note for the catalog."""
    q = col_sql
    if isinstance(g, Truncate):
        unit_sql = sql_string(g.truncate)
        return f"CAST(date_trunc({unit_sql}, {q}) AS DATE)", f"truncated to {g.truncate}"
    if isinstance(g, Prefix):
        return f"left(CAST({q} AS VARCHAR), {int(g.prefix)})", f"first {g.prefix} characters"
    if isinstance(g, Width):
        w_sql = sql_number(float(g.width))
        return f"floor({q} / {w_sql}) * {w_sql}", f"bins of width {g.width:g}"
    edges = [float(e) for e in g.bands]
    first, last = sql_number(edges[0]), sql_number(edges[-1])
    cases = [f"WHEN {q} < {first} THEN {sql_string(f'<{edges[0]:g}')}"]
    for lo, hi in itertools.pairwise(edges):
        cases.append(f"WHEN {q} < {sql_number(hi)} THEN {sql_string(f'[{lo:g},{hi:g})')}")
    cases.append(f"WHEN {q} >= {last} THEN {sql_string(f'>={edges[-1]:g}')}")
    return f"CASE {' '.join(cases)} END", "bands " + ",".join(f"{e:g}" for e in edges)


def view_query(
    policy: ExposurePolicy, scope: DatasetScope
) -> tuple[str, dict[str, Any], dict[str, str | None]]:
    """The SELECT of one view over ``read_parquet($source)``, its parameters and notes.

    Pseudonyms are computed once per distinct value and joined back: a
    subject appears in many rows, and the HMAC is the expensive part.
    """
    for name in scope.columns:
        col = policy.columns.get(name)
        if col is None:
            raise ViewError(f"dataset {scope.dataset!r} has no column {name!r}")
        if col.visibility == Visibility.HIDDEN and name != policy.entity_column:
            raise ViewError(f"column {scope.dataset}.{name} is hidden by the exposure policy")
    wanted = [policy.entity_column] + [c for c in scope.columns if c != policy.entity_column]
    where, params = [], {}
    for i, f in enumerate(policy.row_filters):
        q, p = ident(f.column), f"f{i}"
        if f.op == "prefix":
            where.append(f"starts_with(CAST({q} AS VARCHAR), ${p})")
        elif f.op in ("in", "not_in"):
            neg = "NOT " if f.op == "not_in" else ""
            where.append(f"{q} {neg}IN (SELECT unnest(${p}))")
        else:
            where.append(f"{q} {_OPS[f.op]} ${p}")
        params[p] = f.value
    # Identifiers are quoted and come from the validated policy; values are bound.
    src = f"SELECT {', '.join(ident(c) for c in wanted)} FROM read_parquet($source)"
    if where:
        src += " WHERE " + " AND ".join(f"({w})" for w in where)
    ctes, exprs, joins, notes = [f"src AS ({src})"], [], [], {}
    for i, name in enumerate(wanted):
        col, q = policy.columns[name], f"src.{ident(name)}"
        if name == policy.entity_column or col.visibility == Visibility.JOIN_KEY:
            distinct = f"SELECT DISTINCT {ident(name)} AS v FROM src"
            ctes.append(f"p{i} AS (SELECT v, {hmac_sql('v')} AS h FROM ({distinct}))")
            joins.append(f"LEFT JOIN p{i} ON {q} = p{i}.v")
            expr, note = f"p{i}.h", "keyed pseudonym (HMAC-SHA256)"
        elif col.generalise is not None:
            expr, note = _generalised(q, col.generalise)
        else:
            expr, note = q, None
        exprs.append(f"{expr} AS {ident(name)}")
        notes[name] = note
    sql = f"WITH {', '.join(ctes)} SELECT {', '.join(exprs)} FROM src {' '.join(joins)}"
    return sql, params, notes
