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
- ``subpopulation``: a condition inside an aggregate of an SQL product
  (``avg(CASE WHEN gender = ... THEN 1 ELSE 0 END)``, ``count(*) FILTER
  (WHERE ...)``) splits the row's group in two; each part holds no entity or
  at least ``k``. A failing row is handled like one under ``k``.
- ``filtered_groups``: a query that picks groups (HAVING, QUALIFY, LIMIT,
  OFFSET) is released only if every group it formed, returned or not,
  passes the three rules above; else it fails whatever the
  ``small_cell_action``. Suppressing the returned rows alone would make
  the outcome depend on which groups the filter kept, and so on a value
  of the filter: an oracle on one entity's value.
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

from sandbox.judge.types import Context, Evidence, Finding, Output, Thresholds, Verdict

MIN_AGGREGATION = "min_aggregation"
DOMINANCE = "dominance"
SUBPOPULATION = "subpopulation"
FILTERED_GROUPS = "filtered_groups"
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


def _dominated(top: tuple[float, ...], total: float, t: Thresholds) -> str | None:
    """Why one cell is dominated by its largest contributors, or None."""
    if not top or not total or total <= 0:
        return None
    first = top[0]
    second = top[1] if len(top) > 1 else 0.0
    if sum(top[: t.dominance_n]) > t.dominance_k * total:
        return f"its {t.dominance_n} largest contributors exceed {t.dominance_k:.0%} of the total"
    if first > 0 and (total - first - second) < t.dominance_p * first:
        return f"the rest of the total is under {t.dominance_p:.0%} of the largest contribution"
    return None


def _dominated_cells(ev: Evidence, t: Thresholds) -> list[tuple[int, str, str]]:
    """(row, measure key, reason) for every dominated cell of ``ev``."""
    found = []
    for key, measures in ev.measures.items():
        for top_col, total_col in measures:
            tops, totals = ev.top.get(top_col), ev.totals.get(total_col)
            if tops is None or totals is None:
                continue
            for row, (top, total) in enumerate(zip(tops, totals, strict=True)):
                if (reason := _dominated(top, float(total), t)) is not None:
                    found.append((row, key, reason))
    return found


def dominance(output: Output, ctx: Context) -> list[Finding]:
    """No row's SUM-like measure is dominated by one or two contributors (p% and n,k)."""
    ev = output.evidence
    if output.kind != "table" or ev is None or output.table is None:
        return []
    columns = set(output.table.column_names)
    return [
        Finding(
            DOMINANCE,
            Verdict.FAIL,
            output.file,
            f"the value is dominated by a few entities: {reason}",
            row=row,
            column=key if key in columns else None,
        )
        for row, key, reason in _dominated_cells(ev, ctx.thresholds)
        if row not in output.suppressed
    ]


def _small_subpopulations(ev: Evidence, k: int) -> np.ndarray[Any, Any]:
    """Per row, whether a condition inside its aggregates splits off 1 to k-1 entities."""
    rows = len(ev.min_entities())
    small = np.zeros(rows, dtype=bool)
    for sides in ev.subpopulations.values():
        for true, false in sides:
            for counts in (true, false):
                small |= (counts > 0) & (counts < k)
    return small


def subpopulation(output: Output, ctx: Context) -> list[Finding]:
    """Each part a condition inside an aggregate splits a row's group into is 0 or >= k."""
    ev = output.evidence
    if output.kind != "table" or ev is None or output.table is None:
        return []
    k = ctx.thresholds.k
    columns = set(output.table.column_names)
    findings = []
    for key, sides in ev.subpopulations.items():
        failing = np.zeros(len(ev.min_entities()), dtype=bool)
        for true, false in sides:
            failing |= ((true > 0) & (true < k)) | ((false > 0) & (false < k))
        for row in np.flatnonzero(failing):
            if int(row) in output.suppressed:
                continue
            findings.append(
                Finding(
                    SUBPOPULATION,
                    Verdict.FAIL,
                    output.file,
                    "a condition inside an aggregate describes fewer than "
                    f"{k} entities (on one side of it)",
                    row=int(row),
                    column=key if key in columns else None,
                )
            )
    return findings


def _group_fails(ev: Evidence, t: Thresholds) -> bool:
    if len(ev.entities) and (ev.min_entities() < t.k).any():
        return True
    return bool(_dominated_cells(ev, t)) or bool(_small_subpopulations(ev, t.k).any())


def filtered_groups(output: Output, ctx: Context) -> list[Finding]:
    """A query picking groups is released only if every group it formed passes."""
    ev = output.evidence
    if output.kind != "table" or ev is None or ev.dropped is None:
        return []
    if not (_group_fails(ev, ctx.thresholds) or _group_fails(ev.dropped, ctx.thresholds)):
        return []
    return [
        Finding(
            FILTERED_GROUPS,
            Verdict.FAIL,
            output.file,
            "the query picks groups (having, qualify, limit or offset) and a group it formed, "
            f"returned or not, has fewer than {ctx.thresholds.k} entities or is dominated by a "
            "few; such a query is released only when every group passes",
        )
    ]


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
    if output.evidence is not None:
        small |= _small_subpopulations(output.evidence, k)
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
            f"{len(rows)} rows suppressed: fewer than {k} entities (in a group or a "
            "subpopulation)"
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
