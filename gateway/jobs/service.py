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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from gateway.audit import append
from gateway.audit.fields import canonical_json
from gateway.errors import GatewayError
from gateway.grants.errors import GrantError
from gateway.jobs.errors import (
    CodeRejected,
    Conflict,
    Forbidden,
    GrantUnavailable,
    NotConfigured,
    NotFound,
    NotYourJob,
    QueueFull,
    ScopeRefused,
)
from gateway.jobs.findings import StoredFindings, ranked
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
from gateway.scope import Decision, ScopeDenied, ScopePolicy
from gateway.store.engine import serialise_writers
from gateway.store.tables import grants, job_outcomes, jobs
from sandbox.errors import SandboxError, ScreenRejected, SqlRejected
from sandbox.pipeline import JobOutcome
from sandbox.screen import check_python
from sandbox.sqlcheck import check_sql
from sandbox.views import Grant, ViewBuilder

GrantResolver = Callable[[Connection, str], Grant]
SYSTEM = "system"
MAX_OBJECTS_AUDITED = 200
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


def resolve_grant(resolver: GrantResolver | None, conn: Connection, grant_id: str) -> Grant:
    """The grant as the sandbox needs it. The grant service's refusals pass as they are
    (``UnknownGrant``, ``GrantInactive``); another resolver's become ``GrantUnavailable``."""
    if resolver is None:
        raise NotConfigured("the gateway has no grant resolver")
    try:
        return resolver(conn, grant_id)
    except (GatewayError, SQLAlchemyError):
        raise  # a store failure is the gateway's, not the grant's: never in a message
    except Exception as e:  # another resolver's refusal: unknown, suspended, revoked, expired
        raise GrantUnavailable(f"grant {grant_id!r} cannot be used: {e}") from e


@dataclass(frozen=True)
class Findings:
    """What the static checks refused: a message per finding for the operator, and
    rule ids with where they apply (clause, line) for the audit log."""

    messages: tuple[str, ...]
    rules: tuple[dict[str, Any], ...]

    @classmethod
    def of_sql(cls, e: SqlRejected) -> Findings:
        return cls(
            tuple(f"{r.message} [{r.rule}]" for r in e.rejections),
            tuple({"rule": r.rule, "clause": r.clause} for r in e.rejections),
        )

    @classmethod
    def of_python(cls, e: ScreenRejected) -> Findings:
        return cls(
            tuple(str(f) for f in e.findings),
            tuple({"rule": f.rule, "line": f.line} for f in e.findings),
        )


def _lineage(
    grant: Grant, kind: str, code: str, views: ViewBuilder | None
) -> tuple[list[tuple[str, str | None]], str, Findings | None]:
    """What the job uses, the scope action, and what the SQL check refused (if anything)."""
    if kind == "python":
        columns: list[tuple[str, str | None]] = [
            (s.dataset, c) for s in grant.scopes for c in s.columns
        ]
        return columns, "read", None
    if views is None:
        raise NotConfigured("the gateway has no sandbox pipeline")
    try:
        policies = {s.dataset: p.policy for s, _, p in views.resolve(grant)}
    except SandboxError as e:
        raise GrantUnavailable(f"the grant's datasets cannot be resolved: {e}") from e
    try:
        checked = check_sql(code, policies)
    except SqlRejected as e:
        return [], "aggregate", Findings.of_sql(e)
    used: list[tuple[str, str | None]] = [(v, None) for v in checked.views]
    used += list(checked.columns)
    return used, "aggregate", None


def _scope_detail(job_id: str, action: str, decisions: Sequence[Decision]) -> dict[str, Any]:
    denied = [d for d in decisions if not d.allowed]
    reason = list(denied[0].reason) if denied else ["every object allowed by the grant's lines"]
    if not decisions:
        reason = ["nothing to check: denied by default"]
    return {
        "job": job_id,
        "action": action,
        "allowed": bool(decisions) and not denied,
        "requested": len(decisions),
        "objects": [d.object for d in decisions[:MAX_OBJECTS_AUDITED]],
        "denied": [
            {"object": d.object, "reason": list(d.reason)} for d in denied[:MAX_OBJECTS_AUDITED]
        ],
        "reason": reason,
    }


