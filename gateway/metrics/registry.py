"""One app's metrics: a registry of its own, and what is observed as it happens.

``Metrics`` is built in ``create_app`` and kept on ``app.state.metrics``. It
owns a ``CollectorRegistry`` holding:

- ``dsr_refusals_total{status, reason}``: every 4xx the gateway answered
  (REST and console; ``gateway.refusals.note`` calls :meth:`Metrics.refused`),
  by status and error class;
- ``dsr_job_run_seconds{kind}``, ``dsr_job_check_seconds{kind}``,
  ``dsr_job_release_seconds{state}``: the job worker's stages
  (``gateway.jobs.worker`` calls :class:`JobStages`);
- the store's gauges, read at scrape time (``gateway.metrics.collector``), the
  sandbox's running containers (``gateway.metrics.containers``) and the
  process collector (``dsr_process_*``: CPU, memory, open files; read from
  ``/proc``, cheap).

Invariants:
- Nothing is registered on the process-wide default registry: two apps in one
  process share no metric.
- Every label value comes from a bounded set: job kinds and states (the
  store's enums), HTTP status codes, the class names of the gateway's and its
  frameworks' errors (``other`` for anything else); never a path, an id or a
  caller's text.
- Every name starts with ``dsr_``.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.process_collector import ProcessCollector
from sqlalchemy import Engine

from gateway.metrics.collector import StoreCollector
from gateway.metrics.containers import EngineContainers
from gateway.store.lifecycle import Clock
from sandbox.pipeline import JobOutcome
from sandbox.run.backends.base import Backend

NAMESPACE = "dsr"
# Seconds. A run: a quick SQL query to the sandbox's wall limit (default one hour).
RUN_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
# Views, static and output checks: bounded by check_seconds (default 300).
CHECK_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
# The release step: a scope check, the ledger's commit and a few writes.
RELEASE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Error classes from these packages name a refusal's reason; any other is "other".
REASON_PACKAGES = frozenset({"gateway", "sandbox", "fastapi", "starlette", "pydantic"})
OTHER = "other"


class JobStages:
    """The job worker's stage durations, observed as each stage ends.

    - run: the job's sandbox run (its wall seconds, as the backend measured them);
    - check: the rest of the pipeline (views, static and output checks, the
      recomputation of a Python job's tables), so run + check is the pipeline;
    - release: deciding and recording the end (the scope check at release, the
      ledger's commit, the outcome row, the final state), by the state it ended in.
      Its count is the worker's throughput; a reviewer's later release of a held
      job is the review's, not a worker stage, and is not observed here.

    A job whose pipeline raised (it ends ``internal_error``) is observed in none.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._run = Histogram(
            "dsr_job_run_seconds",
            "Wall seconds of a job's sandbox run.",
            ["kind"],
            buckets=RUN_BUCKETS,
            registry=registry,
        )
        self._check = Histogram(
            "dsr_job_check_seconds",
            "Seconds of a job's pipeline beyond its sandbox run: views, static and output checks.",
            ["kind"],
            buckets=CHECK_BUCKETS,
            registry=registry,
        )
        self._release = Histogram(
            "dsr_job_release_seconds",
            "Seconds deciding and recording a job's end (release scope check, ledger, outcome), "
            "by the state it ended in.",
            ["state"],
            buckets=RELEASE_BUCKETS,
            registry=registry,
        )

    def ran(self, kind: str, outcome: JobOutcome, pipeline_seconds: float) -> None:
        """The pipeline returned ``outcome`` after ``pipeline_seconds``."""
        run_seconds = outcome.run.execution.wall_seconds if outcome.run is not None else 0.0
        if outcome.run is not None:
            self._run.labels(kind=kind).observe(run_seconds)
        self._check.labels(kind=kind).observe(max(0.0, pipeline_seconds - run_seconds))

    def ended(self, state: str, seconds: float) -> None:
        """The job's end was decided and recorded, in ``state``, in ``seconds``."""
        self._release.labels(state=state).observe(seconds)


class Metrics:
    """One app's registry and the metrics observed into it (see the module docstring)."""

    def __init__(self, engine: Engine, clock: Clock, backend: Callable[[], Backend | None]) -> None:
        self.registry = CollectorRegistry()
        self.stages = JobStages(self.registry)
        self._refusals = Counter(
            "dsr_refusals",
            "Requests the gateway refused with a 4xx, by status and error class.",
            ["status", "reason"],
            registry=self.registry,
        )
        self.registry.register(StoreCollector(engine, clock))
        self.registry.register(EngineContainers(backend))
        ProcessCollector(namespace=NAMESPACE, registry=self.registry)

    def refused(self, status: int, error: object) -> None:
        """Count one answered refusal (a 4xx; other statuses are not refusals)."""
        if 400 <= status < 500:
            self._refusals.labels(status=str(status), reason=reason(error)).inc()

    def scrape(self) -> bytes:
        """Every metric in the Prometheus text format (reads the store once)."""
        return generate_latest(self.registry)


def reason(error: object) -> str:
    """A refusal's reason label: its error class's name, when the class is the gateway's or
    its frameworks' (a bounded set); ``other`` otherwise (a plain message, a foreign class)."""
    if not isinstance(error, BaseException):
        return OTHER
    kind = type(error)
    if kind.__module__.split(".")[0] not in REASON_PACKAGES:
        return OTHER
    return kind.__name__


def build_metrics(app: FastAPI) -> Metrics:
    """The app's metrics over its store and clock; the sandbox's backend is looked up at
    each scrape (a test or ``gateway.runtime`` may set ``app.state.runtime`` later)."""

    def backend() -> Backend | None:
        runtime = getattr(app.state, "runtime", None)
        return runtime.backend if runtime is not None else None

    return Metrics(app.state.engine, app.state.clock, backend)


def metrics_of(app: FastAPI) -> Metrics:
    metrics: Metrics = app.state.metrics
    return metrics
