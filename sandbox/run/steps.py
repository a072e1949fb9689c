"""Stages 2 and 4 for one sandbox of a job: what it runs (a checked ``Plan``), and running it.

A job takes one or more sandboxes, each a *step* under ``jobs/<id>/``:
``job`` (the submission itself, on the real or the dummy views), ``dummy``
(a Python job's run on the dummy views, which publishes its
specifications), ``q<i>`` and ``m<i>`` (the trusted side's query and model
fit of its i-th specification, ``sandbox/run/recompute.py``).

``plan_sql`` passes an SQL product through the static checks
(``sandbox/precheck/sql/``) and our evidence-carrying rewrite;
``plan_python`` passes a Python job through the screen. ``Sandboxes.run``
writes a plan's ``job.json`` (and ``main.py``) and runs it in a fresh
sandbox through the backend, which collects its outputs.

Invariants:
- A plan exists only for code that passed the static checks: ``plan_sql``
  raises ``SqlRejected``, ``plan_python`` ``ScreenRejected``.
- Our own queries (SQL products, model inputs) run with DuckDB's memory and
  threads capped; their results carry every row's entities, so their output
  caps widen to ``SQL_RESULT_BYTES``; a Python job's never do.
- The sandbox may read its job directory, never write it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from sandbox.errors import CheckError, EvidenceUnavailable
from sandbox.intake.policy import ExposurePolicy
from sandbox.precheck.screen import check_python
from sandbox.precheck.sql import check_sql
from sandbox.precheck.sql.evidence import EvidenceQuery, rewrite
from sandbox.run.backends.base import Backend, Limits, RunResult, RunSpec, execute
from sandbox.views.build import ViewSet

PlanKind = Literal["sql", "python", "model"]  # what the runner in the container does
SQL_RESULT_BYTES = 1024 * 1024 * 1024  # an SQL product's result with its evidence, at most


@dataclass(frozen=True)
class Plan:
    """What one sandbox runs, and what it reads.

    ``settings``: the rest of its ``job.json`` (``job()``), beside the kind.
    """

    kind: PlanKind
    settings: Mapping[str, object]
    code: str | None = None  # main.py of a Python job
    datasets: tuple[str, ...] = ()
    columns: tuple[tuple[str, str], ...] = ()
    query: EvidenceQuery | None = None
    output_columns: tuple[str, ...] = ()

    def job(self) -> dict[str, object]:
        """The ``job.json`` the runner in the container reads."""
        return {"kind": self.kind, **self.settings}


def plan_sql(code: str, policies: Mapping[str, ExposurePolicy], memory: str) -> Plan:
    """An SQL product, checked and rewritten to carry its evidence (``SqlRejected`` if refused)."""
    checked = check_sql(code, policies)
    top_n = max([2, *(policies[d].dominance.n for d in checked.views)])
    query: EvidenceQuery | None
    try:
        query = rewrite(checked, {d: p.entity_column for d, p in policies.items()}, top_n)
    except EvidenceUnavailable:
        query = None  # held for review: no trusted evidence
    settings = {
        "query": query.sql if query is not None else checked.sql,
        "memory_limit": memory,
        "threads": 1,
    }
    return Plan(
        "sql", settings, None, checked.views, checked.columns, query, checked.output_columns
    )


def plan_python(code: str) -> Plan:
    """A Python job, screened (``ScreenRejected`` if refused)."""
    check_python(code)
    return Plan("python", {"entry": "main.py"}, code)


@dataclass(frozen=True)
class Sandboxes:
    """The sandboxes of a pipeline's jobs: its backend, work directory and limits.

    ``sql_memory``: DuckDB's memory limit for our own queries.
    """

    backend: Backend
    work: Path
    limits: Limits
    sql_memory: str
    # CPU seconds of each job's sandboxes so far, until ``take_cpu_seconds`` (metering).
    # Keyed by job id: the pipeline runs several jobs at once, each in one thread.
    _cpu: dict[str, float] = field(default_factory=dict, compare=False, repr=False)

    def root(self, job_id: str) -> Path:
        """Where a job's steps, checked outputs and report live."""
        return self.work / "jobs" / job_id

    def run(self, job_id: str, step: str, plan: Plan, view_set: ViewSet) -> RunResult:
        """One sandbox of the job (``step``: job, dummy, q<i>, m<i>), under ``jobs/<id>/<step>``."""
        root = self.root(job_id)
        base = root / step if step != "job" else root
        job_dir = base / "job"
        if job_dir.exists():
            shutil.rmtree(job_dir)
        job_dir.mkdir(parents=True)
        (job_dir / "job.json").write_text(json.dumps(plan.job()), encoding="utf-8")
        if plan.code is not None:
            (job_dir / "main.py").write_text(plan.code, encoding="utf-8")
        for path in (root, base, job_dir):
            path.chmod(0o755)
        for child in job_dir.iterdir():
            child.chmod(0o644)
        limits = self.limits
        if plan.kind in ("sql", "model"):
            # The result carries every row's entity list (about 35 bytes per entity,
            # compressed): our own query's output, not the analyst's, so the caps widen.
            limits = replace(
                limits,
                output_bytes=max(limits.output_bytes, SQL_RESULT_BYTES),
                output_file_bytes=max(limits.output_file_bytes, SQL_RESULT_BYTES),
                fsize_bytes=max(limits.fsize_bytes, SQL_RESULT_BYTES),
            )
        spec = RunSpec(job_id=job_id, job_dir=job_dir, data_dir=view_set.directory, limits=limits)
        out = base / "out"
        if out.exists():
            shutil.rmtree(out)
        try:
            result = execute(self.backend, spec, out)
        except OSError as e:
            raise CheckError(f"job {job_id} could not be run: {e}") from e
        if result.execution.cpu_seconds is not None:
            self._cpu[job_id] = self._cpu.get(job_id, 0.0) + result.execution.cpu_seconds
        return result

    def take_cpu_seconds(self, job_id: str) -> float | None:
        """The CPU seconds of every sandbox the job ran since the last call (None: none
        reported), forgotten here."""
        return self._cpu.pop(job_id, None)


def collected(run: RunResult, name: str) -> Path | None:
    """The collected file ``name`` of a run, if it wrote one."""
    for f in run.collection.files:
        if f.name == name:
            return f.path
    return None
