"""Row-level output: a table whose rows track entities rather than groups.

Rule of stage 5. A released table must describe groups. It fails when it has
about as many rows as a dataset it was computed from has entities (a copy of
the table, or per-entity predictions and residuals), judged against the
trusted count of entities in the views. Single rows tied to one entity are
the business of ``min_aggregation`` (SQL) and ``rare_combinations`` (Python).
"""

from __future__ import annotations

from sandbox.judge.types import Context, Finding, Output, Verdict

ROW_LEVEL = "row_level"
ROW_SHARE = 0.5  # rows / entities at or above which a table tracks entities


def row_level(output: Output, ctx: Context) -> list[Finding]:
    """A table never has about as many rows as the entities it was computed from."""
    if output.kind != "table" or output.table is None:
        return []
    rows = output.table.num_rows
    findings = []
    for dataset in ctx.datasets:
        entities = ctx.views.entities.get(dataset)
        if not entities or rows <= ctx.thresholds.k:
            continue
        if rows >= ROW_SHARE * entities:
            findings.append(
                Finding(
                    ROW_LEVEL,
                    Verdict.FAIL,
                    output.file,
                    f"the table has {rows} rows for {entities} entities of {dataset}: "
                    "its rows track entities, not groups",
                )
            )
    if output.evidence is not None and rows > ctx.thresholds.k:
        single = int((output.evidence.min_entities() <= 1).sum())
        if single >= ROW_SHARE * rows:
            findings.append(
                Finding(
                    ROW_LEVEL,
                    Verdict.FAIL,
                    output.file,
                    f"{single} of {rows} rows each come from a single entity",
                )
            )
    return findings
