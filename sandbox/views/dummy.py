"""Dummy views: schema-faithful synthetic data for the operator's development loop.

A dummy view is made the way a real one is, from different input: a
synthetic raw table is generated from the dataset's *schema* (column names
and types) and the policy's *declared domains* only, then the very same
view query runs over it (generalisations, row filters, keyed pseudonyms
under a throwaway key). So a job that runs on the dummy views runs on the
real ones, and its full logs can be returned.

Invariants:
- No real value is ever read to make a dummy value. Identifiers are
  realistic in form (valid check digits) but random.
- Dummy pseudonyms use a random key, so they never equal a real pseudonym.
- Plain identifier columns (the only ones whose raw form shows) are checked
  against the real column on the trusted side and any chance collision is
  replaced, so dummy data shares no identifier value with the real data.
- Columns of a level whose grading row says ``dummy: synthetic`` (core data by
  default, ``policies/grading.yaml``; 004 art. 19, 26) ignore declared categories
  (values written verbatim) and are checked against the real column the same way:
  a value that stays equal to a real one after the retries is left empty (NULL).
  No dummy value of such a column equals a real value.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import string
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from sandbox.errors import ViewError
from sandbox.fsutil import sha256_file
from sandbox.intake.policy import (
    Categories,
    ColumnClass,
    ColumnPolicy,
    DateRange,
    Format,
    GradingTable,
    NumberRange,
    PolicyVersion,
    Visibility,
    default_grading,
)
from sandbox.intake.registry import DatasetVersion
from sandbox.sqltext import ident, sql_type
from sandbox.synthetic import identifiers
from sandbox.views.build import (
    DatasetScope,
    Grant,
    View,
    ViewBuilder,
    ViewSet,
    _catalog,
    publish_view_set,
)

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建文辉力斌宇浩凯"
_FIRMS = ("科技", "贸易", "建设", "物流", "信息", "餐饮", "制造", "商贸", "咨询", "医药")
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "DECIMAL")
_INTEGER = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT")


def _base(duckdb_type: str) -> str:
    return duckdb_type.upper().split("(")[0].strip()


class _Pools:
    """Identifier pools shared by every view of a dummy set, so dummy joins work."""

    def __init__(self, rng: random.Random, size: int) -> None:
        self._rng = rng
        self._size = max(size, 1)
        self._pools: dict[str, list[str]] = {}

    def pick(self, fmt: str) -> str:
        pool = self._pools.get(fmt)
        if pool is None:
            pool = [self.fresh(fmt) for _ in range(self._size)]
            self._pools[fmt] = pool
        return self._rng.choice(pool)

    def fresh(self, fmt: str) -> str:
        rng = self._rng
        if fmt == "resident_id":
            return identifiers.resident_id(rng)
        if fmt == "credit_code":
            return identifiers.credit_code(rng)
        if fmt == "mobile":
            return identifiers.mobile(rng)
        if fmt == "person_name":
            return rng.choice(_SURNAMES) + "".join(rng.choices(_GIVEN, k=rng.choice((1, 2))))
        if fmt == "company_name":
            return f"重庆{rng.choice(_GIVEN)}{rng.choice(_GIVEN)}{rng.choice(_FIRMS)}有限公司"
        if fmt == "uuid":
            return f"{rng.getrandbits(128):032x}"
        return "".join(rng.choices(string.ascii_lowercase, k=8))


def _value(
    col: ColumnPolicy,
    duckdb_type: str,
    rng: random.Random,
    pools: _Pools,
    synthetic: bool = False,
) -> Any:
    """A dummy value; ``synthetic``: never one of the declared categories (written verbatim)."""
    if col.nullable and rng.random() < 0.05:
        return None
    domain, base = col.domain, _base(duckdb_type)
    if isinstance(domain, Categories) and synthetic:
        domain = None
    if isinstance(domain, Categories):
        return rng.choice(domain.categories)
    if isinstance(domain, NumberRange):
        if domain.integer or base in _INTEGER:
            return rng.randint(int(domain.min), int(domain.max))
        return round(rng.uniform(domain.min, domain.max), 2)
    if isinstance(domain, DateRange):
        span = (domain.max_date - domain.min_date).days
        return domain.min_date + timedelta(days=rng.randint(0, span))
    if isinstance(domain, Format):
        # Identifiers and subjects repeat across rows and views; free text does not.
        repeat = col.column_class == ColumnClass.IDENTIFIER or domain.format in (
            "resident_id",
            "credit_code",
        )
        return pools.pick(domain.format) if repeat else pools.fresh(domain.format)
    # No declared domain: a neutral value of the right type.
    if base in _INTEGER:
        return rng.randint(0, 1000)
    if base in _NUMERIC:
        return round(rng.uniform(0, 1000), 2)
    if base == "DATE" or base.startswith("TIMESTAMP"):
        return date(2000, 1, 1) + timedelta(days=rng.randint(0, 9000))
    if base == "BOOLEAN":
        return rng.random() < 0.5
    return pools.fresh("text")


class DummyBuilder:
    """Builds dummy view sets next to the real views' cache."""

    def __init__(
        self, views: ViewBuilder, cache_root: Path, grading: GradingTable | None = None
    ) -> None:
        self._views = views
        self._root = cache_root / "dummy"
        self._grading = grading if grading is not None else default_grading()

    def build(self, grant: Grant, rows: int = 1000, seed: int | None = None) -> ViewSet:
        """Dummy views for ``grant``: same names, columns and types as the real ones."""
        if not 1 <= rows <= 1_000_000:
            raise ViewError("dummy rows must be between 1 and 1,000,000")
        resolved = self._views.resolve(grant)
        seed = seed if seed is not None else random.SystemRandom().getrandbits(32)
        key = hashlib.sha256(
            f"{self._views.key_for(grant, resolved)}|{rows}|{seed}".encode()
        ).hexdigest()[:32]
        final = self._root / key
        if (final / "catalog.json").is_file():
            return self._views.load(final, grant.grant_id, key, cache_hit=True)
        # Reproducible per seed on purpose: dummy data protects nothing.
        rng = random.Random(seed)  # noqa: S311
        pools = _Pools(rng, max(rows // 3, 1))
        throwaway = Grant(
            grant.grant_id,
            grant.operator,
            grant.scenario,
            grant.scopes,
            key=rng.randbytes(32),
            key_id="dummy",
        )

        def build_set(tmp: Path) -> dict[str, Any]:
            # Which grant a set belongs to lives beside it, as for the real views: a
            # grant's end destroys its sets too (gateway.grants.destroy finds them by it).
            (self._root / f"{key}.json").write_text(json.dumps({"grant_id": grant.grant_id}))
            views = [
                self._one(tmp, throwaway, scope, dataset, policy, rows, rng, pools)
                for scope, dataset, policy in resolved
            ]
            return {**_catalog(views), "dummy": True, "seed": seed}

        publish_view_set(self._root, final, build_set)
        return self._views.load(final, grant.grant_id, key, cache_hit=False)

    def _one(
        self,
        out: Path,
        grant: Grant,
        scope: DatasetScope,
        dataset: DatasetVersion,
        policy: PolicyVersion,
        rows: int,
        rng: random.Random,
        pools: _Pools,
    ) -> View:
        pol = policy.policy
        types = {c.name: c.type for c in dataset.columns}
        # Only the columns the view needs are generated (plus row-filter columns).
        needed = {pol.entity_column, *scope.columns, *(f.column for f in pol.row_filters)}
        names = [c.name for c in dataset.columns if c.name in needed]
        synthetic = {
            n for n in names if self._grading.grade(pol.columns[n].level).dummy == "synthetic"
        }
        columns: dict[str, list[Any]] = {
            n: [_value(pol.columns[n], types[n], rng, pools, n in synthetic) for _ in range(rows)]
            for n in names
        }
        raw = out / f".raw-{scope.dataset}.parquet"
        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")
        try:
            self._avoid_real_identifiers(con, columns, dataset, pol, pools)
            for name in sorted(synthetic):
                self._avoid_real_values(
                    con, name, types[name], columns[name], dataset, pol, rng, pools
                )
            table = pa.table({n: pa.array(v) for n, v in columns.items()})
            con.register("generated", table)
            # Names and types enter the SQL text only through sandbox.sqltext; the path is bound.
            casts_sql = ", ".join(
                f"CAST({ident(n)} AS {sql_type(types[n])}) AS {ident(n)}" for n in names
            )
            con.execute(
                f"COPY (SELECT {casts_sql} FROM generated) TO $raw (FORMAT parquet)",  # noqa: S608
                {"raw": str(raw)},
            )
        finally:
            con.close()
        fake = dataclasses.replace(dataset, path=raw)
        view = self._views.write_view(out, grant, scope, fake, policy)
        raw.unlink()
        return View(
            view.name,
            view.dataset,
            "dummy",
            view.policy_version,
            view.entity_column,
            view.k,
            view.rows,
            view.columns,
            view.path,
            sha256_file(view.path),
        )

    @staticmethod
    def _avoid_real_identifiers(
        con: duckdb.DuckDBPyConnection,
        columns: dict[str, list[Any]],
        dataset: Any,
        pol: Any,
        pools: _Pools,
    ) -> None:
        """Replace any plain identifier value that happens to occur in the real column.

        The real column is only asked which of the candidates it holds; no real
        value comes back except those the candidates already equal.
        """
        for name, values in columns.items():
            col: ColumnPolicy = pol.columns[name]
            if col.column_class != ColumnClass.IDENTIFIER or col.visibility != Visibility.PLAIN:
                continue
            fmt = col.domain.format if isinstance(col.domain, Format) else "text"
            for _ in range(20):
                clashes = {
                    row[0]
                    for row in con.execute(
                        f"SELECT v FROM unnest($cands) t(v) WHERE v IN (SELECT {ident(name)} "  # noqa: S608
                        "FROM read_parquet($real))",
                        {
                            "cands": sorted({str(v) for v in values if v is not None}),
                            "real": str(dataset.path),
                        },
                    ).fetchall()
                }
                if not clashes:
                    break
                for i, v in enumerate(values):
                    if v is not None and str(v) in clashes:
                        values[i] = pools.fresh(fmt)
            else:
                raise ViewError(f"cannot make dummy values for {name!r} distinct from real ones")

    @staticmethod
    def _avoid_real_values(
        con: duckdb.DuckDBPyConnection,
        name: str,
        duckdb_type: str,
        values: list[Any],
        dataset: Any,
        pol: Any,
        rng: random.Random,
        pools: _Pools,
    ) -> None:
        """Make every value of a synthetic-level column differ from every real value.

        Candidates are compared as the column's own type (so 1 and 1.0 clash); the real
        column only answers which candidates it holds. A value still clashing after the
        retries (a narrow domain the real data covers) is left empty.
        """
        col: ColumnPolicy = pol.columns[name]

        def clashes() -> set[str]:
            candidates = sorted({str(v) for v in values if v is not None})
            if not candidates:
                return set()
            found = con.execute(
                f"SELECT v FROM unnest($cands::VARCHAR[]) t(v) WHERE TRY_CAST(v AS "  # noqa: S608
                f"{sql_type(duckdb_type)}) IN (SELECT {ident(name)} FROM read_parquet($real))",
                {"cands": candidates, "real": str(dataset.path)},
            ).fetchall()
            return {row[0] for row in found}

        for _ in range(20):
            clashing = clashes()
            if not clashing:
                return
            for i, v in enumerate(values):
                if v is not None and str(v) in clashing:
                    values[i] = _value(col, duckdb_type, rng, pools, synthetic=True)
        clashing = clashes()
        for i, v in enumerate(values):
            if v is not None and str(v) in clashing:
                values[i] = None
