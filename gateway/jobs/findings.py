"""Findings as operators see them, and as the outcome row keeps them.

Stage 6 of the data flow, the operator's side. The output rules
(``sandbox/judge/rules/``) describe a finding for a reviewer: the file, row and
column it names and a message that may give counts ("aggregates 3
entities"). A job chooses its file names, its column names and, through the
data, those counts, so none of that goes back to the operator, also for held
and blocked jobs whose outputs nobody released. An operator is told:

- the rule id and its verdict;
- a fixed sentence for the rule (``MESSAGES``; an unknown rule: ``GENERIC``);
- the place by position: the output (1-based, in the order of the job's
  outputs as stored; none for a finding about the job as a whole) and the
  row; the column only when its name is a column of the views the job could
  read (schema the operator was granted, never a name the job made up).

Invariants:
- :func:`for_operator` reads nothing of a finding but its rule, verdict, row,
  the file to find its position, and the column to compare it with the view
  columns: no job-chosen string and no rule message reaches its answer.
- An answer lists at most ``SHOWN`` findings, the worst first, with the total
  and a count per rule; the outcome row keeps at most ``STORED`` (the worst
  first, findings added at release ahead of their verdict's others) with the
  same total and counts. The whole report stays in the job's ``report.json``
  for reviewers.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SHOWN = 50  # findings in one operator answer
STORED = 1000  # findings kept in the outcome row

# One value-free sentence per rule id a finding can carry (sandbox.judge.rules.RULES and the
# pipeline's own: spec, recompute, check_limits).
MESSAGES: dict[str, str] = {
    "manifest": "an output does not match its manifest entry, or the manifest is invalid",
    "file_type": "an output is not a CSV, Parquet, JSON, PNG or plain-text file by content",
    "size_cap": "the outputs exceed a cap of the policy (files, rows or bytes)",
    "min_aggregation": "a cell aggregates fewer entities than the policy's minimum",
    "no_count": "a table does not state the number of records behind each row",
    "suppressed": "cells under the policy's minimum were suppressed and margins recomputed",
    "dominance": "a cell is dominated by its largest contributors",
    "subpopulation": "a condition inside an aggregate describes too few entities",
    "filtered_groups": "a group formed by the query, returned or not, fails the checks",
    "row_level": "a table looks like one row per entity rather than groups",
    "rare_combination": "a row reproduces a rare combination of quasi-identifiers",
    "sensitive_value": "an exact sensitive value of an entity in a small group may be reported",
    "identifier_leakage": "an identifier, or an encoding or hash of one, may be in an output",
    "high_entropy": "an output looks like a compressed or encrypted payload",
    "model_dof": "a model has too few residual degrees of freedom or rows per parameter",
    "auto_release": "this kind of output is released by a reviewer, not automatically",
    "evidence_unavailable": "the group sizes of the query could not be established",
    "differencing": "an output differs from a released cell by fewer entities than allowed",
    "scope": "at release, what the outputs derive from was no longer within the grant",
    "undeclared_file": "a file not declared in the manifest was not released",
    "collection": "the outputs could not be collected whole from the sandbox",
    "spec": "a published query or model specification is invalid or was refused",
    "recompute": "the trusted side could not re-run a published specification",
    "check_limits": "checking the outputs passed its memory or time limit (see the settings)",
}
GENERIC = "an output check raised a finding; a reviewer sees the details"
VERDICTS = ("PASS", "REVIEW", "FAIL")
_RANK = {v: i for i, v in enumerate(VERDICTS)}
RULE_ID = re.compile(r"[a-z][a-z0-9_]{0,63}")
RELEASE_STAGE = "release"  # marks findings added when a review ended (``add_finding``)


def message(rule: str) -> str:
    """The fixed sentence operators read for ``rule``."""
    return MESSAGES.get(rule, GENERIC)


def rank(finding: Mapping[str, Any]) -> tuple[int, int]:
    """Sort key: the worst verdict first; findings added at release before the others."""
    added = finding.get("stage") == RELEASE_STAGE
    return (-_RANK.get(str(finding.get("verdict")), _RANK["REVIEW"]), 0 if added else 1)


def ranked(findings: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(findings, key=rank)


@dataclass(frozen=True)
class StoredFindings:
    """The ``findings`` column of ``job_outcomes``: at most ``STORED`` findings with
    all their fields (for reviewers), the total, the count per rule, and the names
    of the view columns the job could read (which column names operators may see)."""

    items: tuple[Mapping[str, Any], ...]
    total: int
    by_rule: Mapping[str, int]
    view_columns: frozenset[str]

    @classmethod
    def of(
        cls, findings: Sequence[Mapping[str, Any]], view_columns: Iterable[str]
    ) -> StoredFindings:
        """Every finding of a job, kept to ``STORED``, counted whole."""
        counts = Counter(str(f.get("rule")) for f in findings)
        return cls(
            tuple(ranked(findings)[:STORED]),
            len(findings),
            dict(sorted(counts.items())),
            frozenset(view_columns),
        )

    @classmethod
    def from_json(cls, value: Any) -> StoredFindings:
        """As stored; a bare list (rows written before totals were kept) is read
        as all the findings, with no view columns (so no column is shown)."""
        if isinstance(value, list):
            return cls.of(value, ())
        if not isinstance(value, Mapping):
            return cls((), 0, {}, frozenset())
        return cls(
            tuple(value.get("items") or ()),
            int(value.get("total") or 0),
            {str(k): int(v) for k, v in (value.get("by_rule") or {}).items()},
            frozenset(str(c) for c in value.get("view_columns") or ()),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "items": [dict(f) for f in self.items],
            "total": self.total,
            "by_rule": dict(self.by_rule),
            "view_columns": sorted(self.view_columns),
        }

    def add(self, finding: Mapping[str, Any]) -> StoredFindings:
        """With one more finding (added at release: kept ahead of its verdict's others)."""
        items = ranked([{**finding, "stage": RELEASE_STAGE}, *self.items])[:STORED]
        counts = Counter(self.by_rule)
        counts[str(finding.get("rule"))] += 1
        return StoredFindings(
            tuple(items), self.total + 1, dict(sorted(counts.items())), self.view_columns
        )


def for_operator(
    findings: Sequence[Mapping[str, Any]],
    outputs: Sequence[Mapping[str, Any]],
    view_columns: Collection[str],
    *,
    limit: int = SHOWN,
) -> list[dict[str, Any]]:
    """The worst ``limit`` findings as an operator may read them (see the module docstring)."""
    positions = {str(o.get("file")): i for i, o in enumerate(outputs, start=1)}
    shown = []
    for f in ranked(findings)[:limit]:
        rule = str(f.get("rule"))
        verdict = str(f.get("verdict"))
        row, column, file = f.get("row"), f.get("column"), f.get("file")
        shown.append(
            {
                "rule": rule if RULE_ID.fullmatch(rule) else "unknown",
                "verdict": verdict if verdict in _RANK else "REVIEW",
                "message": message(rule),
                "output": positions.get(file) if isinstance(file, str) else None,
                "row": row if isinstance(row, int) and not isinstance(row, bool) else None,
                "column": column if isinstance(column, str) and column in view_columns else None,
            }
        )
    return shown
