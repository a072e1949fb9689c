"""What the output rules take and give: outputs, their evidence, thresholds, findings.

Stages 5 and 6 of the data flow. Every rule in ``sandbox/judge/rules/`` is a
small pure function ``rule(output, context) -> list[Finding]``; a job's
``Decision`` is made from the worst verdict of its findings. Nothing here
touches files, the engine or the network.

Invariants:
- A finding names a place (file, row, column) and says what is wrong in
  plain words; its message never quotes a raw value (counts, thresholds and
  positions only).
- The verdict of an output is its worst finding (``worst``); no finding
  means PASS.
- Evidence comes from trusted code only: for SQL products the rewritten
  query (per-row distinct entities, largest contributions, entity sets);
  for Python outputs the declared counts are *claims* and are marked so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from sandbox.judge.fingerprints import FingerprintIndex


class Verdict(StrEnum):
    PASS = "PASS"
    REVIEW = "REVIEW"
    FAIL = "FAIL"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Verdict.PASS: 0, Verdict.REVIEW: 1, Verdict.FAIL: 2}


@dataclass(frozen=True)
class Finding:
    """One rule's judgement on one place of one output."""

    rule: str  # a stable id: see sandbox.judge.rules.RULES
    verdict: Verdict
    file: str
    message: str  # plain words; never a raw value
    row: int | None = None  # 0-based data row (header excluded), None for the whole file
    column: str | None = None

    def location(self) -> str:
        where = self.file
        if self.row is not None:
            where += f" row {self.row + 1}"
        if self.column is not None:
            where += f" column {self.column}"
        return where


class Decision(StrEnum):
    """What becomes of a checked job's outputs, as a whole (``sandbox.judge.verdict.decide``)."""

    RELEASED = "released"  # every finding PASS
    HELD = "held"  # the worst finding REVIEW: a reviewer decides
    BLOCKED = "blocked"  # a finding FAIL: nothing leaves


def worst(findings: Iterable[Finding]) -> Verdict:
    """The verdict of an output (or a job): its worst finding, PASS when there is none."""
    return max((f.verdict for f in findings), key=lambda v: v.rank, default=Verdict.PASS)


Source = Literal["sql", "python", "recomputed"]
Kind = Literal["table", "model", "figure", "text", "other"]


@dataclass(frozen=True)
class Evidence:
    """Trusted per-row facts about a table from an SQL product, aligned with its rows.

    ``entities[dataset]`` is the number of distinct entities of that dataset
    behind each row; ``top[measure]`` holds, per row, the largest absolute
    per-entity contributions to a SUM-like measure (descending) and
    ``totals[measure]`` the sum of absolute contributions; ``entity_sets``
    the ledger keys of each row's entities (for the differencing ledger).

    ``subpopulations[column]``: for each condition inside the column's
    aggregates (and one dataset), per row the distinct entities for which it
    holds and for which it does not. ``measures`` and ``subpopulations`` may
    also be keyed by a clause (HAVING, QUALIFY, ORDER BY) whose aggregates
    pick or order the rows. ``dropped``: for a query that picks groups
    (HAVING, QUALIFY, LIMIT, OFFSET), the evidence of the groups it formed
    and did not return; None when it picks none.
    """

    entities: Mapping[str, np.ndarray[Any, Any]]
    top: Mapping[str, tuple[tuple[float, ...], ...]] = field(default_factory=dict)
    totals: Mapping[str, np.ndarray[Any, Any]] = field(default_factory=dict)
    entity_sets: Mapping[str, tuple[frozenset[str], ...]] = field(default_factory=dict)
    # Measures whose values add up across rows (SUM, COUNT): margins can be recomputed.
    additive: frozenset[str] = frozenset()
    # Output column -> the (top, total) keys of its SUM/AVG arguments in ``top``/``totals``.
    measures: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    subpopulations: Mapping[str, tuple[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]], ...]] = (
        field(default_factory=dict)
    )
    dropped: Evidence | None = None

    def min_entities(self) -> np.ndarray[Any, Any]:
        """Per row, the fewest distinct entities of any dataset behind it."""
        arrays = list(self.entities.values())
        if not arrays:
            raise ValueError("evidence without entity counts")
        return np.minimum.reduce(arrays) if len(arrays) > 1 else arrays[0]


@dataclass(frozen=True)
class Output:
    """One declared output file, read and parsed on the trusted side."""

    file: str
    kind: Kind
    source: Source
    content: bytes
    entry: Mapping[str, Any]  # its manifest entry, as declared (untrusted for Python)
    table: pa.Table | None = None  # tables (CSV, Parquet) parsed
    group_by: tuple[str, ...] = ()
    measures: tuple[str, ...] = ()
    count: str | None = None  # declared count column (a claim, for Python outputs)
    model: Mapping[str, Any] | None = None  # a model summary's JSON document
    text: str | None = None  # text outputs, decoded
    evidence: Evidence | None = None  # SQL products only
    # View columns each output column derives from (SQL lineage; empty for Python).
    lineage: Mapping[str, frozenset[tuple[str, str]]] = field(default_factory=dict)
    # Rows whose measures were blanked by small-cell suppression (set by the checker).
    suppressed: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Thresholds:
    """The release rules that apply to an output: the strictest of its datasets' policies."""

    k: int = 10
    dominance_p: float = 0.10
    dominance_n: int = 2
    dominance_k: float = 0.90
    small_cell_action: Literal["suppress", "block"] = "suppress"
    auto_release: Literal["sql_only", "checked", "never"] = "sql_only"
    max_rows: int = 10_000
    max_bytes: int = 10 * 1024 * 1024
    max_files: int = 20
    model_min_df: int = 10
    model_max_params_fraction: float = 0.2
    # The security level (grading table) whose data a reviewer must release, and the
    # articles its row cites; None when every level the output touches auto-releases.
    reviewed_level: str | None = None
    review_basis: str = ""


@dataclass(frozen=True)
class ViewFacts:
    """What the trusted side knows about the views a job could read.

    ``entities``: distinct entities per dataset. ``combos``: for a tuple of
    quasi-identifier / group-key columns of a view, the number of distinct
    entities holding each combination of (view) values. ``unique_columns``:
    per dataset, view columns that take one value per entity (pseudonyms and
    the like). ``sensitive_values``: per dataset, the set of exact values of
    its sensitive columns (rounded to cents).
    """

    entities: Mapping[str, int] = field(default_factory=dict)
    combos: Mapping[tuple[str, tuple[str, ...]], Mapping[tuple[Any, ...], int]] = field(
        default_factory=dict
    )
    quasi_columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    sensitive_values: Mapping[str, frozenset[float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """Everything a rule may consult besides the output itself."""

    thresholds: Thresholds = Thresholds()
    datasets: tuple[str, ...] = ()  # datasets the job's grant let it read
    views: ViewFacts = ViewFacts()
    fingerprints: FingerprintIndex | None = None
