"""The job state machine: one table of moves, one ``transition()``.

A job's coarse ``State`` says where it is; its ``Outcome`` code says why it
got there (the exit class of a failed run, a review's decision ...). What the
run and the checks found in detail (durations, resource use, findings) is in
``job_outcomes``, written by the worker, never in the state.

::

    queued -> running -> checking -> released | held | blocked | failed
       |         |           |          | rejected | completed (dummy runs)
       |         +-----------+-> queued (re-queued once after a restart)
       +-> cancelled | rejected (static check at submission)
    held -> released | blocked | denied        (security review)
    blocked -> released | denied | blocked     (review; blocked again: the ledger refused)

Invariants:
- Every state change goes through :func:`transition`, which checks the move
  against ``TRANSITIONS``, persists it only if the job is still in the state
  it was read in (so two workers cannot both claim a job) and appends the
  ``job.state`` audit event, all in the caller's transaction.
- A failed user job is data: a state and an outcome code, never an exception.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.audit import append
from gateway.jobs.errors import InvalidTransition, UnknownJob
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
    JOB_FAILED = "failed"  # the exit classes of sandbox.backends.base.ExitClass
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


TRANSITIONS: dict[State, set[State]] = {
    State.QUEUED: {State.RUNNING, State.CANCELLED, State.REJECTED},
    State.RUNNING: {State.CHECKING, State.FAILED, State.QUEUED},
    State.CHECKING: {
        State.RELEASED,
        State.HELD,
        State.BLOCKED,
        State.FAILED,
        State.REJECTED,
        State.COMPLETED,
        State.QUEUED,
    },
    State.HELD: {State.RELEASED, State.BLOCKED, State.DENIED},
    State.BLOCKED: {State.RELEASED, State.DENIED, State.BLOCKED},
    State.RELEASED: set(),
    State.FAILED: set(),
    State.CANCELLED: set(),
    State.REJECTED: set(),
    State.COMPLETED: set(),
    State.DENIED: set(),
}
TERMINAL = frozenset(s for s, moves in TRANSITIONS.items() if not moves)
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
) -> Job:
    """Insert a queued job and audit ``job.submitted`` (code hash, never the code)."""
    now = datetime.now(UTC)
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
) -> Job:
    """Move the job to ``to``: checked, persisted and audited in the caller's transaction.

    Raises ``InvalidTransition`` if ``TRANSITIONS`` does not allow the move
    or another transaction moved the job first.
    """
    job = get_job(conn, job_id)
    if to not in TRANSITIONS[job.state]:
        raise InvalidTransition(f"job {job_id} is {job.state}; it cannot become {to}")
    now = datetime.now(UTC)
    values: dict[str, Any] = {"state": to.value, "outcome": outcome.value, "updated_at": now}
    if to == State.RUNNING:
        values |= {"attempts": jobs.c.attempts + 1, "started_at": now, "finished_at": None}
    if to in TERMINAL or to in UNDER_REVIEW:
        values["finished_at"] = job.finished_at if to == job.state else now
    done = conn.execute(
        sa.update(jobs).where(jobs.c.id == job_id, jobs.c.state == job.state.value).values(values)
    )
    if done.rowcount != 1:
        raise InvalidTransition(f"job {job_id} changed state meanwhile")
    append(
        conn,
        "job.state",
        actor,
        grant_id=job.grant_id,
        datasets=job.datasets,
        detail={"job": job_id, "from": job.state.value, "to": to.value, "outcome": outcome.value}
        | dict(detail or {}),
    )
    return get_job(conn, job_id)
