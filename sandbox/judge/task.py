"""Stage 5 of the data flow for one job, as a task for a checker process.

The pipeline (``sandbox/pipeline.py``) runs the sandboxes and describes
what came out as a ``JudgeTask``: SQL results to split into tables and
evidence (an SQL product, or a Python job's ``publish_query`` recomputed by
us), models fitted by our own code, and the files a Python job wrote. The
task runs in a bounded checker process (``sandbox/judge/bounded.py``), where
``judge``, in this order, reads every output (``outputs/sql.py``,
``outputs/fitted.py``, ``outputs/python.py``), maps entities to ledger keys
(``ledger_keys.py``), computes the thresholds and trusted facts of the views
each output derives from (``facts.py``) and the identifier index
(``fingerprints``), runs every rule and the ledger's check and decides
(``verdict.py``), and returns the ``JobReport``. Nothing is recorded.

Invariants:
- Every argument is a path, a policy or plain data: the process holding the
  caches (fingerprints, pseudonyms, entity maps, the ledger's read side)
  is the checker, never the gateway.
- Facts per source: an output with lineage is judged against the datasets
  it derives from; a Python job's own files, whose lineage nobody can know,
  against every dataset of its grant (they are reviewed in any case).
- Grading per source (``sandbox/judge/grading.py``): an output's k is raised to the
  highest security level among the columns it derives from (every visible column of
  its datasets when its lineage is unknown), and an output touching a level the
  grading table never auto-releases is held for a reviewer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from sandbox.container.sdk.specs import ModelSpec
from sandbox.errors import CheckError
from sandbox.intake.policy import ExposurePolicy, GradingTable, Visibility, default_grading
from sandbox.intake.registry import DatasetVersion
from sandbox.judge.facts import thresholds_for, view_facts
from sandbox.judge.fingerprints import FingerprintIndex, FingerprintStore, build_for_pseudonyms
from sandbox.judge.grading import graded, graded_ledger_k
from sandbox.judge.ledger import Ledger
from sandbox.judge.ledger_keys import EntityMaps
from sandbox.judge.outputs.fitted import read_fitted
from sandbox.judge.outputs.python import read_python_outputs
from sandbox.judge.outputs.sql import entity_lists, read_sql_output
from sandbox.judge.rules import Context, Finding, Output, Verdict
from sandbox.judge.verdict import JobReport, check_job
from sandbox.precheck.sql.evidence import EvidenceQuery
from sandbox.views.build import Grant


@dataclass(frozen=True)
class JudgeConfig:
    """Where the checker finds its trusted state (all under the data directory)."""

    fingerprints: Path  # FingerprintStore root
    maps: Path  # EntityMaps cache root
    maps_secret: bytes
    ledger: Path


@dataclass(frozen=True)
class SqlPiece:
    """An SQL result (ours) to split into a table and its evidence."""

    file: str  # the name it is released under
    result: Path  # the Parquet result collected from the sandbox
    query: EvidenceQuery | None
    output_columns: tuple[str, ...]
    datasets: tuple[str, ...]  # the views it read
    columns: tuple[tuple[str, str], ...] = ()  # (view, column) its query references


@dataclass(frozen=True)
class ModelPiece:
    """A model fitted by our code from a query's rows."""

    spec: ModelSpec
    result: Path  # model.json collected from the fitting sandbox
    datasets: tuple[str, ...]
    columns: tuple[tuple[str, str], ...] = ()  # (view, column) its query references


@dataclass(frozen=True)
class ViewRef:
    path: Path
    sha256: str


@dataclass(frozen=True)
class JudgeTask:
    config: JudgeConfig
    job_id: str
    grant: Grant
    policies: Mapping[str, ExposurePolicy]  # the datasets whose rules apply
    versions: Mapping[str, DatasetVersion]
    views: Mapping[str, ViewRef]
    sql: tuple[SqlPiece, ...] = ()
    models: tuple[ModelPiece, ...] = ()
    files: Mapping[str, Path] | None = None  # a Python job's own files (real run)
    findings: tuple[Finding, ...] = field(default=())  # job-level, from the pipeline
    grading: GradingTable = field(default_factory=default_grading)


class _State:
    """What a checker process keeps between jobs, per configuration."""

    def __init__(self, config: JudgeConfig) -> None:
        self.fingerprints = FingerprintStore(config.fingerprints)
        self.maps = EntityMaps(config.maps, config.maps_secret)
        self.ledger = Ledger(config.ledger)
        self.pseudonyms: dict[str, FingerprintIndex | None] = {}
        self.indexes: dict[tuple[str, ...], FingerprintIndex | None] = {}


_STATES: dict[JudgeConfig, _State] = {}


def _state(config: JudgeConfig) -> _State:
    if config not in _STATES:
        _STATES[config] = _State(config)
    return _STATES[config]