def _usable_grant(
    engine: Engine,
    resolver: GrantResolver | None,
    operator: str,
    grant_id: str,
    detail: dict[str, Any],
) -> Grant:
    """The grant, if ``operator`` may use it now; else the refusal, audited and raised."""
    with engine.begin() as conn:
        try:
            grant = resolve_grant(resolver, conn, grant_id)
            if grant.operator != operator or grant.grant_id != grant_id:
                raise Forbidden(f"grant {grant_id!r} is not held by {operator}")
            return grant
        except (GrantError, GrantUnavailable, Forbidden) as e:
            refusal = e
            scopes = conn.execute(sa.select(grants.c.scopes).where(grants.c.id == grant_id))
            datasets = {s["dataset"] for s in scopes.scalar() or []}
            append(
                conn,
                "scope.decision",
                operator,
                grant_id=grant_id,
                datasets=datasets,
                detail=detail | {"reason": [str(e)]},
            )
    raise refusal  # its event is committed, with whatever the resolver recorded


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
) -> Job:
    """Check and queue one submission, or refuse it (see the module docstring).

    ``max_queued``: the most jobs one operator may have queued (None: no cap)."""
    job_id = new_job_id()
    refusal = _scope_detail(job_id, "read" if kind == "python" else "aggregate", [])
    grant = _usable_grant(engine, resolver, operator, grant_id, refusal)
    about = {"job": job_id, "kind": kind, "dummy": dummy, "code_sha256": code_hash(code)}
    full = None
    if max_queued is not None:  # a full queue is refused before the checks' work
        with engine.begin() as conn:
            queued = _queue_full(conn, max_queued, operator)
            if queued is not None:
                full = _queue_refusal(conn, max_queued, queued, about, grant)
        if full is not None:
            raise full
    used, action, findings = _lineage(grant, kind, code, views)
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
                detail=_scope_detail(job_id, action, decisions),
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
                    "findings": list(findings.rules[:MAX_OBJECTS_AUDITED]),
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


def release_scope(
    conn: Connection,
    scope: ScopePolicy,
    views: ViewBuilder | None,
    job: Job,
    grant: Grant,
    actor: str,
) -> bool:
    """Rule: at release, everything the job's outputs derive from is still within its grant.

    The lineage is taken again as at submission (SQL: the checked query's views and
    columns under the policies now; Python: every column of the grant now) and
    decided against the grant's lines now, so a grant narrowed, suspended or
    revoked while the job ran releases nothing. The decision is audited in
    ``conn`` (``scope.decision``, stage ``release``); a query that no longer
    passes the static checks is a denial.
    """
    used, action, findings = _lineage(grant, job.kind, job.code, views)
    decisions: list[Decision] = []
    allowed = findings is None
    if allowed:
        try:
            decisions = scope.check_job_scope(job.operator, job.grant_id, used, action)
        except ScopeDenied as e:
            decisions, allowed = list(e.decisions), False
    detail = _scope_detail(job.id, action, decisions) | {"stage": "release"}
    if findings is not None:
        detail["reason"] = ["the code no longer passes the static checks"]
    append(
        conn, "scope.decision", actor, grant_id=job.grant_id, datasets=job.datasets, detail=detail
    )
    return allowed


# -- outcomes -----------------------------------------------------------------------


def _finding(f: dict[str, Any]) -> dict[str, Any]:
    return {k: f.get(k) for k in ("rule", "verdict", "file", "row", "column", "message")}


def outcome_values(outcome: JobOutcome) -> dict[str, Any]:
    """The ``job_outcomes`` values of a pipeline outcome: no values, logs of dummy runs only.

    ``findings`` holds every finding (the worst first); :func:`record_outcome`
    keeps ``STORED`` of them with the total and the counts per rule.
    ``view_columns``: the names of the view columns the job could read (the
    column names an operator may be shown in a finding)."""
    report = outcome.report.to_dict() if outcome.report is not None else None
    findings: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    if report is not None:
        findings = [_finding(f) for f in report["findings"]]
        for o in report["outputs"]:
            findings += [_finding(f) for f in o["findings"]]
            outputs.append({k: o[k] for k in ("file", "kind", "sha256", "bytes", "verdict")})
    run = outcome.run
    execution = run.execution if run is not None else None
    logs = execution is not None and not outcome.logs_withheld
    return {
        "exit_class": execution.exit_class.value if execution else None,
        "exit_code": execution.exit_code if execution else None,
        "runtime": run.runtime if run else None,
        "run_seconds": execution.wall_seconds if execution else None,
        "sandbox_seconds": run.wall_seconds if run else None,
        "memory_peak_bytes": execution.memory_peak_bytes if execution else None,
        "pids_peak": execution.pids_peak if execution else None,
        "verdict": report["verdict"] if report else None,
        "findings": [dict(f) for f in ranked(findings)],
        "view_columns": sorted({column for _, column in outcome.columns}),
        "rejections": list(outcome.rejections),
        "outputs": outputs,
        "dataset_versions": dict(outcome.dataset_versions),
        "policy_versions": dict(outcome.policy_versions),
        "stdout": execution.stdout.data.decode("utf-8", "replace") if logs and execution else None,
        "stderr": execution.stderr.data.decode("utf-8", "replace") if logs and execution else None,
    }


