"""Stage 5 of the data flow, SQL products: split a result into the table and its evidence.

``read_sql_output`` reads the Parquet result of an evidence-carrying query
(``sandbox.precheck.sql.evidence``) and returns the analyst's columns as the
table to release and the evidence columns as trusted facts (``Evidence``);
``entity_lists`` reads each row's entity pseudonyms for the ledger keys.

For a query that picks groups (``EvidenceQuery.keep``), the result holds
every group the query formed: the table to release is the kept rows, in the
analyst's order, with their evidence; the evidence of the other groups goes
to ``Evidence.dropped``, so the output rules judge every group.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from sandbox.errors import CheckError
from sandbox.judge.types import Evidence, Output
from sandbox.precheck.sql.evidence import EvidenceQuery

RESULT_NAME = "result.csv"


def table_csv(table: pa.Table) -> bytes:
    """A table as released: CSV with a header."""
    sink = io.BytesIO()
    pacsv.write_csv(table, sink)
    return sink.getvalue()


def read_sql_output(
    result: bytes,
    query: EvidenceQuery | None,
    output_columns: Sequence[str],
    ledger_keys: Mapping[str, Sequence[frozenset[str]]] | None = None,
) -> Output:
    """Split an SQL product's result into the table to release and its evidence.

    ``ledger_keys``: per dataset, each row's entities as ledger keys (see
    ``sandbox.judge.ledger_keys``); without it the evidence carries no entity sets.
    """
    try:
        full = pq.read_table(io.BytesIO(result))
    except pa.ArrowInvalid as e:
        raise CheckError("the SQL product's result cannot be read") from e
    columns = list(query.output_columns if query is not None else output_columns)
    missing = [c for c in columns if c not in full.column_names]
    if query is not None and query.keep is not None and query.keep not in full.column_names:
        missing.append(query.keep)
    if missing:
        raise CheckError("the SQL product's result lacks its output columns")
    dropped = None
    if query is not None and query.keep is not None:
        keep = np.asarray([v is True for v in full.column(query.keep).to_pylist()], dtype=bool)
        kept_keys, dropped_keys = _split_keys(ledger_keys, keep)
        dropped = _evidence(full.filter(pa.array(~keep)), query, dropped_keys, None)
        full, ledger_keys = full.filter(pa.array(keep)), kept_keys
    released = full.select(columns)
    content = table_csv(released)
    entry = {"kind": "table", "format": "csv", "rows": released.num_rows, "columns": columns}
    if query is None:
        return Output(RESULT_NAME, "table", "sql", content, entry, table=released)
    return Output(
        RESULT_NAME,
        "table",
        "sql",
        content,
        entry,
        table=released,
        group_by=query.dimensions,
        measures=tuple(c for c in columns if c not in query.dimensions),
        evidence=_evidence(full, query, ledger_keys, dropped),
    )


def _split_keys(
    ledger_keys: Mapping[str, Sequence[frozenset[str]]] | None, keep: np.ndarray[Any, Any]
) -> tuple[dict[str, list[frozenset[str]]], dict[str, list[frozenset[str]]]]:
    kept: dict[str, list[frozenset[str]]] = {}
    dropped: dict[str, list[frozenset[str]]] = {}
    for dataset, rows in (ledger_keys or {}).items():
        kept[dataset] = [k for k, flag in zip(rows, keep, strict=True) if flag]
        dropped[dataset] = [k for k, flag in zip(rows, keep, strict=True) if not flag]
    return kept, dropped


def _counts(table: pa.Table, column: str) -> np.ndarray[Any, Any]:
    return np.asarray(
        [int(v) if v is not None else 0 for v in table.column(column).to_pylist()], dtype=np.int64
    )


def _evidence(
    full: pa.Table,
    query: EvidenceQuery,
    ledger_keys: Mapping[str, Sequence[frozenset[str]]] | None,
    dropped: Evidence | None,
) -> Evidence:
    """The evidence columns of ``full`` (rows as released, or the dropped groups)."""
    entities = {}
    for dataset, column in query.entity_columns.items():
        lengths = full.column(column).combine_chunks()
        entities[dataset] = np.asarray(
            [len(v) if v is not None else 0 for v in lengths.to_pylist()], dtype=np.int64
        )
    top: dict[str, tuple[tuple[float, ...], ...]] = {}
    totals: dict[str, np.ndarray[Any, Any]] = {}
    measures: dict[str, tuple[tuple[str, str], ...]] = {}
    for out, specs in query.measures.items():
        measures[out] = tuple((m.top, m.total) for m in specs)
        for m in specs:
            top[m.top] = tuple(
                tuple(float(x) for x in (v or []) if x is not None)
                for v in full.column(m.top).to_pylist()
            )
            totals[m.total] = np.asarray(
                [float(v) if v is not None else 0.0 for v in full.column(m.total).to_pylist()]
            )
    subpopulations = {
        out: tuple((_counts(full, s.true), _counts(full, s.false)) for s in specs)
        for out, specs in query.subpopulations.items()
    }
    return Evidence(
        entities=entities,
        top=top,
        totals=totals,
        entity_sets={d: tuple(v) for d, v in (ledger_keys or {}).items()},
        additive=query.additive,
        measures=measures,
        subpopulations=subpopulations,
        dropped=dropped,
    )


def entity_lists(result: bytes, query: EvidenceQuery) -> dict[str, list[list[str]]]:
    """Per dataset, each row's entity pseudonyms (to be mapped to ledger keys).

    Rows of the whole result, dropped groups included: ``read_sql_output``
    takes the ledger keys in this order and keeps those of the released rows.
    """
    full = pq.read_table(io.BytesIO(result), columns=list(query.entity_columns.values()))
    return {
        dataset: [list(v or []) for v in full.column(column).to_pylist()]
        for dataset, column in query.entity_columns.items()
    }
