"""The worker pool: queued jobs through ``Pipeline.run``, outcomes recorded.

A few threads (``concurrency``, default 2) each claim a queued job
(``queued -> running``, a conditional update, so no job is taken twice, also
across processes on PostgreSQL), run it through the pipeline, record
``job.run`` (``running -> checking``) and then the outcome row, the
``verdict`` and the final state in one transaction. A released job's cells
enter the differencing ledger inside that transaction, after the scope
check at release (``Pipeline.commit_release``): a job refused there, or
whose cells now differ from a release made meanwhile, records nothing and
ends ``refused`` (outcome ``scope_denied_at_release`` or ``ledger_refused``).
How a run's end is recorded (state, audit details, kept cells) is
``gateway.jobs.endings``'s.

Fair scheduling: one operator cannot stall the others by flooding the queue
with slow jobs. ``claim`` takes the next job by operator, not by age:

1. operators with ``max_running_per_operator`` jobs running or checking
   (default 1) are skipped, even when a worker is idle;
2. among the others, whose turn it is: the operator whose most recent job
   start is oldest (one who never ran goes first), ties by the oldest queued
   job, then by name. Starting a job sends its operator to the back, so
   operators take turns (round-robin);
3. that operator's oldest queued job (``FOR UPDATE SKIP LOCKED``).

The order is computed from the jobs table in the claiming transaction, and
claims are serialised by a lock of their own (PostgreSQL: an advisory
transaction lock; SQLite: the write lock every transaction holds), so the
cap holds across worker processes too. The queue side of fairness is at
submission: ``max_queued_per_operator`` jobs waiting per operator, a 429
beyond (``gateway.jobs.service.submit``). Dummy runs are jobs like any other.

Start-up reconciles what a crash left: jobs found ``running`` or
``checking`` are re-queued once and failed (``interrupted``) the second
time; every sandbox the backend still holds is removed (``reconcile``).
Reconciling assumes this is the only worker of the store: run one worker
process per store.

Invariants:
- No operator has more than ``max_running_per_operator`` jobs running or
  checking at once (jobs re-queued at start-up start again under the cap).
- A failed job (non-zero exit, a timeout, a static rejection, even an
  exception in the pipeline) ends in a state with an outcome code; the
  worker thread goes on.
- Real-run logs are never stored; logs of runs on dummy views are.
- The cells of a held or blocked SQL product are kept beside its outputs
  (``cells.json``, trusted side only) for the ledger at approval.
- Time comes from the worker's clock (``clock``; the app's, ``app_clock``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy import Connection, Engine

from gateway.audit import append
from gateway.jobs.endings import final_state, run_detail, save_cells, verdict_detail
from gateway.jobs.errors import InvalidTransition, NotConfigured
from gateway.jobs.lineage import GrantResolver, release_scope
from gateway.jobs.model import JOB, Job, Outcome, State, get_job, list_jobs, transition
from gateway.jobs.outcomes import outcome_values, record_outcome
from gateway.jobs.service import SYSTEM
from gateway.metrics.registry import JobStages
from gateway.scope.policy import ScopePolicy
from gateway.store.engine import serialise_writers
from gateway.store.lifecycle import Clock, system_clock
from gateway.store.tables import jobs
from sandbox.judge.bounded import BoundedPool
from sandbox.judge.ledger import Ledger
from sandbox.pipeline import JobOutcome, Pipeline
from sandbox.run.backends.base import Backend
from sandbox.views.build import Grant, ViewBuilder

log = logging.getLogger("dsr.gateway.jobs")

MAX_ATTEMPTS = 2  # a job left running by a restart is re-queued once
CLAIM_LOCK = "dsr.jobs.claim"  # serialises claims, so the running cap holds across processes
ACTIVE = (State.RUNNING.value, State.CHECKING.value)  # what counts against the running cap


@dataclass(frozen=True)
class JobRuntime:
    """What the gateway needs of the sandbox: the pipeline, and the parts of it that
    review and start-up use directly (policies, the ledger, the backend, the work dir)."""

    pipeline: Pipeline
    views: ViewBuilder
    ledger: Ledger
    backend: Backend
    work_dir: Path
    checkers: BoundedPool | None = None  # the pipeline's checker processes; closed with the app

    def job_root(self, job_id: str) -> Path:
        return self.work_dir / "jobs" / job_id


@dataclass(frozen=True)
class Reconciled:
    requeued: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    removed_sandboxes: tuple[str, ...] = field(default=())


class JobWorker:
    """A pool of threads running queued jobs. ``start`` reconciles, then runs; ``stop`` waits."""

    def __init__(
        self,
        engine: Engine,
        runtime: JobRuntime,
        resolver: GrantResolver,
        *,
        concurrency: int = 2,
        poll_seconds: float = 1.0,
        scope: Callable[[], ScopePolicy] | None = None,
        max_running_per_operator: int = 1,
        clock: Clock = system_clock,
        stages: JobStages | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if max_running_per_operator < 1:
            raise ValueError("max_running_per_operator must be at least 1")
        self._max_running = max_running_per_operator
        self._clock = clock
        self._stages = stages  # the app's stage durations (gateway.metrics)
        self._scope = scope  # the release-time scope check (none: tests of the pipeline alone)
        self._engine = engine
        self._runtime = runtime
        self._resolve = resolver
        self._concurrency = concurrency
        self._poll = poll_seconds
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def start(self) -> Reconciled:
        """Reconcile what a previous process left, then start the threads."""
        if self.running:
            return Reconciled()
        reconciled = self.reconcile()
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._loop, name=f"dsr-job-worker-{i}", daemon=True)
            for i in range(self._concurrency)
        ]
        for thread in self._threads:
            thread.start()
        return reconciled

    def stop(self, timeout: float | None = None) -> None:
        """Stop taking jobs and wait for the running ones to finish."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    def wake(self) -> None:
        """A job was queued: look now rather than at the next poll."""
        self._wake.set()

    def reconcile(self) -> Reconciled:
        """Jobs left running or checking: re-queued once, then failed; stray sandboxes removed."""
        requeued, failed = [], []
        with self._engine.begin() as conn:
            for job in list_jobs(conn, states=frozenset({State.RUNNING, State.CHECKING})):
                if job.attempts < MAX_ATTEMPTS:
                    self._move(conn, job.id, State.QUEUED, Outcome.REQUEUED)
                    requeued.append(job.id)
                else:
                    self._move(conn, job.id, State.FAILED, Outcome.INTERRUPTED)
                    failed.append(job.id)
        removed = self._remove_orphans()
        if requeued or failed or removed:
            log.warning(
                "reconciled: %d re-queued, %d failed, %d sandboxes removed",
                len(requeued),
                len(failed),
                len(removed),
            )
        return Reconciled(tuple(requeued), tuple(failed), tuple(removed))

    def _remove_orphans(self) -> list[str]:
        """Remove the sandboxes of this store's jobs (none runs yet); an engine shared
        with other stores or tools keeps theirs, also those made while this runs."""
        backend = self._runtime.backend
        present = backend.sandboxes()
        if not present:
            return []
        with self._engine.connect() as conn:
            ours = {
                str(r[0]) for r in conn.execute(sa.select(jobs.c.id).where(jobs.c.id.in_(present)))
            }
        return backend.reconcile(only=ours) if ours else []

    # -- one job ------------------------------------------------------------------

    def claim(self) -> Job | None:
        """Take the next job in fair order (``queued -> running``; see the module
        docstring), or None when no operator with queued jobs is under the cap."""
        for _ in range(5):
            with self._engine.begin() as conn:
                serialise_writers(conn, CLAIM_LOCK)
                job_id = None
                for operator in turns(conn, self._max_running):
                    job_id = conn.execute(
                        sa.select(jobs.c.id)
                        .where(jobs.c.operator == operator, jobs.c.state == State.QUEUED.value)
                        .order_by(jobs.c.submitted_at, jobs.c.id)
                        .limit(1)
                        .with_for_update(skip_locked=True)
                    ).scalar()
                    if job_id is not None:
                        break
                if job_id is None:
                    return None
                try:
                    return self._move(conn, str(job_id), State.RUNNING, Outcome.STARTED)
                except InvalidTransition:
                    continue  # cancelled meanwhile
        return None

    def run_one(self) -> Job | None:
        """Claim and run one job to its end (for tests and the loop); the job as it ended."""
        job = self.claim()
        if job is None:
            return None
        try:
            self.process(job)
        except Exception:  # never lose the thread; the job must still end
            log.exception("job %s: recording its outcome failed", job.id)
            self._fail(job, Outcome.INTERNAL_ERROR)
        with self._engine.connect() as conn:
            return get_job(conn, job.id)

    def process(self, job: Job) -> None:
        """Run a claimed (``running``) job through the pipeline and record how it ended."""
        try:
            with self._engine.begin() as conn:
                grant = self._resolve(conn, job.grant_id)
        except Exception as e:
            log.info("job %s: grant %s cannot be used: %s", job.id, job.grant_id, e)
            self._fail(job, Outcome.GRANT_UNAVAILABLE)
            return
        started = time.perf_counter()
        try:
            outcome = self._runtime.pipeline.run(
                grant,
                job.kind,  # type: ignore[arg-type]  # "sql" | "python", checked at submission
                job.code,
                job.id,
                dummy=job.dummy,
                commit=False,
            )
        except Exception:
            log.exception("job %s could not be run", job.id)
            self._fail(job, Outcome.INTERNAL_ERROR)
            return
        if self._stages is not None:
            self._stages.ran(job.kind, outcome, time.perf_counter() - started)
        state, code = final_state(outcome)
        if state in (State.HELD, State.BLOCKED) and outcome.report and outcome.report.cells:
            save_cells(
                self._runtime.job_root(job.id), outcome.report, self._ledger_k(grant, outcome),
                grant.grant_id,
            )  # fmt: skip
        with self._engine.begin() as conn:
            self._move(conn, job.id, State.CHECKING, Outcome.RAN)
            if outcome.run is not None:
                append(
                    conn,
                    "job.run",
                    SYSTEM,
                    grant_id=job.grant_id,
                    datasets=outcome.datasets or job.datasets,
                    detail=run_detail(job, outcome),
                )
        ending = time.perf_counter()
        with self._engine.begin() as conn:
            if (
                state == State.RELEASED
                and self._scope is not None
                and not release_scope(conn, self._scope(), self._runtime.views, job, grant, SYSTEM)
            ):
                state, code = State.REFUSED, Outcome.SCOPE_DENIED
            if state == State.RELEASED and outcome.report is not None:
                # The ledger records the cells now, in its own transaction, just before
                # this one commits the release: a refusal above records nothing.
                report = self._runtime.pipeline.commit_release(
                    outcome.report, outcome, grant, job.code if job.kind == "sql" else ""
                )
                if report.decision != "released":  # the ledger refused the cells
                    state, code = State.REFUSED, Outcome.LEDGER_REFUSED
                outcome = replace(outcome, status=report.decision, report=report)
            values = outcome_values(outcome)
            record_outcome(conn, job.id, values, self._clock)
            if outcome.report is not None:
                append(
                    conn,
                    "verdict",
                    SYSTEM,
                    grant_id=job.grant_id,
                    datasets=outcome.datasets or job.datasets,
                    detail=verdict_detail(job, outcome, values),
                )
            self._move(conn, job.id, state, code)
        if self._stages is not None:
            self._stages.ended(state.value, time.perf_counter() - ending)

    def _move(self, conn: Connection, job_id: str, to: State, code: Outcome) -> Job:
        return transition(conn, job_id, to, actor=SYSTEM, outcome=code, clock=self._clock)

    def _ledger_k(self, grant: Grant, outcome: JobOutcome) -> dict[str, int]:
        """The differencing k a held job's release is checked with later: the pipeline's,
        raised by the grading table as at commit (a reviewer's approval is no weaker)."""
        return self._runtime.pipeline.ledger_k(grant, outcome)

    def _fail(self, job: Job, code: Outcome) -> None:
        with self._engine.begin() as conn:
            current = get_job(conn, job.id)
            if JOB.allows(current.state, State.FAILED):
                self._move(conn, job.id, State.FAILED, code)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.run_one()
            except Exception:  # the store is away: wait and try again
                log.exception("the job worker could not take a job")
                job = None
            if job is None:
                self._wake.wait(self._poll)
                self._wake.clear()


