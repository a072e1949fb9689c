"""The job lifecycle: one table of moves (:data:`JOB`), one ``transition()``.

A job's coarse ``State`` says where it is; its ``Outcome`` code says why it
got there (the exit class of a failed run, a review's decision ...). What the
run and the checks found in detail (durations, resource use, findings) is in
``job_outcomes``, written by the worker, never in the state.

::

    queued -> running -> checking -> released | held | blocked | failed
       |         |           |          | rejected | completed (dummy runs)
       |         |           |          | refused (the scope or the ledger at release)
       |         +-----------+-> queued (re-queued once after a restart)
       +-> cancelled | rejected (static check at submission)
    held -> released | denied | refused        (security review)
    blocked -> released | denied | refused     (review; two approvals)

``held`` and ``blocked`` always mean that a reviewer may act. ``refused`` is
final: the job was checked (and maybe approved), but the scope check at
release or the differencing ledger refused it, so nothing can release it;
its outcome (``ledger_refused``, ``scope_denied_at_release``) says which.

Invariants:
- Every state change goes through :func:`transition`, which computes the
  columns that go with the move (attempts, start and finish times, outcome)
  and hands it to ``gateway.store.lifecycle.transition``: checked against
  :data:`JOB`, persisted only if the job is still in the state it was read in
  (so two workers cannot both claim a job), audited as ``job.state``, all in
  the caller's transaction.
- Time comes from the clock the caller is given (``system_clock`` unless a
  test or a deployment gives another).
- A failed user job is data: a state and an outcome code, never an exception.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.audit import append
from gateway.jobs.errors import InvalidTransition, UnknownJob
from gateway.store.lifecycle import Audit, Clock, Lifecycle, LifecycleError, system_clock
from gateway.store.lifecycle import transition as move
from gateway.store.tables import jobs


class State(StrEnum):
    """Coarse state of a job. Values are stored: never change them."""

    QUEUED = "queued"
    RUNNING = "running"  # in the pipeline: views, sandbox, output checks
    CHECKING = "checking"  # the run is over; its outcome and verdict are being recorded
    RELEASED = "released"
    HELD = "held"  # worst finding REVIEW: waits for one reviewer
    BLOCKED = "blocked"  # worst finding FAIL: two reviewers may override
    FAILED = "failed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"  # refused by a static check; never ran
    COMPLETED = "completed"  # a dummy run ended (its outputs are never released)
    DENIED = "denied"  # a reviewer denied the release
    REFUSED = "refused"  # the scope check or the ledger refused it at release: final


class Outcome(StrEnum):
    """Why a job reached its state. Values are stored: never change them."""

    SUBMITTED = "submitted"
    STARTED = "started"
    REQUEUED = "requeued_after_restart"
    INTERRUPTED = "interrupted"  # left running twice by a restart
    RAN = "ran"
    CHECKS_PASSED = "checks_passed"
    CHECKS_REVIEW = "checks_review"
    CHECKS_FAILED = "checks_failed"
    STATIC_REJECTED = "static_rejected"
    JOB_FAILED = "failed"  # the exit classes of sandbox.run.backends.base.ExitClass
    TIMED_OUT = "timed_out"
    OOM_KILLED = "oom_killed"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    BACKEND_ERROR = "backend_error"
    NO_RESULT = "no_result"  # exited 0 without the SQL product's result
    GRANT_UNAVAILABLE = "grant_unavailable"
    INTERNAL_ERROR = "internal_error"
    DUMMY_FINISHED = "dummy_finished"
    CANCELLED_BY_OPERATOR = "cancelled_by_operator"
    CANCELLED_GRANT_SUSPENDED = "cancelled_grant_suspended"
    REVIEW_APPROVED = "review_approved"
    REVIEW_DENIED = "review_denied"
    LEDGER_REFUSED = "ledger_refused"
    SCOPE_DENIED = "scope_denied_at_release"  # the lineage left the grant before release


TRANSITIONS: Mapping[State, frozenset[State]] = {
    State.QUEUED: frozenset({State.RUNNING, State.CANCELLED, State.REJECTED}),
    State.RUNNING: frozenset({State.CHECKING, State.FAILED, State.QUEUED}),
    State.CHECKING: frozenset(
        {
            State.RELEASED,
            State.HELD,
            State.BLOCKED,
            State.FAILED,
            State.REJECTED,
            State.COMPLETED,
            State.QUEUED,
            State.REFUSED,
        }
    ),
    State.HELD: frozenset({State.RELEASED, State.DENIED, State.REFUSED}),
    State.BLOCKED: frozenset({State.RELEASED, State.DENIED, State.REFUSED}),
    State.RELEASED: frozenset(),
    State.FAILED: frozenset(),
    State.CANCELLED: frozenset(),
    State.REJECTED: frozenset(),
    State.COMPLETED: frozenset(),
    State.DENIED: frozenset(),
    State.REFUSED: frozenset(),
}
JOB: Lifecycle[State] = Lifecycle(
    name="job",
    states=State,
    moves=TRANSITIONS,
    table=jobs,
    key="id",
    state="state",
    event="job.state",
    description="A submitted job, from the queue through the sandbox and the output "
    "checks to release, review or refusal (`gateway/jobs/model.py`).",
    notes={
        (State.RUNNING, State.QUEUED): "re-queued once after a restart",
        (State.CHECKING, State.QUEUED): "re-queued once after a restart",
        (State.CHECKING, State.REFUSED): "scope or ledger at release",
        (State.HELD, State.REFUSED): "approved; scope or ledger refused",
        (State.BLOCKED, State.REFUSED): "approved; scope or ledger refused",
    },
)
TERMINAL = JOB.terminal
UNDER_REVIEW = frozenset({State.HELD, State.BLOCKED})


@dataclass(frozen=True)
class Job:
    id: str
    operator: str
    grant_id: str
    kind: str
    dummy: bool
    code: str
    code_sha256: str
    state: State
    outcome: str
    attempts: int
    datasets: tuple[str, ...]
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime


def _job(row: sa.Row[Any]) -> Job:
    m = row._mapping
    return Job(
        id=m["id"],
        operator=m["operator"],
        grant_id=m["grant_id"],
        kind=m["kind"],
        dummy=bool(m["dummy"]),
        code=m["code"],
        code_sha256=m["code_sha256"],
        state=State(m["state"]),
        outcome=m["outcome"],
        attempts=int(m["attempts"]),
        datasets=tuple(m["datasets"]),
        submitted_at=m["submitted_at"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
        updated_at=m["updated_at"],
    )


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def get_job(conn: Connection, job_id: str) -> Job:
    row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
    if row is None:
        raise UnknownJob(f"no job {job_id!r}")
    return _job(row)


def list_jobs(
    conn: Connection,
    *,
    operator: str | None = None,
    states: frozenset[State] | None = None,
    limit: int = 500,
) -> list[Job]:
    query = sa.select(jobs).order_by(jobs.c.submitted_at.desc(), jobs.c.id).limit(limit)
    if operator is not None:
        query = query.where(jobs.c.operator == operator)
    if states is not None:
        query = query.where(jobs.c.state.in_(sorted(s.value for s in states)))
    return [_job(r) for r in conn.execute(query)]


def create_job(
    conn: Connection,
    *,
    job_id: str,
    operator: str,
    grant_id: str,
    kind: str,
    code: str,
    dummy: bool,
    datasets: tuple[str, ...],
    clock: Clock = system_clock,
) -> Job:
    """Insert a queued job and audit ``job.submitted`` (code hash, never the code)."""
    now = clock()
    digest = code_hash(code)
    conn.execute(
        sa.insert(jobs).values(
            id=job_id,
            operator=operator,
            grant_id=grant_id,
            kind=kind,
            dummy=dummy,
            code=code,
            code_sha256=digest,
            state=State.QUEUED.value,
            outcome=Outcome.SUBMITTED.value,
            attempts=0,
            datasets=sorted(datasets),
            submitted_at=now,
            updated_at=now,
        )
    )
    append(
        conn,
        "job.submitted",
        operator,
        grant_id=grant_id,
        datasets=datasets,
        detail={"job": job_id, "kind": kind, "dummy": dummy, "code_sha256": digest},
    )
    return get_job(conn, job_id)


def transition(
    conn: Connection,
    job_id: str,
    to: State,
    *,
    actor: str,
    outcome: Outcome,
    detail: Mapping[str, Any] | None = None,
    clock: Clock = system_clock,
) -> Job:
    """Move the job to ``to``: checked, persisted and audited in the caller's transaction.

    The columns that go with the move: ``outcome`` and ``updated_at`` always;
    a start (``running``) counts an attempt and sets ``started_at``; a state
    that ends the run (final, or waiting for review) sets ``finished_at``.
    Raises ``InvalidTransition`` if :data:`JOB` does not allow the move or
    another transaction moved the job first.
    """
    job = get_job(conn, job_id)
    now = clock()
    values: dict[str, Any] = {"outcome": outcome.value, "updated_at": now}
    if to == State.RUNNING:
        values |= {"attempts": jobs.c.attempts + 1, "started_at": now, "finished_at": None}
    if to in TERMINAL or to in UNDER_REVIEW:
        values["finished_at"] = now
    audit = Audit(
        actor,
        grant_id=job.grant_id,
        datasets=job.datasets,
        detail={"outcome": outcome.value} | dict(detail or {}),
    )
    try:
        move(conn, JOB, job_id, job.state, to, audit, values=values)
    except LifecycleError as e:
        raise InvalidTransition(str(e)) from e
    return get_job(conn, job_id)
