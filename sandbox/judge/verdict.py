"""Stages 5 and 6 of the data flow, whole jobs: every rule, the ledger's check, the decision.

``check_job`` runs every output rule (``sandbox/judge/rules/``) over a job's
outputs, read beforehand (``sandbox/judge/outputs/``) and judged against
their trusted facts (``sandbox/judge/facts.py``); then the differencing
ledger's check; and decides (``decide``). The ``JobReport`` holds each output
as it would be released, with its findings. ``record_release`` records a
released job's cells in the ledger when the release commits.

Invariants:
- Only declared files are ever released; undeclared ones are named in a
  finding and dropped (``sandbox/judge/outputs/python.py``).
- The decision covers the job as a whole: released (every finding PASS),
  held (worst REVIEW) or blocked (worst FAIL); held and blocked outputs go
  to security review with their findings.
- Released SQL cells enter the ledger only when the release commits
  (``record_release``: check and record in one ledger transaction), so two
  jobs cannot pass against each other and a job refused after checking
  (scope at release, a reviewer's denial) records nothing.
- ``JobReport.to_dict`` is the report as stored for the gateway: rules,
  places, digests and counts from the typed fields, never values.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq

from sandbox.errors import CheckError
from sandbox.judge.ledger import Cell, DifferencingFinding, Ledger
from sandbox.judge.outputs.sql import table_csv
from sandbox.judge.rules import (
    Context,
    Finding,
    Output,
    Verdict,
    check_output,
    check_outputs,
    worst,
)
from sandbox.judge.types import Decision


@dataclass(frozen=True)
class CheckedOutput:
    """One output as it would be released, with its verdict and findings."""

    output: Output
    content: bytes  # the bytes to release (after suppression)
    verdict: Verdict
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class JobReport:
    """The outcome of checking one job."""

    outputs: tuple[CheckedOutput, ...]
    findings: tuple[Finding, ...]  # job-level findings (collection, manifest, file count)
    verdict: Verdict
    decision: Decision
    cells: tuple[Cell, ...] = field(default=())  # SQL cells for the ledger
    ledger_ids: tuple[int, ...] = field(default=())  # recorded cell ids, when released

    def all_findings(self) -> list[Finding]:
        return [*self.findings, *(f for o in self.outputs for f in o.findings)]

    def to_dict(self) -> dict[str, Any]:
        """The report as stored for the review queue: rules and places, never values."""

        def finding(f: Finding) -> dict[str, Any]:
            return {
                "rule": f.rule,
                "verdict": str(f.verdict),
                "file": f.file,
                "row": f.row,
                "column": f.column,
                "message": f.message,
            }

        return {
            "verdict": str(self.verdict),
            "decision": str(self.decision),
            "findings": [finding(f) for f in self.findings],
            "outputs": [
                {
                    "file": o.output.file,
                    "kind": o.output.kind,
                    "source": o.output.source,
                    "sha256": hashlib.sha256(o.content).hexdigest(),
                    "bytes": len(o.content),
                    "verdict": str(o.verdict),
                    "suppressed_rows": sorted(o.output.suppressed),
                    "findings": [finding(f) for f in o.findings],
                }
                for o in self.outputs
            ],
            "ledger_cells": len(self.cells),
            "ledger_ids": list(self.ledger_ids),
        }


_DECISIONS = {
    Verdict.PASS: Decision.RELEASED,
    Verdict.REVIEW: Decision.HELD,
    Verdict.FAIL: Decision.BLOCKED,
}


def decide(verdict: Verdict) -> Decision:
    """A job's outputs are released, held for review or blocked, as a whole."""
    return _DECISIONS[verdict]


def _release_bytes(output: Output) -> bytes:
    """The bytes to release: the table as suppressed, else the file unchanged."""
    if output.suppressed and output.table is not None:
        if output.file.lower().endswith(".parquet"):
            sink = io.BytesIO()
            pq.write_table(output.table, sink)
            return sink.getvalue()
        return table_csv(output.table)
    return output.content


def _ledger_finding(d: DifferencingFinding) -> Finding:
    file, _, rest = d.location.partition(" row ")
    row = int(rest) - 1 if rest.isdigit() else None
    return Finding("differencing", Verdict.FAIL, file, d.message, row=row)


def sql_cells(output: Output) -> list[Cell]:
    """The ledger cells of an SQL product: one per released row and dataset."""
    if output.evidence is None or output.table is None:
        return []
    cells = []
    for dataset, sets in output.evidence.entity_sets.items():
        for row, keys in enumerate(sets):
            if row in output.suppressed:
                continue
            cells.append(Cell(dataset, keys, f"{output.file} row {row + 1}"))
    return cells


def check_job(
    outputs: Sequence[Output],
    ctx: Context,
    *,
    job_findings: Sequence[Finding] = (),
    ledger: Ledger | None = None,
    ledger_k: Mapping[str, int] | None = None,
    contexts: Sequence[Context] | None = None,
) -> JobReport:
    """Every rule over every output, then the ledger's check; the job's verdict and decision.

    Nothing is recorded here: released cells enter the ledger when the release
    commits (``record_release``), so a refusal after checking records nothing.
    ``contexts``: one per output (facts of the datasets it derives from);
    ``ctx`` for all when absent.
    """
    checked = []
    cells: list[Cell] = []
    for i, output in enumerate(outputs):
        released, findings = check_output(output, contexts[i] if contexts else ctx)
        checked.append((released, findings))
        cells.extend(sql_cells(released))
    job_level = [*job_findings, *check_outputs(outputs, ctx)]
    before = worst([*job_level, *(f for _, fs in checked for f in fs)])
    if ledger is not None and cells and before != Verdict.FAIL:  # blocked already: no need
        by_file: dict[str, list[Finding]] = {}
        for d in ledger.check(cells, dict(ledger_k or {})):
            f = _ledger_finding(d)
            by_file.setdefault(f.file, []).append(f)
        checked = [(o, fs + by_file.get(o.file, [])) for o, fs in checked]
    results = tuple(CheckedOutput(o, _release_bytes(o), worst(fs), tuple(fs)) for o, fs in checked)
    verdict = worst([*job_level, *(f for r in results for f in r.findings)])
    return JobReport(
        outputs=results,
        findings=tuple(job_level),
        verdict=verdict,
        decision=decide(verdict),
        cells=tuple(cells),
    )


def record_release(
    report: JobReport,
    ledger: Ledger,
    ledger_k: Mapping[str, int],
    *,
    job_id: str,
    grant_id: str,
    operator: str,
    query: str,
) -> tuple[int, ...]:
    """Record a reviewed and approved job's cells in the ledger (re-checked atomically).

    Returns the recorded ids; raises ``CheckError`` when the cells now fail
    against releases made since the job was checked.
    """
    if not report.cells:
        return ()
    decision = ledger.check_and_record(
        list(report.cells),
        dict(ledger_k),
        job_id=job_id,
        grant_id=grant_id,
        operator=operator,
        query=query,
    )
    if decision.findings:
        raise CheckError("the output now differs from a released cell by fewer than k entities")
    return decision.cell_ids