def record_outcome(conn: Connection, job_id: str, values: dict[str, Any]) -> None:
    """Write (or replace, after a re-run) the job's outcome row; of the findings it
    keeps the worst ``STORED`` with the total and the counts per rule."""
    conn.execute(sa.delete(job_outcomes).where(job_outcomes.c.job_id == job_id))
    row = {
        "exit_class": None,
        "exit_code": None,
        "runtime": None,
        "run_seconds": None,
        "sandbox_seconds": None,
        "memory_peak_bytes": None,
        "pids_peak": None,
        "verdict": None,
        "findings": [],
        "rejections": [],
        "outputs": [],
        "dataset_versions": {},
        "policy_versions": {},
        "stdout": None,
        "stderr": None,
    } | {k: v for k, v in values.items() if k != "view_columns"}
    found = StoredFindings.of(row["findings"], values.get("view_columns") or ())
    row["findings"] = found.to_json()
    conn.execute(
        sa.insert(job_outcomes).values(job_id=job_id, recorded_at=datetime.now(UTC), **row)
    )


def add_finding(conn: Connection, job_id: str, finding: dict[str, Any]) -> None:
    """Add one finding to a job's outcome (e.g. the ledger refusing at approval)."""
    current = conn.execute(
        sa.select(job_outcomes.c.findings, job_outcomes.c.verdict).where(
            job_outcomes.c.job_id == job_id
        )
    ).first()
    verdict = finding.get("verdict") or (current.verdict if current is not None else None)
    if current is None:
        record_outcome(conn, job_id, {"findings": [_finding(finding)], "verdict": verdict})
        return
    found = StoredFindings.from_json(current.findings).add(_finding(finding))
    conn.execute(
        sa.update(job_outcomes)
        .where(job_outcomes.c.job_id == job_id)
        .values(findings=found.to_json(), verdict=verdict)
    )


def get_outcome(conn: Connection, job_id: str) -> dict[str, Any] | None:
    """The job's outcome row; ``findings`` the ones kept (at most ``STORED``, the worst
    first), with ``findings_total``, ``findings_by_rule`` and ``view_columns``."""
    row = conn.execute(sa.select(job_outcomes).where(job_outcomes.c.job_id == job_id)).first()
    if row is None:
        return None
    outcome = dict(row._mapping)
    found = StoredFindings.from_json(outcome["findings"])
    outcome["findings"] = [dict(f) for f in found.items]
    outcome["findings_total"] = found.total
    outcome["findings_by_rule"] = dict(found.by_rule)
    outcome["view_columns"] = found.view_columns
    return outcome


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
    outcome = get_outcome(conn, job.id) or {}
    return {"job": job.id, "stdout": outcome.get("stdout"), "stderr": outcome.get("stderr")}


def manifest(conn: Connection, job: Job) -> list[dict[str, Any]]:
    """The released files with their SHA-256 (``Conflict`` unless the job is released)."""
    if job.state != State.RELEASED:
        raise Conflict(f"job {job.id} is {job.state}; only released outputs can be read")
    outcome = get_outcome(conn, job.id) or {}
    return [{k: o[k] for k in ("file", "sha256", "bytes")} for o in outcome.get("outputs", [])]


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


def grant_refusal(
    conn: Connection,
    resolver: GrantResolver | None,
    grant_id: str,
    *,
    actor: str,
    datasets: Sequence[str],
    detail: dict[str, Any],
) -> GatewayError | None:
    """None while the grant may be used; else the resolver's refusal (suspended, revoked,
    expired: 409), appended to ``conn`` as a denied ``scope.decision`` (``detail`` names
    the action), for the caller to raise once ``conn``'s transaction is committed."""
    try:
        resolve_grant(resolver, conn, grant_id)
    except (GrantError, GrantUnavailable) as e:
        decision = detail | {"allowed": False, "reason": [str(e)]}
        append(conn, "scope.decision", actor, grant_id=grant_id, datasets=datasets,
               detail=decision)  # fmt: skip
        return e
    return None


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


def cancel(conn: Connection, job: Job, *, actor: str) -> Job:
    """Rule: only a queued job can be cancelled (``InvalidTransition`` otherwise)."""
    return transition(
        conn, job.id, State.CANCELLED, actor=actor, outcome=Outcome.CANCELLED_BY_OPERATOR
    )


def cancel_queued_for_grant(conn: Connection, grant_id: str, *, actor: str = SYSTEM) -> list[str]:
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
        )
    return ids
