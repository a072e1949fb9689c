"""Stage 4 for a Python job's specifications: the trusted side computes them itself.

A Python job runs first on the dummy views. ``read_specs`` reads the
specifications its manifest lists there (``publish_query``: an SQL
product; ``publish_model``: a GLM over a query's rows, see
``sandbox.container.sdk.specs``) and tells whether the job also wrote files
of its own. ``Recompute`` then computes each specification on the real
views with our code: a query through the SQL-product path
(``sandbox.run.steps.plan_sql``), a model's query through the static checks of
model inputs and fitted by our runner (``sandbox/container/modelfit.py``),
each in a fresh sandbox. What comes out is gathered in ``Pieces`` for the
checker (``sandbox/judge/task.py``).

Invariants:
- A specification never depends on real data: ``read_specs`` is given the
  run on the dummy views, never one on real data.
- A specification the trusted side will not compute (refused by the static
  checks, a formula over columns its query does not select, a categorical
  term over values, entities that cannot be followed), or could not
  compute, is a FAIL finding: the job is blocked.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from sandbox.container.sdk.specs import ModelSpec, QuerySpec, SpecError, check_formula, parse_spec
from sandbox.container.sqlrun import RESULT
from sandbox.errors import EvidenceUnavailable, SqlRejected
from sandbox.intake.policy import ExposurePolicy
from sandbox.judge.outputs.python import MANIFEST
from sandbox.judge.rules import Finding, Verdict
from sandbox.judge.task import ModelPiece, SqlPiece
from sandbox.precheck.sql import check_sql
from sandbox.precheck.sql.evidence import rewrite_rows
from sandbox.run.backends.base import ExitClass, RunResult
from sandbox.run.steps import Plan, Sandboxes, collected, plan_sql
from sandbox.views.build import ViewSet

MODEL_RESULT = "model.json"
SPEC = "spec"  # the rule id of findings about a Python job's specifications
RECOMPUTE = "recompute"  # ... and about the trusted side's re-run of one
COLLECTION = "collection"  # ... and about files a run wrote that could not be collected

Spec = QuerySpec | ModelSpec


@dataclass
class Pieces:
    """A Python job's pieces, gathered for the checker."""

    queries: list[SqlPiece] = field(default_factory=list)
    models: list[ModelPiece] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def fail(self, rule: str, file: str, message: str) -> None:
        """A FAIL finding (a specification not computed, say): the job is blocked."""
        self.findings.append(Finding(rule, Verdict.FAIL, file, message))

    def uncollected(self) -> None:
        """A run wrote files that could not be collected: the job is blocked."""
        self.fail(
            COLLECTION,
            MANIFEST,
            "some files the job wrote could not be collected (too many, too large or not "
            "regular files)",
        )


def read_specs(run: RunResult, pieces: Pieces) -> tuple[list[Spec], bool]:
    """The specifications a dummy run published, and whether it wrote files of its own.

    An unreadable manifest or specification is a finding in ``pieces``.
    """
    if run.collection.refused_total:
        pieces.uncollected()
    specs: list[Spec] = []
    own_files = False
    raw = collected(run, MANIFEST)
    entries = _entries(raw.read_bytes()) if raw is not None else []
    if entries is None:
        pieces.fail(SPEC, MANIFEST, "the manifest cannot be read")
    for entry in entries or []:
        try:
            spec = parse_spec(entry) if isinstance(entry, dict) else None
        except SpecError as e:
            pieces.fail(SPEC, MANIFEST, str(e))
            continue
        if spec is None:
            own_files = True
        else:
            specs.append(spec)
    return specs, own_files


@dataclass(frozen=True)
class Recompute:
    """The trusted side's sandboxes for one job's specifications, on the real views."""

    sandboxes: Sandboxes
    job_id: str
    policies: Mapping[str, ExposurePolicy]
    view_set: ViewSet

    def all(self, specs: list[Spec], pieces: Pieces) -> None:
        """Compute every specification, in order, into ``pieces``."""
        for i, spec in enumerate(specs):
            if isinstance(spec, QuerySpec):
                self.query(i, spec, pieces)
            else:
                self.model(i, spec, pieces)

    def query(self, i: int, spec: QuerySpec, pieces: Pieces) -> None:
        try:
            plan = plan_sql(spec.sql, self.policies, self.sandboxes.sql_memory)
        except SqlRejected:
            pieces.fail(
                SPEC,
                spec.file,
                "the published query was refused by the static checks of SQL products",
            )
            return
        run = self.sandboxes.run(self.job_id, f"q{i}", plan, self.view_set)
        result = collected(run, RESULT)
        if run.execution.exit_class != ExitClass.SUCCEEDED or result is None:
            pieces.fail(
                RECOMPUTE, spec.file, "the published query failed when the trusted side ran it"
            )
            return
        pieces.queries.append(
            SqlPiece(
                spec.file, result, plan.query, plan.output_columns, plan.datasets, plan.columns
            )
        )

    def model(self, i: int, spec: ModelSpec, pieces: Pieces) -> None:
        policies = self.policies
        try:
            checked = check_sql(spec.sql, policies, row_level=True)
        except SqlRejected:
            pieces.fail(
                SPEC,
                spec.file,
                "the model's query was refused by the static checks of model inputs",
            )
            return
        formula = check_formula(spec.formula)
        if not set(formula.variables) <= set(checked.output_columns):
            pieces.fail(SPEC, spec.file, "the model names a variable its query does not select")
            return
        categorical = {f.variable for t in formula.terms for f in t if f.categorical}
        if any(checked.output_kinds.get(v, frozenset()) - {"dimension"} for v in categorical):
            pieces.fail(
                SPEC,
                spec.file,
                "a categorical term of the model is made from a column that is not a "
                "dimension: its levels would be values",
            )
            return
        try:
            rows = rewrite_rows(checked, {d: p.entity_column for d, p in policies.items()})
        except EvidenceUnavailable:
            pieces.fail(SPEC, spec.file, "the entities behind the model's rows cannot be followed")
            return
        settings: dict[str, object] = {
            "query": rows.sql,
            "entities": {d: list(c) for d, c in rows.entities.items()},
            "formula": spec.formula,
            "family": spec.family,
            "memory_limit": self.sandboxes.sql_memory,
            "threads": 1,
        }
        plan = Plan("model", settings, None, checked.views, checked.columns)
        run = self.sandboxes.run(self.job_id, f"m{i}", plan, self.view_set)
        result = collected(run, MODEL_RESULT)
        if run.execution.exit_class != ExitClass.SUCCEEDED or result is None:
            pieces.fail(RECOMPUTE, spec.file, "the model could not be fitted by the trusted side")
            return
        pieces.models.append(ModelPiece(spec, result, checked.views, checked.columns))


def _entries(raw: bytes) -> list[object] | None:
    """A manifest's entries as written (None when it cannot be read)."""
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    entries = document.get("outputs") if isinstance(document, dict) else None
    return list(entries) if isinstance(entries, list) else None
