"""How a run ends: its state and outcome code, what its audit events record, the cells kept.

Stage 6 of the data flow on the gateway's side, as the worker records it
(``gateway.jobs.worker``): :func:`final_state` maps the pipeline's outcome to
a job state and outcome code; :func:`run_detail` and :func:`verdict_detail`
are the ``job.run`` and ``verdict`` events' details; :func:`save_cells` keeps
a held or blocked SQL product's ledger cells beside its outputs for the
ledger at approval (:func:`load_cells`, ``gateway.reviews.service``).

Invariants:
- No detail names a file the job chose: outputs are listed by position with
  their SHA-256 (past ``MAX_LISTED``, a count and one digest of them all).
- ``cells.json`` is on the trusted side only; it is never served.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gateway.jobs.model import Job, Outcome, State
from sandbox.fsutil import write_atomic
from sandbox.judge.ledger import Cell
from sandbox.judge.verdict import JobReport
from sandbox.pipeline import JobOutcome
from sandbox.run.backends.base import ExitClass

CELLS = "cells.json"
MAX_LISTED = 100  # output hashes listed one by one in a job.run event


_EXIT_OUTCOME = {
    ExitClass.FAILED: Outcome.JOB_FAILED,
    ExitClass.TIMED_OUT: Outcome.TIMED_OUT,
    ExitClass.OOM_KILLED: Outcome.OOM_KILLED,
    ExitClass.RESOURCE_EXHAUSTED: Outcome.RESOURCE_EXHAUSTED,
    ExitClass.BACKEND_ERROR: Outcome.BACKEND_ERROR,
}


def final_state(outcome: JobOutcome) -> tuple[State, Outcome]:
    """The state and outcome code a pipeline outcome ends in."""
    exit_class = outcome.exit_class
    if outcome.status == "rejected":
        return State.REJECTED, Outcome.STATIC_REJECTED
    if outcome.status == "released":
        return State.RELEASED, Outcome.CHECKS_PASSED
    if outcome.status == "held":
        return State.HELD, Outcome.CHECKS_REVIEW
    if outcome.status == "blocked":
        return State.BLOCKED, Outcome.CHECKS_FAILED
    if outcome.status == "dummy" and exit_class == ExitClass.SUCCEEDED:
        return State.COMPLETED, Outcome.DUMMY_FINISHED
    if exit_class is None or exit_class == ExitClass.SUCCEEDED:
        return State.FAILED, Outcome.NO_RESULT
    return State.FAILED, _EXIT_OUTCOME[exit_class]


def save_cells(root: Path, report: JobReport, k: dict[str, int], grant_id: str) -> None:
    """The ledger cells of a held or blocked SQL product, for ``record_release`` later."""
    body = {
        "grant_id": grant_id,
        "k": k,
        "cells": [
            {"dataset": c.dataset, "entities": sorted(c.entities), "location": c.location}
            for c in report.cells
        ],
    }
    write_atomic(root / CELLS, json.dumps(body).encode())


def load_cells(root: Path) -> tuple[tuple[Cell, ...], dict[str, int]]:
    path = root / CELLS
    if not path.is_file():
        return (), {}
    body: dict[str, Any] = json.loads(path.read_text())
    cells = tuple(
        Cell(c["dataset"], frozenset(c["entities"]), c["location"]) for c in body["cells"]
    )
    return cells, {str(d): int(v) for d, v in body["k"].items()}


def run_detail(job: Job, outcome: JobOutcome) -> dict[str, Any]:
    run = outcome.run
    assert run is not None
    e = run.execution
    return {
        "job": job.id,
        "dummy": job.dummy,
        "runtime": run.runtime,
        "exit_class": e.exit_class.value,
        "exit_code": e.exit_code,
        "run_seconds": round(e.wall_seconds, 3),
        "sandbox_seconds": round(run.wall_seconds, 3),
        "memory_peak_bytes": e.memory_peak_bytes,
        "pids_peak": e.pids_peak,
        "cpu_seconds": None if e.cpu_seconds is None else round(e.cpu_seconds, 3),
        "output_bytes": run.collection.total_bytes,
        "outputs": len(run.collection.files),
        "refused": run.collection.refused_total,
        **hashes(run.collection.files),
        "logs_withheld": outcome.logs_withheld,
    }


def hashes(files: Sequence[Any]) -> dict[str, Any]:
    """The collected files' SHA-256s; past ``MAX_LISTED``, a count and one digest of them all."""
    hashes = [f.sha256 for f in files]
    if len(hashes) <= MAX_LISTED:
        return {"output_sha256": hashes}
    digest = hashlib.sha256("\n".join(hashes).encode()).hexdigest()
    return {"output_sha256_count": len(hashes), "output_sha256_digest": digest}


def verdict_detail(job: Job, outcome: JobOutcome, values: Mapping[str, Any]) -> dict[str, Any]:
    """The ``verdict`` event of a checked job (``values``: its ``job_outcomes`` values)."""
    assert outcome.report is not None
    return {
        "job": job.id,
        "verdict": values["verdict"],
        "decision": outcome.report.decision,
        "rules": sorted({f["rule"] for f in values["findings"]}),
        # By position: a file's name is the job's choice, not the auditors'.
        "outputs": [
            {"output": i, "sha256": o["sha256"], "verdict": o["verdict"]}
            for i, o in enumerate(values["outputs"], start=1)
        ],
        "findings": len(values["findings"]),
        "policy_versions": values["policy_versions"],
        "ledger_cells": len(outcome.report.cells),
    }
