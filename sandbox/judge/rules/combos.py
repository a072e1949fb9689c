"""Rare quasi-identifier combinations and exact sensitive values in small groups.

Rules of stage 5, for tables whose group sizes are not trusted (Python
outputs; SQL products carry exact counts and are judged by
``min_aggregation``):

- ``rare_combinations``: the group-by columns that are columns of a view
  (quasi-identifiers, group keys, plain attributes) are looked up in the
  trusted combination counts of that view; a row whose combination is held
  by fewer than ``k`` entities fails -- whatever its declared count says (a
  lying count column is caught here). Facts per source: only the views the
  output may come from count (``Context.datasets``: the lineage when it is
  known); a combination rare in one of them but not in another is held for
  review instead, since only the lineage tells which one the row describes.
- ``sensitive_values``: a measure holding exactly the value of a sensitive
  column that fewer than ``k`` entities hold, in a group known or claimed to
  be small, fails; in a group of unknown size it is held for review; a
  measure column whose every row is such a value (a MIN or MAX in disguise)
  is held for review.
"""

from __future__ import annotations

from typing import Any

from sandbox.judge.rules.values import cents, has_at_most_cents, norm
from sandbox.judge.types import Context, Finding, Output, Verdict

RARE_COMBINATION = "rare_combination"
SENSITIVE_VALUE = "sensitive_value"


def combo_columns(output: Output, ctx: Context, dataset: str) -> tuple[str, ...]:
    """The group-by columns of ``output`` that are columns of ``dataset``'s view."""
    known = set(ctx.views.quasi_columns.get(dataset, ()))
    return tuple(c for c in output.group_by if c in known)


def _size_bounds(output: Output, ctx: Context) -> tuple[list[int | None], list[int | None]]:
    """Per row, the fewest and the most entities holding its combination in a view it
    may come from (None: unknown)."""
    assert output.table is not None
    fewest: list[int | None] = [None] * output.table.num_rows
    most: list[int | None] = [None] * output.table.num_rows
    for dataset in ctx.datasets:
        columns = combo_columns(output, ctx, dataset)
        counts = ctx.views.combos.get((dataset, columns)) if columns else None
        if counts is None:
            continue
        values = [output.table.column(c).to_pylist() for c in columns]
        for row in range(output.table.num_rows):
            n = counts.get(tuple(norm(v[row]) for v in values))
            if n is not None:
                low, high = fewest[row], most[row]
                fewest[row] = n if low is None else min(low, n)
                most[row] = n if high is None else max(high, n)
    return fewest, most


def _trusted_sizes(output: Output, ctx: Context) -> list[int | None]:
    """Per row, the fewest entities holding its combination in any view (None: unknown)."""
    return _size_bounds(output, ctx)[0]


def rare_combinations(output: Output, ctx: Context) -> list[Finding]:
    """No row reproduces a combination of view values held by fewer than ``k`` entities."""
    if output.kind != "table" or output.table is None or output.evidence is not None:
        return []
    k = ctx.thresholds.k
    declared = _declared(output)
    findings = []
    fewest, most = _size_bounds(output, ctx)
    for row, n in enumerate(fewest):
        if n is None or n >= k or row in output.suppressed:
            continue
        claim = declared[row] if declared else None
        lie = claim is not None and claim >= k
        # Rare in every view it may come from: FAIL. Rare in one view, common in
        # another (a district of 56 residents and one enterprise): which the row
        # describes, only its lineage or a reviewer can tell.
        everywhere = (most[row] or 0) < k
        findings.append(
            Finding(
                RARE_COMBINATION,
                Verdict.FAIL if everywhere else Verdict.REVIEW,
                output.file,
                f"the row's combination of {', '.join(output.group_by)} is held by fewer than "
                f"{k} entities in the data" + ("; the declared count claims more" if lie else ""),
                row=row,
            )
        )
    return findings


def _declared(output: Output) -> list[int | None] | None:
    if output.table is None or not output.count or output.count not in output.table.column_names:
        return None
    out: list[int | None] = []
    for v in output.table.column(output.count).to_pylist():
        number = cents(v)
        out.append(None if number is None else int(number))
    return out


def sensitive_values(output: Output, ctx: Context) -> list[Finding]:
    """No exact rare sensitive value is reported for a small (or unknown-size) group."""
    if output.kind != "table" or output.table is None or output.evidence is not None:
        return []
    rare: set[float] = set()
    for dataset in ctx.datasets:
        rare |= ctx.views.sensitive_values.get(dataset, frozenset())
    if not rare:
        return []
    k = ctx.thresholds.k
    declared = _declared(output)
    trusted = _trusted_sizes(output, ctx)
    findings = []
    for column in output.measures:
        if column not in output.table.column_names:
            continue
        values: list[Any] = output.table.column(column).to_pylist()
        hits = [
            row
            for row, v in enumerate(values)
            if row not in output.suppressed and has_at_most_cents(v) and cents(v) in rare
        ]
        for row in hits:
            size = trusted[row]
            if size is None and declared is not None:
                size = declared[row]
            if size is not None and size >= k:
                continue
            verdict = Verdict.REVIEW if size is None else Verdict.FAIL
            findings.append(
                Finding(
                    SENSITIVE_VALUE,
                    verdict,
                    output.file,
                    "the value equals one entity's exact sensitive value"
                    + (f" in a group under {k} entities" if size is not None else "")
                    + ("" if size is not None else " and the group's size is unknown"),
                    row=row,
                    column=column,
                )
            )
        if values and len(hits) == len(values) and len(values) > 1:
            findings.append(
                Finding(
                    SENSITIVE_VALUE,
                    Verdict.REVIEW,
                    output.file,
                    "every value of the column is one entity's exact sensitive value "
                    "(a minimum or maximum reveals a person's value)",
                    column=column,
                )
            )
    return findings
