"""Minimum aggregation, dominance and small-cell suppression.

Rules of stage 5 (output checking), pure functions over an output and its
evidence:

- ``min_aggregation``: every released row aggregates at least ``k`` distinct
  entities. For SQL products the count is exact (trusted evidence); for
  Python outputs the declared count column is a claim, checked as given
  (the rare-combination rule checks it against the views).
- ``dominance``: on each SUM/AVG measure of an SQL product, the n,k rule
  (the ``n`` largest contributions must not exceed ``k`` of the total) and
  the p% rule (the total less the two largest must be at least ``p`` of the
  largest, else the second largest contributor can estimate the largest
  within p%). Contributions are per entity and absolute.
- ``suppress``: with ``small_cell_action: suppress``, rows under ``k`` have
  their measures blanked; margin rows (rows of a ROLLUP/CUBE, whose keys
  are partly NULL) are recomputed from the released cells for additive
  measures (COUNT, SUM) and blanked otherwise, so subtraction cannot restore
  a suppressed cell; where a margin covers exactly one suppressed cell, the
  next smallest cell beside it is suppressed too (secondary suppression).
  A table with more than half its rows suppressed is held for review: the
  grouping is too fine to be a product, and fine groupings are how a table
  is probed.

Messages give counts and thresholds, never values.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa

from sandbox.checks.model import Context, Finding, Output, Verdict

MIN_AGGREGATION = "min_aggregation"
DOMINANCE = "dominance"
SUPPRESSED = "suppressed"
NO_COUNT = "no_count"


def _row_counts(output: Output) -> tuple[np.ndarray[Any, Any] | None, bool]:
    """Per-row entity counts and whether they are trusted."""
    if output.evidence is not None:
        return output.evidence.min_entities(), True
    if output.table is not None and output.count and output.count in output.table.column_names:
        values = output.table.column(output.count).to_numpy(zero_copy_only=False)
        counts = np.array([_as_int(v) for v in values], dtype=np.int64)
        return counts, False
    return None, False


def _as_int(value: object) -> int:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return -1
    return int(number) if math.isfinite(number) else -1


def min_aggregation(output: Output, ctx: Context) -> list[Finding]:
    """Each released row aggregates at least ``k`` distinct entities."""
    if output.kind != "table" or output.table is None:
        return []
    k = ctx.thresholds.k
    counts, trusted = _row_counts(output)
    if counts is None:
        if output.measures and output.source == "python":
            return [
                Finding(
                    NO_COUNT,
                    Verdict.REVIEW,
                    output.file,
                    "the table declares no count column, so the size of each group is unknown",
                )
            ]
        return []
    skip = output.suppressed
    findings = []
    claim = "" if trusted else " (as declared by the job)"
    for row in np.flatnonzero(counts < k):
        if int(row) in skip:
            continue
        n = int(counts[row])
        what = "an invalid count" if n < 0 else f"{n} entities"
        findings.append(
            Finding(
                MIN_AGGREGATION,
                Verdict.FAIL,
                output.file,
                f"the row aggregates {what}{claim}; at least {k} are required",
                row=int(row),
            )
        )
    return findings


def dominance(output: Output, ctx: Context) -> list[Finding]:
    """No row's SUM-like measure is dominated by one or two contributors (p% and n,k)."""
    ev = output.evidence
    if output.kind != "table" or ev is None:
        return []
    t = ctx.thresholds
    skip = output.suppressed
    findings = []
    for column, measures in ev.measures.items():
        for top_col, total_col in measures:
            tops, totals = ev.top.get(top_col), ev.totals.get(total_col)
            if tops is None or totals is None:
                continue
            for row, (top, total) in enumerate(zip(tops, totals, strict=True)):
                if row in skip or not top or not total or total <= 0:
                    continue
                first = top[0]
                second = top[1] if len(top) > 1 else 0.0
                nk = sum(top[: t.dominance_n]) > t.dominance_k * total
                p_rule = first > 0 and (total - first - second) < t.dominance_p * first
                if nk or p_rule:
                    rule = (
                        f"its {t.dominance_n} largest contributors exceed "
                        f"{t.dominance_k:.0%} of the total"
                        if nk
                        else f"the rest of the total is under {t.dominance_p:.0%} of "
                        "the largest contribution"
                    )
                    findings.append(
                        Finding(
                            DOMINANCE,
                            Verdict.FAIL,
                            output.file,
                            f"the value is dominated by a few entities: {rule}",
                            row=row,
                            column=column,
                        )
                    )
    return findings


