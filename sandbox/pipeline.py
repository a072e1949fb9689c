"""The data flow of one job, stages 2 to 6, in one place.

``Pipeline.run`` takes a grant and a submission (one SQL SELECT, or a
Python ``main.py``) and returns a ``JobOutcome``:

2. static checks: the SQL checker against the exposure policies, or the
   Python screen (a lint); a rejected submission never runs;
3. the grant's authorized views (cached);
4. a fresh sandbox through the backend (SQL products run our evidence-
   carrying rewrite, with DuckDB locked, in the container too);
5. outputs read on the trusted side and checked by every rule, the
   differencing ledger included;
6. the decision: released, held or blocked, as a whole.

The gateway adds identity, scope decisions, persistence and audit around
this; the pipeline itself keeps no state but the ledger and its caches.
Dummy runs (schema-faithful synthetic views, full logs) use
``run(..., dummy=True)``; their outputs are not checked, since they hold
no real value.

Invariants:
- A failed job is data: its exit class is in the outcome, never raised.
- stdout and stderr of a real-data run are returned for the trusted side
  only (``JobOutcome.logs_withheld``); the gateway shows them for dummy runs.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from sandbox.backends.base import Backend, ExitClass, Limits, RunResult, RunSpec, execute
from sandbox.checking import (
    JobReport,
    check_job,
    read_python_outputs,
    thresholds_for,
    view_facts,
)
from sandbox.checks import Context, Finding, Output
from sandbox.checks.fingerprints import FingerprintIndex, FingerprintStore, build_for_pseudonyms
from sandbox.checks.sqlresult import entity_lists, read_sql_output
from sandbox.dummy import DummyBuilder
from sandbox.entitymap import EntityMaps
from sandbox.errors import CheckError, EvidenceUnavailable, ScreenRejected, SqlRejected
from sandbox.fsutil import write_atomic
from sandbox.ledger import Ledger
from sandbox.policy import ExposurePolicy, Visibility
from sandbox.registry import DatasetVersion
from sandbox.screen import check_python
from sandbox.sqlcheck import check_sql
from sandbox.sqlcheck.evidence import EvidenceQuery, rewrite
from sandbox.sqlrun import RESULT
from sandbox.views import Grant, ViewBuilder, ViewSet

Kind = Literal["sql", "python"]
SQL_RESULT_BYTES = 1024 * 1024 * 1024  # an SQL product's result with its evidence, at most


@dataclass(frozen=True)
class JobOutcome:
    """What became of one submission."""

    job_id: str
    kind: Kind
    status: str  # "rejected" | "failed" | "released" | "held" | "blocked" | "dummy"
    rejections: tuple[str, ...] = ()  # static-check messages (no values)
    run: RunResult | None = None
    report: JobReport | None = None
    datasets: tuple[str, ...] = ()
    columns: tuple[tuple[str, str], ...] = ()  # (dataset, column) the job may have read
    policy_versions: Mapping[str, str] = field(default_factory=dict)
    dataset_versions: Mapping[str, str] = field(default_factory=dict)
    logs_withheld: bool = True

    @property
    def exit_class(self) -> ExitClass | None:
        return self.run.execution.exit_class if self.run is not None else None


@dataclass(frozen=True)
class _Plan:
    """What to run: the job description, and what the job reads."""

    description: dict[str, object]
    code: str | None  # main.py of a Python job
    datasets: tuple[str, ...] = ()
    columns: tuple[tuple[str, str], ...] = ()
    query: EvidenceQuery | None = None
    output_columns: tuple[str, ...] = ()


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
    ) -> None:
        self._views = views
        self._dummy = dummy
        self._backend = backend
        self._ledger = ledger
        self._fingerprints = fingerprints
        self._maps = entity_maps
        self._work = work_dir
        self._limits = limits or Limits()
        self._sql_memory = sql_memory
        self._pseudonyms: dict[str, FingerprintIndex] = {}

    def run(
        self, grant: Grant, kind: Kind, code: str, job_id: str, *, dummy: bool = False
    ) -> JobOutcome:
        """Check, run and judge one submission under ``grant``."""
        resolved = self._views.resolve(grant)
        policies = {s.dataset: p.policy for s, _, p in resolved}
        versions = {s.dataset: d for s, d, _ in resolved}
        outcome = JobOutcome(
            job_id,
            kind,
            "rejected",
            policy_versions={s.dataset: p.version for s, _, p in resolved},
            dataset_versions={s.dataset: d.version for s, d, _ in resolved},
        )
        try:
            plan = self._plan_sql(code, policies) if kind == "sql" else self._plan_python(code)
        except SqlRejected as e:
            return replace(outcome, rejections=tuple(r.message for r in e.rejections))
        except ScreenRejected as e:
            return replace(outcome, rejections=tuple(str(f) for f in e.findings))
        if kind == "python":
            datasets = tuple(sorted(policies))
            columns = tuple(sorted((s.dataset, c) for s, _, _ in resolved for c in s.columns))
            if any(p.restricted_python for p in policies.values()):
                plan.description["guard"] = "restricted"
            plan = replace(plan, datasets=datasets, columns=columns)
        view_set = self._dummy.build(grant) if dummy else self._views.build(grant)
        run = self._execute(job_id, plan.description, plan.code, view_set)
        outcome = replace(
            outcome, status="failed", run=run, datasets=plan.datasets, columns=plan.columns
        )
        if dummy:
            return replace(outcome, status="dummy", logs_withheld=False)
        if run.execution.exit_class != ExitClass.SUCCEEDED:
            return outcome
        files = {f.name: f.path.read_bytes() for f in run.collection.files}
        job_findings: list[Finding] = []
        if kind == "sql":
            result = files.get(RESULT)
            if result is None:
                return outcome
            keys = None
            if plan.query is not None:
                keys = {
                    d: self._maps.ledger_keys(grant, versions[d], rows)
                    for d, rows in entity_lists(result, plan.query).items()
                }
            outputs = [read_sql_output(result, plan.query, plan.output_columns, keys)]
        else:
            outputs, job_findings = read_python_outputs(files)
        used = {d: policies[d] for d in plan.datasets}
        report = check_job(
            outputs,
            self._context(view_set, used, versions, outputs),
            job_findings=job_findings,
            ledger=self._ledger,
            ledger_k={d: p.k for d, p in used.items()},
            job_id=job_id,
            grant_id=grant.grant_id,
            operator=grant.operator,
            query=code if kind == "sql" else "",
        )
        self._store(job_id, report)
        return replace(outcome, status=report.decision, report=report)

    def _store(self, job_id: str, report: JobReport) -> None:
        """Keep the checked outputs and the report beside the job, for review and release.

        ``outputs/`` holds the bytes that would be released (after suppression);
        ``report.json`` the findings and each output's SHA-256.
        """
        root = self._work / "jobs" / job_id
        outputs = root / "outputs"
        outputs.mkdir(parents=True, exist_ok=True)
        for checked in report.outputs:
            write_atomic(outputs / checked.output.file, checked.content)
        body = json.dumps(report.to_dict(), ensure_ascii=False, indent=2).encode()
        write_atomic(root / "report.json", body)

    def _plan_sql(self, code: str, policies: Mapping[str, ExposurePolicy]) -> _Plan:
        checked = check_sql(code, policies)
        top_n = max([2, *(policies[d].dominance.n for d in checked.views)])
        query: EvidenceQuery | None
        try:
            query = rewrite(checked, {d: p.entity_column for d, p in policies.items()}, top_n)
        except EvidenceUnavailable:
            query = None  # held for review: no trusted evidence
        description: dict[str, object] = {
            "kind": "sql",
            "query": query.sql if query is not None else checked.sql,
            "memory_limit": self._sql_memory,
            "threads": 1,
        }
        return _Plan(
            description, None, checked.views, checked.columns, query, checked.output_columns
        )

    @staticmethod
    def _plan_python(code: str) -> _Plan:
        check_python(code)
        return _Plan({"kind": "python", "entry": "main.py"}, code)

    def _context(
        self,
        view_set: ViewSet,
        policies: Mapping[str, ExposurePolicy],
        versions: Mapping[str, DatasetVersion],
        outputs: list[Output],
    ) -> Context:
        paths = {v.dataset: v.path for v in view_set.views if v.dataset in policies}
        thresholds = thresholds_for(list(policies.values()))
        facts = view_facts(paths, policies, outputs, thresholds.k)
        index: FingerprintIndex | None = None
        for dataset, policy in policies.items():
            found = self._fingerprints.get(versions[dataset], policy)
            index = found if index is None else index.union(found)
        for view in view_set.views:
            if view.dataset not in policies:
                continue
            pseudonyms = self._pseudonym_index(view.path, view.sha256, policies[view.dataset])
            if pseudonyms is not None:
                index = pseudonyms if index is None else index.union(pseudonyms)
        return Context(
            thresholds=thresholds,
            datasets=tuple(sorted(policies)),
            views=facts,
            fingerprints=index,
        )

    def _pseudonym_index(
        self, path: Path, sha256: str, policy: ExposurePolicy
    ) -> FingerprintIndex | None:
        columns = [
            name
            for name, col in policy.columns.items()
            if name == policy.entity_column or col.visibility == Visibility.JOIN_KEY
        ]
        if sha256 not in self._pseudonyms:
            import pyarrow.parquet as pq

            present = set(pq.read_schema(path).names)
            wanted = [c for c in columns if c in present]
            if not wanted:
                return None
            self._pseudonyms[sha256] = build_for_pseudonyms(path, wanted)
        return self._pseudonyms[sha256]

    def _execute(
        self, job_id: str, description: dict[str, object], code: str | None, view_set: ViewSet
    ) -> RunResult:
        root = self._work / "jobs" / job_id
        if root.exists():
            shutil.rmtree(root)
        job_dir = root / "job"
        job_dir.mkdir(parents=True)
        (job_dir / "job.json").write_text(json.dumps(description), encoding="utf-8")
        if code is not None:
            (job_dir / "main.py").write_text(code, encoding="utf-8")
        for path in (root, job_dir):
            path.chmod(0o755)
        for child in job_dir.iterdir():
            child.chmod(0o644)
        limits = self._limits
        if description.get("kind") == "sql":
            # The result carries every row's entity list (about 35 bytes per entity,
            # compressed): our own query's output, not the analyst's, so the caps widen.
            limits = replace(
                limits,
                output_bytes=max(limits.output_bytes, SQL_RESULT_BYTES),
                output_file_bytes=max(limits.output_file_bytes, SQL_RESULT_BYTES),
                fsize_bytes=max(limits.fsize_bytes, SQL_RESULT_BYTES),
            )
        spec = RunSpec(job_id=job_id, job_dir=job_dir, data_dir=view_set.directory, limits=limits)
        try:
            return execute(self._backend, spec, root / "out")
        except OSError as e:
            raise CheckError(f"job {job_id} could not be run: {e}") from e
