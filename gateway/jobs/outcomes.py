"""What a job's run and checks found, as the ``job_outcomes`` row keeps it.

Written by the worker once a run ends (:func:`record_outcome`, from
:func:`outcome_values` of the pipeline's ``JobOutcome``), added to when a
review ends refused (:func:`add_finding`), read as a :class:`StoredOutcome`
by the operators' routes, the reviewers' and the products.

Invariants:
- No value of the data is stored: findings carry rule ids, places and the
  rules' messages; logs are kept for dummy runs only.
- The row keeps at most ``gateway.jobs.findings.STORED`` findings (the worst
  first) with the total and the count per rule.
- Metering (``gateway.metering``): CPU seconds come from the kernel's
  accounting of every sandbox the job took (a Python job's dummy run and the
  trusted side's recomputations included), peak memory from the recorded run's
  sandbox, output bytes from its collection,
  rows and bytes scanned from an SQL product's evidence query only
  (``sandbox.run.metering``: from the views' metadata, never from the data);
  a Python job's scans are unknown (None).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.jobs.findings import StoredFindings, ranked
from gateway.store.lifecycle import Clock, system_clock
from gateway.store.tables import job_outcomes
from sandbox.judge.rules import Verdict
from sandbox.pipeline import JobOutcome
from sandbox.run.metering import output_bytes

FINDING_FIELDS = ("rule", "verdict", "file", "row", "column", "message")
OUTPUT_FIELDS = ("file", "kind", "sha256", "bytes", "verdict")


@dataclass(frozen=True)
class StoredOutcome:
    """A job's outcome row. ``findings``: the ones kept (at most ``STORED``, the worst
    first, each with all its fields, for reviewers); ``outputs``: the output
    manifest (file, kind, sha256, bytes, verdict), in the job's order."""

    exit_class: str | None = None
    exit_code: int | None = None
    runtime: str | None = None
    run_seconds: float | None = None
    sandbox_seconds: float | None = None
    memory_peak_bytes: int | None = None
    pids_peak: int | None = None
    cpu_seconds: float | None = None
    rows_scanned: int | None = None
    bytes_scanned: int | None = None
    output_bytes: int | None = None
    verdict: str | None = None
    findings: tuple[Mapping[str, Any], ...] = ()
    findings_total: int = 0
    findings_by_rule: Mapping[str, int] = field(default_factory=dict)
    view_columns: frozenset[str] = frozenset()
    rejections: tuple[str, ...] = ()
    outputs: tuple[Mapping[str, Any], ...] = ()
    dataset_versions: Mapping[str, str] = field(default_factory=dict)
    policy_versions: Mapping[str, str] = field(default_factory=dict)
    stdout: str | None = None
    stderr: str | None = None
    recorded_at: datetime | None = None

    @property
    def rules(self) -> list[str]:
        """The rule ids of every finding, sorted."""
        return sorted(self.findings_by_rule)


def _finding(f: Mapping[str, Any]) -> dict[str, Any]:
    return {k: f.get(k) for k in FINDING_FIELDS}


def outcome_values(outcome: JobOutcome) -> dict[str, Any]:
    """The ``job_outcomes`` values of a pipeline outcome: no values, logs of dummy runs only.

    ``findings`` holds every finding (the worst first); :func:`record_outcome`
    keeps ``STORED`` of them with the total and the counts per rule.
    ``view_columns``: the names of the view columns the job could read (the
    column names an operator may be shown in a finding)."""
    report = outcome.report.to_dict() if outcome.report is not None else None
    findings: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    if report is not None:
        findings = [_finding(f) for f in report["findings"]]
        for o in report["outputs"]:
            findings += [_finding(f) for f in o["findings"]]
            outputs.append({k: o[k] for k in OUTPUT_FIELDS})
    run = outcome.run
    execution = run.execution if run is not None else None
    logs = execution is not None and not outcome.logs_withheld
    scan = outcome.scanned
    return {
        "exit_class": execution.exit_class.value if execution else None,
        "exit_code": execution.exit_code if execution else None,
        "runtime": run.runtime if run else None,
        "run_seconds": execution.wall_seconds if execution else None,
        "sandbox_seconds": run.wall_seconds if run else None,
        "memory_peak_bytes": execution.memory_peak_bytes if execution else None,
        "pids_peak": execution.pids_peak if execution else None,
        "cpu_seconds": outcome.cpu_seconds,
        "rows_scanned": scan.rows if scan else None,
        "bytes_scanned": scan.bytes if scan else None,
        "output_bytes": output_bytes(run) if run else None,
        "verdict": report["verdict"] if report else None,
        "findings": [dict(f) for f in ranked(findings)],
        "view_columns": sorted({column for _, column in outcome.columns}),
        "rejections": list(outcome.rejections),
        "outputs": outputs,
        "dataset_versions": dict(outcome.dataset_versions),
        "policy_versions": dict(outcome.policy_versions),
        "stdout": execution.stdout.data.decode("utf-8", "replace") if logs and execution else None,
        "stderr": execution.stderr.data.decode("utf-8", "replace") if logs and execution else None,
    }


