"""The data flow of one job, stages 2 to 6, in one place.

``Pipeline.run`` takes a grant and a submission (one SQL SELECT, or a
Python ``main.py``) and returns a ``JobOutcome``:

2. static checks: the SQL checker against the exposure policies, or the
   Python screen (a lint); a rejected submission never runs;
3. the grant's authorized views (cached), or their dummy twins;
4. fresh sandboxes through the backend (``sandbox/run/steps.py``: SQL runs our
   evidence-carrying rewrite, with DuckDB locked, in the container too);
   a Python job's specifications computed by the trusted side
   (``sandbox/run/recompute.py``);
5. outputs read on the trusted side and checked by every rule and the
   differencing ledger's check, in a bounded checker process
   (``sandbox/judge/bounded.py``, ``sandbox/judge/task.py``);
6. the decision (``Decision``): released, held or blocked, as a whole. A job
   that ends before it is checked is ``Unchecked``: rejected, failed or a
   dummy run; ``JobOutcome.status`` is one or the other (``JobStatus``).

A Python job releases automatically only what the trusted side computed
itself. The job runs first on the **dummy** views; the specifications it
published there (``publish_query``: an SQL product; ``publish_model``: a
GLM over a query's rows) are recomputed on the real views by our code: the
query through the SQL-product path above, the model fitted by our runner in
a fresh sandbox. A specification therefore never depends on real data. Only
when the dummy run also wrote files of its own (tables, figures, text,
models it fitted) does the job run on the real views; those files are held
for a reviewer under every ``auto_release`` setting.

The gateway adds identity, scope decisions, persistence and audit around
this, and commits a release (``commit_release``: the ledger records the
cells in its own transaction, after the scope check). Standalone use
(``run(..., commit=True)``, the default) commits at the end of ``run``.
Dummy jobs (``run(..., dummy=True)``) run on the dummy views with full logs;
nothing is checked, since they hold no real value.

Invariants:
- A failed job is data: its exit class is in the outcome, never raised.
- stdout and stderr of a run on real data are returned for the trusted side
  only (``JobOutcome.logs_withheld``); a Python job that never ran on real
  data shows its logs.
- Checking that passes its memory or time limits ends the job blocked with
  a plain reason; the calling process is never the one that grows.
- The grading table (``policies/grading.yaml``) raises k and withholds automatic
  release by the security levels an output touches (``sandbox/judge/grading.py``):
  in the checker for the cells, and here for the ledger's check at commit.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Literal

from sandbox.container.sqlrun import RESULT
from sandbox.errors import CheckError, ScreenRejected, SqlRejected
from sandbox.fsutil import write_atomic
from sandbox.intake.policy import ExposurePolicy, GradingTable, default_grading
from sandbox.intake.registry import DatasetVersion
from sandbox.judge.bounded import CHECKERS, BoundedPool, CheckLimitExceeded
from sandbox.judge.bounded import Limits as CheckLimits
from sandbox.judge.fingerprints import FingerprintStore
from sandbox.judge.grading import graded_ledger_k
from sandbox.judge.ledger import Ledger
from sandbox.judge.ledger_keys import EntityMaps
from sandbox.judge.rules import Finding, Verdict
from sandbox.judge.task import JudgeConfig, JudgeTask, ModelPiece, SqlPiece, ViewRef, judge
from sandbox.judge.types import Decision
from sandbox.judge.verdict import JobReport, record_release
from sandbox.run.backends.base import Backend, ExitClass, Limits, RunResult
from sandbox.run.metering import Scanned, scanned
from sandbox.run.recompute import Pieces, Recompute, read_specs
from sandbox.run.steps import Plan, Sandboxes, collected, plan_python, plan_sql
from sandbox.views.build import Grant, ViewBuilder, ViewSet
from sandbox.views.dummy import DummyBuilder

Kind = Literal["sql", "python"]


class Unchecked(StrEnum):
    """How a job ends before its outputs are checked: no decision is made."""

    REJECTED = "rejected"  # refused by the static checks; it never ran
    FAILED = "failed"  # a run did not succeed, or left no result to check
    DUMMY = "dummy"  # ran on the dummy views, as asked: nothing to check


# A job's status: the decision on its checked outputs, or how it ended unchecked. A
# union rather than one enum of six, so that a report's decision is a status as it is.
JobStatus = Decision | Unchecked


@dataclass(frozen=True)
class JobOutcome:
    """What became of one submission."""

    job_id: str
    kind: Kind
    status: JobStatus
    rejections: tuple[str, ...] = ()  # static-check messages (no values)
    run: RunResult | None = None
    report: JobReport | None = None
    datasets: tuple[str, ...] = ()
    columns: tuple[tuple[str, str], ...] = ()  # (dataset, column) the job may have read
    policy_versions: Mapping[str, str] = field(default_factory=dict)
    dataset_versions: Mapping[str, str] = field(default_factory=dict)
    logs_withheld: bool = True
    reason: str | None = None  # why checking stopped (its limits), plain words
    scanned: Scanned | None = None  # what an SQL product's query reads (sandbox.run.metering)
    cpu_seconds: float | None = None  # every sandbox of the job together (the kernel's count)

    @property
    def exit_class(self) -> ExitClass | None:
        return self.run.execution.exit_class if self.run is not None else None


class Pipeline:
    """Runs submissions through checks, views, the sandbox and the output rules."""

    def __init__(
        self,
        *,
        views: ViewBuilder,
        dummy: DummyBuilder,
        backend: Backend,
        ledger: Ledger,
        fingerprints: FingerprintStore,
        entity_maps: EntityMaps,
        work_dir: Path,
        limits: Limits | None = None,
        sql_memory: str = "512MB",
        check_limits: CheckLimits | None = None,
        checkers: BoundedPool | None = None,
        grading: GradingTable | None = None,
    ) -> None:
        self._views = views
        self._grading = grading if grading is not None else default_grading()
        self._dummy = dummy
        self._ledger = ledger
        self._sandboxes = Sandboxes(backend, work_dir, limits or Limits(), sql_memory)
        self._check_limits = check_limits or CheckLimits()
        # The checker processes: the gateway's runtime passes its own (closed with the
        # app); standalone, the pipeline has a pool of its own.
        self._checkers = checkers if checkers is not None else BoundedPool(size=CHECKERS)
        self._config = JudgeConfig(
            fingerprints=fingerprints.root.parent,
            maps=entity_maps.cache_root,
            maps_secret=entity_maps.secret,
            ledger=ledger.path,
        )

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    def run(
        self,
        grant: Grant,
        kind: Kind,
        code: str,
        job_id: str,
        *,
        dummy: bool = False,
        commit: bool = True,
    ) -> JobOutcome:
        """Check, run and judge one submission under ``grant``.

        ``commit``: record a release's cells in the ledger now (standalone use);
        the gateway passes False and calls ``commit_release`` in its own
        transaction, after the scope check at release. The outcome's
        ``cpu_seconds`` are those of every sandbox the job took.
        """
        try:
            outcome = self._run(grant, kind, code, job_id, dummy=dummy, commit=commit)
        finally:
            cpu = self._sandboxes.take_cpu_seconds(job_id)
        return replace(outcome, cpu_seconds=cpu)

    def _run(
        self, grant: Grant, kind: Kind, code: str, job_id: str, *, dummy: bool, commit: bool
    ) -> JobOutcome:
        resolved = self._views.resolve(grant)
        policies = {s.dataset: p.policy for s, _, p in resolved}
        versions = {s.dataset: d for s, d, _ in resolved}
        outcome = JobOutcome(
            job_id,
            kind,
            Unchecked.REJECTED,
            policy_versions={s.dataset: p.version for s, _, p in resolved},
            dataset_versions={s.dataset: d.version for s, d, _ in resolved},
        )
        try:
            plan = (
                plan_sql(code, policies, self._sandboxes.sql_memory)
                if kind == "sql"
                else plan_python(code)
            )
        except SqlRejected as e:
            return replace(outcome, rejections=tuple(r.message for r in e.rejections))
        except ScreenRejected as e:
            return replace(outcome, rejections=tuple(str(f) for f in e.findings))
        if kind == "python":
            datasets = tuple(sorted(policies))
            columns = tuple(sorted((s.dataset, c) for s, _, _ in resolved for c in s.columns))
            settings = dict(plan.settings)
            if any(p.restricted_python for p in policies.values()):
                settings["guard"] = "restricted"
            plan = replace(plan, settings=settings, datasets=datasets, columns=columns)
        root = self._sandboxes.root(job_id)
        if root.exists():
            shutil.rmtree(root)
        outcome = replace(
            outcome, status=Unchecked.FAILED, datasets=plan.datasets, columns=plan.columns
        )
        if dummy:
            run = self._sandboxes.run(job_id, "job", plan, self._dummy.build(grant))
            return replace(outcome, status=Unchecked.DUMMY, run=run, logs_withheld=False)
        if kind == "python":
            return self._run_python(grant, plan, outcome, policies, versions, commit)
        view_set = self._views.build(grant)
        run = self._sandboxes.run(job_id, "job", plan, view_set)
        outcome = replace(outcome, run=run, scanned=scanned(view_set, plan.columns))
        if run.execution.exit_class != ExitClass.SUCCEEDED:
            return outcome
        result = collected(run, RESULT)
        if result is None:
            return outcome
        piece = SqlPiece(
            "result.csv", result, plan.query, plan.output_columns, plan.datasets, plan.columns
        )
        used = {d: policies[d] for d in plan.datasets}
        task = self._task(job_id, grant, used, versions, view_set, queries=(piece,))
        return self._decide(outcome, task, code, commit)

    def _run_python(
        self,
        grant: Grant,
        plan: Plan,
        outcome: JobOutcome,
        policies: Mapping[str, ExposurePolicy],
        versions: Mapping[str, DatasetVersion],
        commit: bool,
    ) -> JobOutcome:
        """Specifications from the dummy run, recomputed; the job's own files reviewed."""
        job_id = outcome.job_id
        spec_run = self._sandboxes.run(job_id, "dummy", plan, self._dummy.build(grant))
        outcome = replace(outcome, run=spec_run, logs_withheld=False)
        if spec_run.execution.exit_class != ExitClass.SUCCEEDED:
            return outcome
        pieces = Pieces()
        specs, own_files = read_specs(spec_run, pieces)
        view_set = self._views.build(grant)
        files = None
        if own_files:
            run = self._sandboxes.run(job_id, "job", plan, view_set)
            outcome = replace(outcome, run=run, logs_withheld=True)
            if run.execution.exit_class != ExitClass.SUCCEEDED:
                return outcome
            files = {f.name: f.path for f in run.collection.files}
            if run.collection.refused_total:
                pieces.uncollected()
        Recompute(self._sandboxes, job_id, policies, view_set).all(specs, pieces)
        task = self._task(
            job_id,
            grant,
            policies,
            versions,
            view_set,
            queries=tuple(pieces.queries),
            models=tuple(pieces.models),
            files=files,
            findings=tuple(pieces.findings),
        )
        return self._decide(outcome, task, "", commit)

    # -- checking and deciding -----------------------------------------------------

    def _task(
        self,
        job_id: str,
        grant: Grant,
        used: Mapping[str, ExposurePolicy],
        versions: Mapping[str, DatasetVersion],
        view_set: ViewSet,
        *,
        queries: tuple[SqlPiece, ...] = (),
        models: tuple[ModelPiece, ...] = (),
        files: Mapping[str, Path] | None = None,
        findings: tuple[Finding, ...] = (),
    ) -> JudgeTask:
        views = {v.dataset: ViewRef(v.path, v.sha256) for v in view_set.views if v.dataset in used}
        return JudgeTask(
            config=self._config,
            job_id=job_id,
            grant=grant,
            policies=dict(used),
            versions={d: versions[d] for d in used},
            views=views,
            sql=queries,
            models=models,
            files=files,
            findings=findings,
            grading=self._grading,
        )

    def _decide(self, outcome: JobOutcome, task: JudgeTask, query: str, commit: bool) -> JobOutcome:
        try:
            report = self._checkers.call(judge, task, limits=self._check_limits)
        except CheckLimitExceeded as e:
            finding = Finding("check_limits", Verdict.FAIL, "", e.reason)
            report = JobReport((), (finding,), Verdict.FAIL, Decision.BLOCKED)
            self._store(outcome.job_id, report)
            return replace(outcome, status=Decision.BLOCKED, report=report, reason=e.reason)
        if commit and report.decision == Decision.RELEASED:
            report = self.commit_release(report, outcome, task.grant, query)
        self._store(outcome.job_id, report)
        return replace(outcome, status=report.decision, report=report)

    def commit_release(
        self, report: JobReport, outcome: JobOutcome, grant: Grant, query: str
    ) -> JobReport:
        """Record a released job's cells in the ledger (checked again, atomically).

        Returns the report as committed: with the recorded ids, or blocked with
        the ledger's finding when a release made since checking now differs
        from one of its cells by fewer than k entities.
        """
        if not report.cells:
            return report
        try:
            ids = record_release(
                report,
                self._ledger,
                self.ledger_k(grant, outcome),
                job_id=outcome.job_id,
                grant_id=grant.grant_id,
                operator=grant.operator,
                query=query,
            )
        except CheckError:
            finding = Finding(
                "differencing",
                Verdict.FAIL,
                "",
                "the output now differs from a released cell by fewer than k entities",
            )
            return replace(
                report, findings=(*report.findings, finding), verdict=Verdict.FAIL,
                decision=Decision.BLOCKED,
            )  # fmt: skip
        return replace(report, ledger_ids=ids)

    def ledger_k(self, grant: Grant, outcome: JobOutcome) -> dict[str, int]:
        """The differencing threshold of each dataset a job read: its policy's k, raised to
        the highest security level the job touched in it (the grading table)."""
        used = {d: p for d, p in self._policies(grant).items() if d in outcome.datasets}
        return graded_ledger_k(used, outcome.columns or None, self._grading)

    def _policies(self, grant: Grant) -> dict[str, ExposurePolicy]:
        return {s.dataset: p.policy for s, _, p in self._views.resolve(grant)}

    def _store(self, job_id: str, report: JobReport) -> None:
        """Keep the checked outputs and the report beside the job, for review and release.

        ``outputs/`` holds the bytes that would be released (after suppression);
        ``report.json`` the findings and each output's SHA-256.
        """
        root = self._sandboxes.root(job_id)
        outputs = root / "outputs"
        outputs.mkdir(parents=True, exist_ok=True)
        for checked in report.outputs:
            write_atomic(outputs / checked.output.file, checked.content)
        body = json.dumps(report.to_dict(), ensure_ascii=False, indent=2).encode()
        write_atomic(root / "report.json", body)