def judge(task: JudgeTask) -> JobReport:
    """Read, check and decide one job's outputs (in a checker process)."""
    state = _state(task.config)
    outputs: list[Output] = []
    sources: list[tuple[str, ...]] = []
    # Per output, the (view, column) pairs it derives from; None when nobody can know.
    lineages: list[tuple[tuple[str, str], ...] | None] = []
    findings = list(task.findings)
    for piece in task.sql:
        keys = None
        result = piece.result.read_bytes()
        if piece.query is not None:
            keys = {
                d: state.maps.ledger_keys(task.grant, task.versions[d], rows)
                for d, rows in entity_lists(result, piece.query).items()
            }
        output = read_sql_output(result, piece.query, piece.output_columns, keys)
        outputs.append(replace(output, file=piece.file))
        sources.append(piece.datasets)
        lineages.append(piece.columns or None)
    for model in task.models:
        try:
            outputs.append(read_fitted(model.result.read_bytes(), model.spec))
        except CheckError:
            findings.append(
                Finding(
                    "recompute", Verdict.FAIL, model.spec.file,
                    "the fitted model's summary could not be read",
                )
            )  # fmt: skip
            continue
        sources.append(model.datasets)
        lineages.append(model.columns or None)
    if task.files is not None:
        contents = {name: path.read_bytes() for name, path in task.files.items()}
        own, own_findings = read_python_outputs(contents)
        findings += own_findings
        outputs += own
        sources += [tuple(sorted(task.policies))] * len(own)
        lineages += [None] * len(own)
    used = dict(task.policies)
    paths = {d: v.path for d, v in task.views.items() if d in used}
    every = [c for lineage in lineages if lineage is not None for c in lineage]
    job_columns = None if None in lineages or not lineages else every
    thresholds = graded(thresholds_for(list(used.values())), used, job_columns, task.grading)
    facts = view_facts(paths, used, outputs, thresholds.k)
    index = _index(state, task, tuple(sorted(used)))
    ctx = Context(
        thresholds=thresholds, datasets=tuple(sorted(used)), views=facts, fingerprints=index
    )
    contexts = [
        _for_source(ctx, source, used, lineage, task.grading)
        for source, lineage in zip(sources, lineages, strict=True)
    ]
    return check_job(
        outputs,
        ctx,
        job_findings=findings,
        ledger=state.ledger,
        ledger_k=graded_ledger_k(used, job_columns, task.grading),
        contexts=contexts,
    )


def _for_source(
    ctx: Context,
    source: tuple[str, ...],
    used: Mapping[str, ExposurePolicy],
    lineage: tuple[tuple[str, str], ...] | None = None,
    grading: GradingTable | None = None,
) -> Context:
    """The context of an output: the facts and rules of the datasets it derives from,
    graded by the highest security level among the columns it derives from."""
    datasets = tuple(d for d in source if d in used) or ctx.datasets
    policies = {d: used[d] for d in datasets}
    table = grading if grading is not None else default_grading()
    thresholds = graded(thresholds_for(list(policies.values())), policies, lineage, table)
    return replace(ctx, datasets=datasets, thresholds=thresholds)


def _index(state: _State, task: JudgeTask, datasets: tuple[str, ...]) -> FingerprintIndex | None:
    """Identifiers of the datasets and the grant's own pseudonyms, in one index (cached)."""
    key = tuple(
        f"{d}:{task.versions[d].version}:{task.views[d].sha256 if d in task.views else ''}"
        for d in datasets
    )
    if key in state.indexes:
        return state.indexes[key]
    index: FingerprintIndex | None = None
    for dataset in datasets:
        found = state.fingerprints.get(task.versions[dataset], task.policies[dataset])
        index = found if index is None else index.union(found)
    for dataset in datasets:
        view = task.views.get(dataset)
        if view is None:
            continue
        pseudonyms = _pseudonyms(state, view, task.policies[dataset])
        if pseudonyms is not None:
            index = pseudonyms if index is None else index.union(pseudonyms)
    if len(state.indexes) > 64:
        state.indexes.clear()
    state.indexes[key] = index
    return index


def _pseudonyms(state: _State, view: ViewRef, policy: ExposurePolicy) -> FingerprintIndex | None:
    if view.sha256 not in state.pseudonyms:
        import pyarrow.parquet as pq

        columns = [
            name
            for name, col in policy.columns.items()
            if name == policy.entity_column or col.visibility == Visibility.JOIN_KEY
        ]
        present = set(pq.read_schema(view.path).names)
        wanted = [c for c in columns if c in present]
        state.pseudonyms[view.sha256] = build_for_pseudonyms(view.path, wanted) if wanted else None
    return state.pseudonyms[view.sha256]