def record_outcome(
    conn: Connection, job_id: str, values: Mapping[str, Any], clock: Clock = system_clock
) -> None:
    """Write (or replace, after a re-run) the job's outcome row; of the findings it
    keeps the worst ``STORED`` with the total and the counts per rule."""
    conn.execute(sa.delete(job_outcomes).where(job_outcomes.c.job_id == job_id))
    row = {
        "exit_class": None,
        "exit_code": None,
        "runtime": None,
        "run_seconds": None,
        "sandbox_seconds": None,
        "memory_peak_bytes": None,
        "pids_peak": None,
        "cpu_seconds": None,
        "rows_scanned": None,
        "bytes_scanned": None,
        "output_bytes": None,
        "verdict": None,
        "findings": [],
        "rejections": [],
        "outputs": [],
        "dataset_versions": {},
        "policy_versions": {},
        "stdout": None,
        "stderr": None,
    } | {k: v for k, v in values.items() if k != "view_columns"}
    found = StoredFindings.of(row["findings"], values.get("view_columns") or ())
    row["findings"] = found.to_json()
    conn.execute(sa.insert(job_outcomes).values(job_id=job_id, recorded_at=clock(), **row))


def add_finding(
    conn: Connection,
    job_id: str,
    rule: str,
    message: str,
    *,
    verdict: Verdict = Verdict.FAIL,
    clock: Clock = system_clock,
) -> None:
    """Add one finding about the job as a whole to its outcome (e.g. the ledger
    refusing at approval); the outcome's verdict becomes the finding's."""
    finding = {"rule": rule, "verdict": verdict.value, "file": None, "row": None,
               "column": None, "message": message}  # fmt: skip
    current = conn.execute(
        sa.select(job_outcomes.c.findings).where(job_outcomes.c.job_id == job_id)
    ).first()
    if current is None:
        record_outcome(conn, job_id, {"findings": [finding], "verdict": verdict.value}, clock)
        return
    found = StoredFindings.from_json(current.findings).add(finding)
    conn.execute(
        sa.update(job_outcomes)
        .where(job_outcomes.c.job_id == job_id)
        .values(findings=found.to_json(), verdict=verdict.value)
    )


def get_outcome(conn: Connection, job_id: str) -> StoredOutcome | None:
    """The job's outcome row (None before it has one)."""
    row = conn.execute(sa.select(job_outcomes).where(job_outcomes.c.job_id == job_id)).first()
    if row is None:
        return None
    m = row._mapping
    found = StoredFindings.from_json(m["findings"])
    return StoredOutcome(
        exit_class=m["exit_class"],
        exit_code=m["exit_code"],
        runtime=m["runtime"],
        run_seconds=m["run_seconds"],
        sandbox_seconds=m["sandbox_seconds"],
        memory_peak_bytes=m["memory_peak_bytes"],
        pids_peak=m["pids_peak"],
        cpu_seconds=m["cpu_seconds"],
        rows_scanned=m["rows_scanned"],
        bytes_scanned=m["bytes_scanned"],
        output_bytes=m["output_bytes"],
        verdict=m["verdict"],
        findings=tuple(dict(f) for f in found.items),
        findings_total=found.total,
        findings_by_rule=dict(found.by_rule),
        view_columns=found.view_columns,
        rejections=tuple(m["rejections"] or ()),
        outputs=tuple(dict(o) for o in m["outputs"] or ()),
        dataset_versions=dict(m["dataset_versions"] or {}),
        policy_versions=dict(m["policy_versions"] or {}),
        stdout=m["stdout"],
        stderr=m["stderr"],
        recorded_at=m["recorded_at"],
    )
