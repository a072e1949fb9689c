"""Jobs, step 1 and 2 of the data flow on the gateway's side, and what operators read.

``submit`` resolves the grant, computes what the job will use (for a Python
job every column of the grant, action ``read``; for SQL the checked lineage,
action ``aggregate``), asks the scope policy, audits its decision
(``scope.decision``, with the reason) and queues the job. Every refusal is
audited in a transaction of its own and then raised, and leaves no job:

- a grant that cannot be used (unknown: 404; suspended, revoked, expired:
  409; another operator's: 403) is a denied ``scope.decision`` whose reason
  says why; its transaction also keeps what the resolver recorded (a grant
  found past its term moves to ``expired``);
- a scope denial (403) is the ``scope.decision`` with the denied objects;
- code that fails the static checks (SQL that does not parse or breaks the
  exposure policy, Python the screen refuses) is ``job.refused`` with the
  rule ids, and a 422 lists every finding (with its line for Python);
- an operator who already has ``max_queued`` jobs waiting (dummy runs count
  too) is refused with ``QueueFull`` (429, ``Retry-After``), audited as
  ``job.refused`` with the rule ``queue_full``. The count is taken under a
  per-operator lock in the transaction that queues the job, so concurrent
  submissions (other gateway processes too) cannot overshoot it.

What a job uses and the scope's decisions are ``gateway.jobs.lineage``'s; what
its run and checks found, ``gateway.jobs.outcomes``'s.

Operators read their own jobs only: status, outcome code, durations,
resource use, findings as ``gateway.jobs.findings`` projects them (rule, a
fixed sentence, the output by position; never a name the job chose, a count
or a value), logs of dummy runs only, and the names and files of released
jobs' outputs with their SHA-256 manifest.

Invariants:
- Nothing here raises for a failed user job: it is a state and an outcome.
- Every download is audited with the file's hash, after the bytes on disk
  were checked against the manifest recorded at release; under a grant that
  is not active it is refused (409) and audited as a denied ``scope.decision``.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from gateway.audit import append
from gateway.audit.fields import canonical_json
from gateway.jobs.errors import (
    CodeRejected,
    Conflict,
    Forbidden,
    NotFound,
    NotYourJob,
    QueueFull,
    ScopeRefused,
)
from gateway.jobs.lineage import (
    Findings,
    GrantResolver,
    grant_refusal,
    lineage,
    release_scope,
    resolve_grant,
    scope_detail,
    usable_grant,
)
from gateway.jobs.model import (
    Job,
    Outcome,
    State,
    code_hash,
    create_job,
    get_job,
    list_jobs,
    transition,
)
from gateway.jobs.outcomes import get_outcome, record_outcome
from gateway.scope.errors import ScopeDenied
from gateway.scope.objects import Decision
from gateway.scope.policy import ScopePolicy
from gateway.store.engine import serialise_writers
from gateway.store.lifecycle import Clock, system_clock
from gateway.store.tables import jobs
from sandbox.errors import ScreenRejected
from sandbox.precheck.screen import check_python
from sandbox.views.build import Grant, ViewBuilder

# Defined in gateway.jobs.lineage and gateway.jobs.outcomes; named here too, as the
# jobs' service that the products, privacy-computing products and the app use.
__all__ = [
    "SYSTEM",
    "Files",
    "GrantResolver",
    "cancel",
    "cancel_queued_for_grant",
    "download",
    "download_while_usable",
    "get_outcome",
    "grant_refusal",
    "logs",
    "manifest",
    "manifest_sha256",
    "operator_jobs",
    "own_job",
    "queued_jobs",
    "record_outcome",
    "release_scope",
    "resolve_grant",
    "submit",
]

SYSTEM = "system"
QUEUE_LOCK = "dsr.jobs.queue"  # + ":<operator>": serialises that operator's submissions
QUEUE_RETRY_SECONDS = 30  # Retry-After of a full queue: a hint, not a promise


@dataclass(frozen=True)
class Files:
    """Where released and checked outputs are: ``<work>/jobs/<id>/outputs``."""

    work_dir: Path

    def outputs(self, job_id: str) -> Path:
        return self.work_dir / "jobs" / job_id / "outputs"

    def job_root(self, job_id: str) -> Path:
        return self.work_dir / "jobs" / job_id


def new_job_id() -> str:
    return "job-" + secrets.token_hex(8)


def queued_jobs(conn: Connection, operator: str) -> int:
    """How many jobs of ``operator`` wait in the queue (dummy runs included)."""
    count = sa.select(sa.func.count()).where(
        jobs.c.operator == operator, jobs.c.state == State.QUEUED.value
    )
    return int(conn.execute(count).scalar_one())


def _queue_full(conn: Connection, limit: int | None, operator: str) -> int | None:
    """Rule: an operator has at most ``limit`` jobs queued. The count when it is
    reached, else None. Holds the operator's queue lock until the transaction ends:
    take it before anything that appends to the audit chain (one lock order)."""
    if limit is None:
        return None
    serialise_writers(conn, f"{QUEUE_LOCK}:{operator}")
    queued = queued_jobs(conn, operator)
    return queued if queued >= limit else None


def _queue_refusal(
    conn: Connection, limit: int, queued: int, job: dict[str, Any], grant: Grant
) -> QueueFull:
    """Audit a full queue's refusal (``job.refused``, rule ``queue_full``) and return
    it, for the caller to raise once its transaction is committed."""
    operator = grant.operator
    append(
        conn,
        "job.refused",
        operator,
        grant_id=grant.grant_id,
        datasets={s.dataset for s in grant.scopes},
        detail=job | {"findings": [{"rule": "queue_full"}], "queued": queued, "limit": limit},
    )
    return QueueFull(
        f"an operator may have at most {limit} jobs waiting in the queue and yours is "
        "full; nothing was queued. Submit again once some have started, or cancel some",
        QUEUE_RETRY_SECONDS,
    )


def submit(
    engine: Engine,
    *,
    scope: ScopePolicy,
    resolver: GrantResolver | None,
    views: ViewBuilder | None,
    operator: str,
    grant_id: str,
    kind: str,
    code: str,
    dummy: bool,
    max_queued: int | None = None,
    clock: Clock = system_clock,
) -> Job:
    """Check and queue one submission, or refuse it (see the module docstring).

    ``max_queued``: the most jobs one operator may have queued (None: no cap)."""
    job_id = new_job_id()
    refusal = scope_detail(job_id, "read" if kind == "python" else "aggregate", [])
    grant = usable_grant(engine, resolver, operator, grant_id, refusal)
    about = {"job": job_id, "kind": kind, "dummy": dummy, "code_sha256": code_hash(code)}
    full = None
    if max_queued is not None:  # a full queue is refused before the checks' work
        with engine.begin() as conn:
            queued = _queue_full(conn, max_queued, operator)
            if queued is not None:
                full = _queue_refusal(conn, max_queued, queued, about, grant)
        if full is not None:
            raise full
    used, action, findings = lineage(grant, kind, code, views)
    datasets = tuple(sorted({s.dataset for s in grant.scopes}))
    decisions: list[Decision] = []
    denied = False
    if findings is None:
        try:
            decisions = scope.check_job_scope(operator, grant_id, used, action)
        except ScopeDenied as e:
            decisions, denied = list(e.decisions), True
        if not denied and kind == "python":
            try:
                check_python(code)
            except ScreenRejected as e:
                findings = Findings.of_python(e)
    with engine.begin() as conn:
        queued = None
        if max_queued is not None and not denied and findings is None:
            queued = _queue_full(conn, max_queued, operator)  # its lock before the chain's
        if decisions or denied:
            append(
                conn,
                "scope.decision",
                operator,
                grant_id=grant_id,
                datasets=datasets,
                detail=scope_detail(job_id, action, decisions),
            )
        if findings is not None:
            append(
                conn,
                "job.refused",
                operator,
                grant_id=grant_id,
                datasets=datasets,
                detail={
                    "job": job_id,
                    "kind": kind,
                    "dummy": dummy,
                    "code_sha256": code_hash(code),
                    "findings": findings.audited(),
                },
            )
        if max_queued is not None and queued is not None:
            full = _queue_refusal(conn, max_queued, queued, about, grant)
        if denied or findings is not None or full is not None:
            job = None
        else:
            job = create_job(
                conn,
                job_id=job_id,
                operator=operator,
                grant_id=grant_id,
                kind=kind,
                code=code,
                dummy=dummy,
                datasets=datasets,
                clock=clock,
            )
    if findings is not None:  # the refusal's audit event is committed; now refuse
        raise CodeRejected(
            f"the {'SQL' if kind == 'sql' else 'Python'} code was refused by the static "
            "checks; nothing was queued",
            list(findings.messages),
        )
    if full is not None:  # its audit event is committed too
        raise full
    if job is None:
        raise ScopeRefused(
            f"scope denied: {sum(not d.allowed for d in decisions)} of {len(decisions)} "
            f"requests under grant {grant_id} for {action}"
        )
    return job


# -- what operators read --------------------------------------------------------------


def own_job(conn: Connection, job_id: str, operator: str) -> Job:
    """Rule: an operator reads and acts on only the jobs they submitted."""
    job = get_job(conn, job_id)
    if job.operator != operator:
        raise NotYourJob(f"job {job_id} was submitted by another operator")
    return job


def operator_jobs(conn: Connection, operator: str) -> list[Job]:
    return list_jobs(conn, operator=operator)


def logs(conn: Connection, job: Job) -> dict[str, Any]:
    """Rule: logs are shown only for dummy runs (real-data logs can carry data)."""
    if not job.dummy:
        raise Forbidden("logs of real-data runs are withheld; run the job on dummy data")
    outcome = get_outcome(conn, job.id)
    if outcome is None:
        return {"job": job.id, "stdout": None, "stderr": None}
    return {"job": job.id, "stdout": outcome.stdout, "stderr": outcome.stderr}


def manifest(conn: Connection, job: Job) -> list[dict[str, Any]]:
    """The released files with their SHA-256 (``Conflict`` unless the job is released)."""
    if job.state != State.RELEASED:
        raise Conflict(f"job {job.id} is {job.state}; only released outputs can be read")
    outcome = get_outcome(conn, job.id)
    outputs = outcome.outputs if outcome is not None else ()
    return [{k: o[k] for k in ("file", "sha256", "bytes")} for o in outputs]


def manifest_sha256(files: Sequence[dict[str, Any]]) -> str:
    return hashlib.sha256(canonical_json(sorted(files, key=lambda f: f["file"]))).hexdigest()


def download(conn: Connection, files: Files, job: Job, name: str, *, actor: str) -> bytes:
    """The bytes of one released file, checked against the manifest; audited ``download``."""
    entry = next((f for f in manifest(conn, job) if f["file"] == name), None)
    if entry is None:
        raise NotFound(f"job {job.id} released no file {name!r}")
    path: Path = files.outputs(job.id) / str(entry["file"])  # a manifest name: no "/"
    try:
        content = path.read_bytes()
    except OSError as e:
        raise Conflict(f"the released file {name!r} is no longer on disk") from e
    digest = hashlib.sha256(content).hexdigest()
    if digest != entry["sha256"]:
        raise Conflict(f"the released file {name!r} does not match its manifest")
    append(
        conn,
        "download",
        actor,
        grant_id=job.grant_id,
        datasets=job.datasets,
        detail={"job": job.id, "file": name, "sha256": digest, "bytes": len(content)},
    )
    return content


def download_while_usable(
    engine: Engine,
    resolver: GrantResolver | None,
    files: Files,
    job_id: str,
    name: str,
    *,
    operator: str,
) -> bytes:
    """:func:`download`, while the job's grant may still be used.

    Rule: a stop stops downloads too: under a suspended, revoked or expired grant
    nothing is read (:func:`grant_refusal`, action ``download``). The check and the
    download share one transaction, so a stop committed first is seen.
    """
    with engine.begin() as conn:
        job = own_job(conn, job_id, operator)
        detail = {"job": job.id, "action": "download"}
        refusal = grant_refusal(conn, resolver, job.grant_id, actor=operator,
                                datasets=job.datasets, detail=detail)  # fmt: skip
        if refusal is None:
            return download(conn, files, job, name, actor=operator)
    raise refusal  # its event is committed, with whatever the resolver recorded


def cancel(conn: Connection, job: Job, *, actor: str, clock: Clock = system_clock) -> Job:
    """Rule: only a queued job can be cancelled (``InvalidTransition`` otherwise)."""
    return transition(
        conn,
        job.id,
        State.CANCELLED,
        actor=actor,
        outcome=Outcome.CANCELLED_BY_OPERATOR,
        clock=clock,
    )


def cancel_queued_for_grant(
    conn: Connection, grant_id: str, *, actor: str = SYSTEM, clock: Clock = system_clock
) -> list[str]:
    """Cancel every queued job of the grant (the grant-suspension hook), in the caller's
    transaction. Jobs already running finish; their release is checked again at review."""
    ids = [
        str(r[0])
        for r in conn.execute(
            sa.select(jobs.c.id).where(
                jobs.c.grant_id == grant_id, jobs.c.state == State.QUEUED.value
            )
        )
    ]
    for job_id in ids:
        transition(
            conn,
            job_id,
            State.CANCELLED,
            actor=actor,
            outcome=Outcome.CANCELLED_GRANT_SUSPENDED,
            clock=clock,
        )
    return ids
