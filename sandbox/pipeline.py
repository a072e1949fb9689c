"""The data flow of one job, stages 2 to 6, in one place.

``Pipeline.run`` takes a grant and a submission (one SQL SELECT, or a
Python ``main.py``) and returns a ``JobOutcome``:

2. static checks: the SQL checker against the exposure policies, or the
   Python screen (a lint); a rejected submission never runs;
3. the grant's authorized views (cached), or their dummy twins;
4. fresh sandboxes through the backend (SQL runs our evidence-carrying
   rewrite, with DuckDB locked, in the container too);
5. outputs read on the trusted side and checked by every rule and the
   differencing ledger's check, in a bounded checker process
   (``sandbox/bounded.py``, ``sandbox/judge.py``);
6. the decision: released, held or blocked, as a whole.

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
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from sandbox.backends.base import Backend, ExitClass, Limits, RunResult, RunSpec, execute
from sandbox.bounded import CheckLimitExceeded, shared_pool
from sandbox.bounded import Limits as CheckLimits
from sandbox.checking import MANIFEST, JobReport, record_release
from sandbox.checks import Finding, Verdict
from sandbox.checks.fingerprints import FingerprintStore
from sandbox.dummy import DummyBuilder
from sandbox.entitymap import EntityMaps
from sandbox.errors import CheckError, EvidenceUnavailable, ScreenRejected, SqlRejected
from sandbox.fsutil import write_atomic
from sandbox.judge import JudgeConfig, JudgeTask, ModelPiece, SqlPiece, ViewRef, judge
from sandbox.ledger import Ledger
from sandbox.policy import ExposurePolicy
from sandbox.screen import check_python
from sandbox.sdk.specs import ModelSpec, QuerySpec, SpecError, check_formula, parse_spec
from sandbox.sqlcheck import check_sql
from sandbox.sqlcheck.evidence import EvidenceQuery, rewrite, rewrite_rows
from sandbox.sqlrun import RESULT
from sandbox.views import Grant, ViewBuilder, ViewSet

Kind = Literal["sql", "python"]
SQL_RESULT_BYTES = 1024 * 1024 * 1024  # an SQL product's result with its evidence, at most
MODEL_RESULT = "model.json"
SPEC = "spec"  # the rule id of findings about a Python job's specifications
RECOMPUTE = "recompute"  # ... and about the trusted side's re-run of one


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
    reason: str | None = None  # why checking stopped (its limits), plain words

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


@dataclass
class _Judged:
    """A Python job's pieces, gathered for the checker."""

    queries: list[SqlPiece] = field(default_factory=list)
    models: list[ModelPiece] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def fail(self, rule: str, file: str, message: str) -> None:
        """A specification the trusted side will not compute: the job is blocked."""
        self.findings.append(Finding(rule, Verdict.FAIL, file, message))


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
    ) -> None:
        self._views = views
        self._dummy = dummy
        self._backend = backend
        self._ledger = ledger
        self._work = work_dir
        self._limits = limits or Limits()
        self._sql_memory = sql_memory
        self._check_limits = check_limits or CheckLimits()
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
        transaction, after the scope check at release.
        """
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
        root = self._work / "jobs" / job_id
        if root.exists():
            shutil.rmtree(root)
        outcome = replace(outcome, status="failed", datasets=plan.datasets, columns=plan.columns)
        if dummy:
            run = self._execute(job_id, "job", plan, self._dummy.build(grant))
            return replace(outcome, status="dummy", run=run, logs_withheld=False)
        if kind == "python":
            return self._run_python(grant, plan, job_id, outcome, policies, versions, commit)
        view_set = self._views.build(grant)
        run = self._execute(job_id, "job", plan, view_set)
        outcome = replace(outcome, run=run)
        if run.execution.exit_class != ExitClass.SUCCEEDED:
            return outcome
        result = _collected(run, RESULT)
        if result is None:
            return outcome
        piece = SqlPiece("result.csv", result, plan.query, plan.output_columns, plan.datasets)
        used = {d: policies[d] for d in plan.datasets}
        task = self._task(job_id, grant, used, versions, view_set, sql=(piece,))
        return self._decide(outcome, task, code, commit)

    # -- Python jobs: specifications recomputed, the job's own files reviewed ----------

    def _run_python(
        self,
        grant: Grant,
        plan: _Plan,
        job_id: str,
        outcome: JobOutcome,
        policies: Mapping[str, ExposurePolicy],
        versions: Mapping[str, Any],
        commit: bool,
    ) -> JobOutcome:
        spec_run = self._execute(job_id, "dummy", plan, self._dummy.build(grant))
        outcome = replace(outcome, run=spec_run, logs_withheld=False)
        if spec_run.execution.exit_class != ExitClass.SUCCEEDED:
            return outcome
        judged = _Judged()
        if spec_run.collection.refused_total:
            judged.findings.append(_uncollected())
        specs: list[QuerySpec | ModelSpec] = []
        own_files = False
        raw = _collected(spec_run, MANIFEST)
        entries = _entries(raw.read_bytes()) if raw is not None else []
        if entries is None:
            judged.fail(SPEC, MANIFEST, "the manifest cannot be read")
        for entry in entries or []:
            try:
                spec = parse_spec(entry) if isinstance(entry, dict) else None
            except SpecError as e:
                judged.fail(SPEC, MANIFEST, str(e))
                continue
            if spec is None:
                own_files = True
            else:
                specs.append(spec)
        view_set = self._views.build(grant)
        files = None
        if own_files:
            run = self._execute(job_id, "job", plan, view_set)
            outcome = replace(outcome, run=run, logs_withheld=True)
            if run.execution.exit_class != ExitClass.SUCCEEDED:
                return outcome
            files = {f.name: f.path for f in run.collection.files}
            if run.collection.refused_total:
                judged.findings.append(_uncollected())
        for i, spec in enumerate(specs):
            if isinstance(spec, QuerySpec):
                self._recompute_query(job_id, i, spec, policies, view_set, judged)
            else:
                self._recompute_model(job_id, i, spec, policies, view_set, judged)
        used = dict(policies)
        task = self._task(
            job_id,
            grant,
            used,
            versions,
            view_set,
            sql=tuple(judged.queries),
            models=tuple(judged.models),
            files=files,
            findings=tuple(judged.findings),
        )
        return self._decide(outcome, task, "", commit)

    def _recompute_query(
        self,
        job_id: str,
        i: int,
        spec: QuerySpec,
        policies: Mapping[str, ExposurePolicy],
        view_set: ViewSet,
        judged: _Judged,
    ) -> None:
        try:
            plan = self._plan_sql(spec.sql, policies)
        except SqlRejected:
            judged.fail(
                SPEC,
                spec.file,
                "the published query was refused by the static checks of SQL products",
            )
            return
        run = self._execute(job_id, f"q{i}", plan, view_set)
        result = _collected(run, RESULT)
        if run.execution.exit_class != ExitClass.SUCCEEDED or result is None:
            judged.fail(
                RECOMPUTE, spec.file, "the published query failed when the trusted side ran it"
            )
            return
        judged.queries.append(
            SqlPiece(spec.file, result, plan.query, plan.output_columns, plan.datasets)
        )

    def _recompute_model(
        self,
        job_id: str,
        i: int,
        spec: ModelSpec,
        policies: Mapping[str, ExposurePolicy],
        view_set: ViewSet,
        judged: _Judged,
    ) -> None:
        try:
            checked = check_sql(spec.sql, policies, row_level=True)
        except SqlRejected:
            judged.fail(
                SPEC,
                spec.file,
                "the model's query was refused by the static checks of model inputs",
            )
            return
        formula = check_formula(spec.formula)
        if not set(formula.variables) <= set(checked.output_columns):
            judged.fail(SPEC, spec.file, "the model names a variable its query does not select")
            return
        categorical = {f.variable for t in formula.terms for f in t if f.categorical}
        if any(checked.output_kinds.get(v, frozenset()) - {"dimension"} for v in categorical):
            judged.fail(
                SPEC,
                spec.file,
                "a categorical term of the model is made from a column that is not a "
                "dimension: its levels would be values",
            )
            return
        try:
            rows = rewrite_rows(checked, {d: p.entity_column for d, p in policies.items()})
        except EvidenceUnavailable:
            judged.fail(SPEC, spec.file, "the entities behind the model's rows cannot be followed")
            return
        description: dict[str, object] = {
            "kind": "model",
            "query": rows.sql,
            "entities": {d: list(c) for d, c in rows.entities.items()},
            "formula": spec.formula,
            "family": spec.family,
            "memory_limit": self._sql_memory,
            "threads": 1,
        }
        plan = _Plan(description, None, checked.views, checked.columns)
        run = self._execute(job_id, f"m{i}", plan, view_set)
        result = _collected(run, MODEL_RESULT)
        if run.execution.exit_class != ExitClass.SUCCEEDED or result is None:
            judged.fail(RECOMPUTE, spec.file, "the model could not be fitted by the trusted side")
            return
        judged.models.append(ModelPiece(spec, result, checked.views))

    # -- checking and deciding -----------------------------------------------------

    def _task(
        self,
        job_id: str,
        grant: Grant,
        used: Mapping[str, ExposurePolicy],
        versions: Mapping[str, Any],
        view_set: ViewSet,
        **pieces: Any,
    ) -> JudgeTask:
        views = {v.dataset: ViewRef(v.path, v.sha256) for v in view_set.views if v.dataset in used}
        return JudgeTask(
            config=self._config,
            job_id=job_id,
            grant=grant,
            policies=dict(used),
            versions={d: versions[d] for d in used},
            views=views,
            **pieces,
        )

    def _decide(self, outcome: JobOutcome, task: JudgeTask, query: str, commit: bool) -> JobOutcome:
        try:
            report = shared_pool().call(judge, task, limits=self._check_limits)
        except CheckLimitExceeded as e:
            finding = Finding("check_limits", Verdict.FAIL, "", e.reason)
            report = JobReport((), (finding,), Verdict.FAIL, "blocked")
            self._store(outcome.job_id, report)
            return replace(outcome, status="blocked", report=report, reason=e.reason)
        if commit and report.decision == "released":
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
        k = {d: p.k for d, p in self._policies(grant).items() if d in outcome.datasets}
        try:
            ids = record_release(
                report,
                self._ledger,
                k,
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
                decision="blocked",
            )  # fmt: skip
        return replace(report, ledger_ids=ids)

    def _policies(self, grant: Grant) -> dict[str, ExposurePolicy]:
        return {s.dataset: p.policy for s, _, p in self._views.resolve(grant)}

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

    def _execute(self, job_id: str, step: str, plan: _Plan, view_set: ViewSet) -> RunResult:
        """One sandbox of the job (``step``: job, dummy, q<i>, m<i>), under ``jobs/<id>/<step>``."""
        root = self._work / "jobs" / job_id
        base = root / step if step != "job" else root
        job_dir = base / "job"
        if job_dir.exists():
            shutil.rmtree(job_dir)
        job_dir.mkdir(parents=True)
        (job_dir / "job.json").write_text(json.dumps(plan.description), encoding="utf-8")
        if plan.code is not None:
            (job_dir / "main.py").write_text(plan.code, encoding="utf-8")
        for path in (root, base, job_dir):
            path.chmod(0o755)
        for child in job_dir.iterdir():
            child.chmod(0o644)
        limits = self._limits
        if plan.description.get("kind") in ("sql", "model"):
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
            return execute(self._backend, spec, out)
        except OSError as e:
            raise CheckError(f"job {job_id} could not be run: {e}") from e


def _uncollected() -> Finding:
    return Finding(
        "collection",
        Verdict.FAIL,
        MANIFEST,
        "some files the job wrote could not be collected (too many, too large or not "
        "regular files)",
    )


def _collected(run: RunResult, name: str) -> Path | None:
    for f in run.collection.files:
        if f.name == name:
            return f.path
    return None


def _entries(raw: bytes) -> list[object] | None:
    """A manifest's entries as written (None when it cannot be read)."""
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    entries = document.get("outputs") if isinstance(document, dict) else None
    return list(entries) if isinstance(entries, list) else None