def _is_margin(table: pa.Table, keys: tuple[str, ...]) -> np.ndarray[Any, Any]:
    if not keys:
        return np.zeros(table.num_rows, dtype=bool)
    nulls = [table.column(k).is_null().to_numpy(zero_copy_only=False) for k in keys]
    margin: np.ndarray[Any, Any] = np.logical_or.reduce(nulls)
    return margin


def suppress(output: Output, ctx: Context) -> tuple[Output, list[Finding]]:
    """Blank rows under ``k`` and make margins consistent; the output to check and release."""
    table = output.table
    if output.kind != "table" or table is None or ctx.thresholds.small_cell_action != "suppress":
        return output, []
    counts, _ = _row_counts(output)
    if counts is None:
        return output, []
    k = ctx.thresholds.k
    small = counts < k
    if not small.any():
        return output, []
    keys = tuple(c for c in output.group_by if c in table.column_names)
    margin = _is_margin(table, keys)
    primary = small & ~margin
    secondary = _secondary(table, keys, margin, primary, counts)
    hidden = primary | secondary
    hidden_margin = small & margin
    measures = [c for c in output.measures if c in table.column_names]
    if output.count and output.count in table.column_names and output.count not in measures:
        measures.append(output.count)
    additive = output.evidence.additive if output.evidence is not None else frozenset()
    new_columns = {}
    for name in measures:
        column = table.column(name)
        values = column.to_pylist()
        for row in np.flatnonzero(hidden | hidden_margin):
            values[int(row)] = None
        if margin.any():
            covers = _covers(table, keys, margin)
            for m_row, covered in covers.items():
                if not (hidden[covered].any()):
                    continue
                if name in additive or name == output.count:
                    kept = [values[int(r)] for r in covered if not hidden[r]]
                    kept = [v for v in kept if v is not None]
                    values[m_row] = sum(kept) if kept else None
                else:
                    values[m_row] = None
        new_columns[name] = pa.array(values, type=column.type)
    for name, array in new_columns.items():
        table = table.set_column(table.column_names.index(name), name, array)
    rows = sorted(int(r) for r in np.flatnonzero(hidden | hidden_margin))
    secondary_rows = int(secondary.sum())
    findings = [
        Finding(
            SUPPRESSED,
            Verdict.PASS,
            output.file,
            f"{len(rows)} rows suppressed: fewer than {k} entities"
            + (
                f" ({secondary_rows} more beside them, so totals cannot restore a cell)"
                if secondary_rows
                else ""
            ),
        )
    ]
    if len(rows) * 2 > table.num_rows > 1:
        # A table that is mostly blanks is a probe more than a product.
        findings.append(
            Finding(
                SUPPRESSED,
                Verdict.REVIEW,
                output.file,
                f"{len(rows)} of {table.num_rows} rows are suppressed: the grouping is too fine "
                "for automatic release",
            )
        )
    return replace(output, table=table, suppressed=frozenset(rows)), findings


def _covers(table: pa.Table, keys: tuple[str, ...], margin: np.ndarray[Any, Any]) -> dict[int, Any]:
    """For each margin row, the detail rows it totals (same values on its non-null keys)."""
    detail = np.flatnonzero(~margin)
    columns = {k: table.column(k).to_pylist() for k in keys}
    covers = {}
    for m_row in np.flatnonzero(margin):
        fixed = [k for k in keys if columns[k][m_row] is not None]
        covered = [int(r) for r in detail if all(columns[k][r] == columns[k][m_row] for k in fixed)]
        covers[int(m_row)] = np.array(covered, dtype=np.int64)
    return covers


def _secondary(
    table: pa.Table,
    keys: tuple[str, ...],
    margin: np.ndarray[Any, Any],
    primary: np.ndarray[Any, Any],
    counts: np.ndarray[Any, Any],
) -> np.ndarray[Any, Any]:
    """Cells to suppress beside a lone suppressed cell under a margin."""
    extra = np.zeros(table.num_rows, dtype=bool)
    if not margin.any():
        return extra
    for covered in _covers(table, keys, margin).values():
        if covered.size == 0:
            continue
        hidden = primary[covered] | extra[covered]
        if hidden.sum() == 1 and covered.size > 1:
            candidates = covered[~hidden]
            extra[candidates[np.argmin(counts[candidates])]] = True
    return extra
