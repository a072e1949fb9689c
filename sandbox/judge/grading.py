"""Stage 5 of the data flow: the security levels an output touches, made into its thresholds.

Serves 001 art. 32-33 and 004 art. 26 (分类分级 protection) at checking time, with the
grading table (``sandbox.intake.policy.grading``):

- ``touched_levels``: the levels of the columns an output derives from (its SQL
  lineage: every view column its query references, group keys and aggregated columns
  included); without lineage (a Python job's own files), every column of its
  datasets' views, since the job may have read any of them;
- ``graded``: the output's thresholds with ``k`` multiplied by the highest touched
  level's multiplier, and ``reviewed_level`` set when that level is never auto-released
  (the ``auto_release`` rule then holds the output for a security reviewer);
- ``graded_ledger_k``: the same multiplier on each dataset's differencing threshold,
  so two released cells cannot differ by fewer entities than a single cell needs.

Invariants:
- The level taken is the highest touched, never an average: one important column
  makes the whole output important.
- Nothing here lowers a threshold: multipliers are at least 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from sandbox.intake.policy import ExposurePolicy, GradingTable, Visibility, level_name
from sandbox.judge.types import Thresholds

Columns = Iterable[tuple[str, str]]  # (dataset, column)


def touched_levels(
    policies: Mapping[str, ExposurePolicy], columns: Columns | None
) -> dict[str, set[str]]:
    """Per dataset, the levels of the columns an output derives from.

    ``columns`` None (no lineage): every column of the datasets that their views show.
    """
    levels: dict[str, set[str]] = {d: set() for d in policies}
    if columns is None:
        for dataset, policy in policies.items():
            levels[dataset] = {
                level_name(c.level)
                for c in policy.columns.values()
                if c.visibility != Visibility.HIDDEN
            }
        return levels
    for dataset, column in columns:
        found = policies.get(dataset)
        if found is not None and column in found.columns:
            levels[dataset].add(level_name(found.columns[column].level))
    return levels


def graded(
    thresholds: Thresholds,
    policies: Mapping[str, ExposurePolicy],
    columns: Columns | None,
    table: GradingTable,
) -> Thresholds:
    """``thresholds`` raised to the highest security level the output touches."""
    touched = touched_levels(policies, columns)
    level = table.highest(lv for found in touched.values() for lv in found)
    grade = table.grade(level)
    return replace(
        thresholds,
        k=thresholds.k * grade.k_multiplier,
        reviewed_level=None if grade.auto_release else level,
        review_basis="" if grade.auto_release else grade.basis,
    )


def graded_ledger_k(
    policies: Mapping[str, ExposurePolicy], columns: Columns | None, table: GradingTable
) -> dict[str, int]:
    """Each dataset's differencing threshold, raised to the highest level a job touched in it."""
    touched = touched_levels(policies, columns)
    return {
        d: p.k * table.grade(table.highest(touched[d])).k_multiplier for d, p in policies.items()
    }