def turns(conn: Connection, max_running: int) -> list[str]:
    """Operators with a queued job and fewer than ``max_running`` jobs running or
    checking, whose turn first: the oldest most recent start (never started: first),
    then the oldest queued job, then the name."""
    waiting = sa.select(jobs.c.operator).where(jobs.c.state == State.QUEUED.value)
    active = sa.func.sum(sa.case((jobs.c.state.in_(ACTIVE), 1), else_=0))
    last_start = sa.func.max(jobs.c.started_at)
    oldest_queued = sa.func.min(
        sa.case((jobs.c.state == State.QUEUED.value, jobs.c.submitted_at), else_=None)
    )
    query = (
        sa.select(jobs.c.operator)
        .where(jobs.c.operator.in_(waiting))
        .group_by(jobs.c.operator)
        .having(active < max_running)
        .order_by(last_start.asc().nulls_first(), oldest_queued.asc(), jobs.c.operator)
    )
    return [str(r[0]) for r in conn.execute(query)]


# -- the application's worker ----------------------------------------------------------


def start_worker(app: FastAPI, *, concurrency: int = 2, poll_seconds: float = 1.0) -> JobWorker:
    """Start the app's worker (``app.state.runtime`` and ``app.state.grant_resolver``
    must be set; the running cap comes from ``app.state.settings``); idempotent."""
    worker: JobWorker | None = getattr(app.state, "worker", None)
    if worker is not None and worker.running:
        return worker
    runtime = getattr(app.state, "runtime", None)
    resolver = getattr(app.state, "grant_resolver", None)
    if runtime is None or resolver is None:
        raise NotConfigured("the job worker needs app.state.runtime and app.state.grant_resolver")
    worker = JobWorker(
        app.state.engine,
        runtime,
        resolver,
        concurrency=concurrency,
        poll_seconds=poll_seconds,
        scope=lambda: app_scope(app),
        max_running_per_operator=app.state.settings.max_running_per_operator,
        clock=app_clock(app),
        stages=app.state.metrics.stages,
    )
    worker.start()
    app.state.worker = worker
    return worker


def app_clock(app: FastAPI) -> Clock:
    """The clock the app's services take their time from (``create_app(clock=...)``)."""
    clock: Clock = app.state.clock
    return clock


def app_scope(app: FastAPI) -> ScopePolicy:
    """The app's one scope policy (the grant service's, once it exists; see
    ``gateway.grants.service.grant_service``), made from the store on first use."""
    scope: ScopePolicy | None = getattr(app.state, "scope", None)
    if scope is None:
        scope = ScopePolicy.from_engine(app.state.engine)
        app.state.scope = scope
    return scope


def stop_worker(app: FastAPI, timeout: float | None = None) -> None:
    worker: JobWorker | None = getattr(app.state, "worker", None)
    if worker is not None:
        worker.stop(timeout)
