"""Stage 5 of the data flow: what the rules judge an output against, from trusted sources.

``thresholds_for`` takes the strictest release rules of the datasets an
output may derive from (their exposure policies); ``view_facts`` computes,
from the grant's views, the trusted numbers the rules compare Python
outputs against: distinct entities per dataset, the entities behind each
combination of quasi-identifiers an output groups by, and the rare values
of sensitive columns.

Invariants:
- Thresholds come from the policies only, never from code or the job.
- The views are read by DuckDB with their paths bound as parameters and
  names quoted (``sandbox.sqltext.ident``); nothing of the job enters SQL
  but the names of view columns it groups by, and only those the policy
  lists as group keys or plain columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from sandbox.intake.policy import ColumnClass, ExposurePolicy, Visibility
from sandbox.judge.rules.values import cents, norm
from sandbox.judge.types import Output, Thresholds, ViewFacts
from sandbox.sqltext import ident

_AUTO_ORDER = {"checked": 0, "sql_only": 1, "never": 2}


def thresholds_for(policies: Sequence[ExposurePolicy]) -> Thresholds:
    """The strictest rules of the datasets an output may derive from."""
    if not policies:
        return Thresholds()
    return Thresholds(
        k=max(p.k for p in policies),
        dominance_p=max(p.dominance.p for p in policies),
        dominance_n=max(p.dominance.n for p in policies),
        dominance_k=min(p.dominance.k for p in policies),
        small_cell_action="block"
        if any(p.small_cell_action == "block" for p in policies)
        else "suppress",
        auto_release=max((p.auto_release for p in policies), key=lambda m: _AUTO_ORDER[m]),
        max_rows=min(p.output_caps.max_rows for p in policies),
        max_bytes=min(p.output_caps.max_bytes for p in policies),
        max_files=min(p.output_caps.max_files for p in policies),
        model_min_df=max(p.models.min_df for p in policies),
        model_max_params_fraction=min(p.models.max_params_fraction for p in policies),
    )


def view_facts(
    views: Mapping[str, Path],
    policies: Mapping[str, ExposurePolicy],
    outputs: Sequence[Output],
    k: int,
) -> ViewFacts:
    """Entity counts, the combination counts the outputs need and rare sensitive values.

    ``views``: dataset -> its view's Parquet file (as mounted for the job).
    """
    entities: dict[str, int] = {}
    combos: dict[tuple[str, tuple[str, ...]], dict[tuple[Any, ...], int]] = {}
    quasi: dict[str, tuple[str, ...]] = {}
    sensitive: dict[str, frozenset[float]] = {}
    tables = [o for o in outputs if o.kind == "table" and o.table is not None]
    con = duckdb.connect(config={"threads": 2, "memory_limit": "1GB"})
    try:
        for dataset, path in views.items():
            policy = policies[dataset]
            bound = {"view": str(path)}  # the path is bound, never pasted
            entity = ident(policy.entity_column)
            row = con.execute(
                f"SELECT count(DISTINCT {entity}) FROM read_parquet($view)",  # noqa: S608
                bound,
            ).fetchall()
            entities[dataset] = int(row[0][0])
            present = set(pq.read_schema(path).names)
            quasi[dataset] = tuple(
                name
                for name, col in policy.columns.items()
                if name in present
                and name != policy.entity_column
                and col.visibility in (Visibility.GROUP_KEY, Visibility.PLAIN)
            )
            for output in tables:
                if output.evidence is not None:
                    continue
                columns = tuple(c for c in output.group_by if c in quasi[dataset])
                if columns and (dataset, columns) not in combos:
                    cols_sql = ", ".join(ident(c) for c in columns)
                    rows = con.execute(
                        f"SELECT {cols_sql}, count(DISTINCT {entity}) "  # noqa: S608
                        "FROM read_parquet($view) GROUP BY ALL",
                        bound,
                    ).fetchall()
                    combos[(dataset, columns)] = {
                        tuple(norm(v) for v in r[:-1]): int(r[-1]) for r in rows
                    }
            if any(o.measures and o.evidence is None for o in tables):
                sensitive[dataset] = _rare_sensitive(con, path, policy, present, entity, k)
    finally:
        con.close()
    return ViewFacts(
        entities=entities, combos=combos, quasi_columns=quasi, sensitive_values=sensitive
    )


def _rare_sensitive(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    policy: ExposurePolicy,
    present: set[str],
    entity_sql: str,
    k: int,
) -> frozenset[float]:
    values: set[float] = set()
    for name, col in policy.columns.items():
        if name not in present or col.column_class != ColumnClass.SENSITIVE:
            continue
        try:
            rows = con.execute(
                f"SELECT round(TRY_CAST({ident(name)} AS DOUBLE), 2) AS v "  # noqa: S608
                "FROM read_parquet($view) WHERE v IS NOT NULL GROUP BY v "
                f"HAVING count(DISTINCT {entity_sql}) < {int(k)}",
                {"view": str(path)},
            ).fetchall()
        except duckdb.Error:
            continue
        values.update(c for (v,) in rows if (c := cents(v)) is not None)
    return frozenset(values)
