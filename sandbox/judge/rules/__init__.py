"""Stage 5 of the data flow: the output rules, one small pure function each.

``check_output`` runs every rule over one output (after small-cell
suppression, when the policy asks for it) and returns the output as it
would be released with its findings; ``check_outputs`` adds the rules over
a whole job (file count). Thresholds come from the exposure policies
(``Thresholds``), never from code. The differencing ledger
(``sandbox/judge/ledger.py``) is consulted by the job checker
(``sandbox/judge/verdict.py``), since it holds state across jobs.

``RULES`` lists every rule id a finding may carry with the rule it
enforces, in plain words; the gateway shows these to operators and
reviewers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sandbox.judge.rules.aggregation import (
    DOMINANCE,
    FILTERED_GROUPS,
    MIN_AGGREGATION,
    NO_COUNT,
    SUBPOPULATION,
    SUPPRESSED,
    dominance,
    filtered_groups,
    min_aggregation,
    subpopulation,
    suppress,
)
from sandbox.judge.rules.combos import (
    RARE_COMBINATION,
    SENSITIVE_VALUE,
    rare_combinations,
    sensitive_values,
)
from sandbox.judge.rules.entropy import high_entropy
from sandbox.judge.rules.files import (
    FILE_TYPE,
    MANIFEST,
    SIZE_CAP,
    file_count,
    file_type,
    manifest_integrity,
    size_caps,
)
from sandbox.judge.rules.leakage import identifier_leakage
from sandbox.judge.rules.models import MODEL_DOF, model_disclosure
from sandbox.judge.rules.release import AUTO_RELEASE, EVIDENCE, auto_release
from sandbox.judge.rules.rowlevel import ROW_LEVEL, row_level
from sandbox.judge.types import (
    Context,
    Evidence,
    Finding,
    Output,
    Thresholds,
    Verdict,
    ViewFacts,
    worst,
)

__all__ = [
    "OUTPUT_RULES",
    "RULES",
    "Context",
    "Evidence",
    "Finding",
    "Output",
    "Thresholds",
    "Verdict",
    "ViewFacts",
    "check_output",
    "check_outputs",
    "worst",
]

Rule = Callable[[Output, Context], list[Finding]]

# In the order they run; every one runs, so a reviewer sees every problem at once.
OUTPUT_RULES: tuple[Rule, ...] = (
    manifest_integrity,
    file_type,
    size_caps,
    min_aggregation,
    dominance,
    subpopulation,
    filtered_groups,
    row_level,
    rare_combinations,
    sensitive_values,
    identifier_leakage,
    high_entropy,
    model_disclosure,
    auto_release,
)

RULES: dict[str, str] = {
    MANIFEST: "a released file is byte for byte the one its manifest entry declares",
    FILE_TYPE: "only CSV, Parquet, JSON, PNG and plain text leave, recognised by content",
    SIZE_CAP: "files, rows and outputs stay within the policy's caps",
    MIN_AGGREGATION: "every released cell aggregates at least k distinct entities",
    NO_COUNT: "a Python table states the number of records behind each row",
    SUPPRESSED: "cells under k are suppressed and margins recomputed (policy: suppress)",
    DOMINANCE: "no cell is dominated by its largest contributors (p% and n,k rules)",
    SUBPOPULATION: "a condition inside an aggregate describes no entity or at least k",
    FILTERED_GROUPS: (
        "a query picking groups (HAVING, QUALIFY, LIMIT, OFFSET) is released only when every "
        "group it formed, returned or not, passes k, dominance and subpopulations"
    ),
    ROW_LEVEL: "tables describe groups, never one row per entity",
    RARE_COMBINATION: "no row reproduces a quasi-identifier combination held by under k entities",
    SENSITIVE_VALUE: "no exact sensitive value of an entity is reported for a small group",
    "identifier_leakage": "no identifier, or reversible encoding or hash of one, leaves",
    "high_entropy": "no compressed or encrypted payload leaves in cells or text",
    MODEL_DOF: "models have enough residual degrees of freedom and rows per parameter",
    AUTO_RELEASE: (
        "figures, text, (by policy) Python outputs and (by the grading table) outputs of "
        "important or core data are released by a reviewer"
    ),
    EVIDENCE: "an SQL product's group sizes are known to trusted code",
    "differencing": "no released cell differs from another by fewer than k entities",
    "scope": "at release, everything an output derives from is still within the grant",
    "undeclared_file": "files not declared in the manifest are never released",
    "collection": "a job's outputs were collected whole from the sandbox",
    "spec": "a Python job's query and model specifications are well formed and pass the "
    "static checks",
    "recompute": "the trusted side computed every specification it released",
    "check_limits": "checking a job stays within its memory and time limits",
}


def check_output(output: Output, ctx: Context) -> tuple[Output, list[Finding]]:
    """Every output rule over ``output``; returns it as it would be released, and findings."""
    released, findings = suppress(output, ctx)
    for rule in OUTPUT_RULES:
        findings.extend(rule(released, ctx))
    return released, findings


def check_outputs(outputs: Sequence[Output], ctx: Context) -> list[Finding]:
    """The rules over a whole job's outputs."""
    return file_count(outputs, ctx)
