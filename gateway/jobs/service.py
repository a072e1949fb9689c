"""Jobs, step 1 and 2 of the data flow on the gateway's side, and what operators read.

``submit`` resolves the grant, computes what the job will use (for a Python
job every column of the grant, action ``read``; for SQL the checked lineage,
action ``aggregate``), asks the scope policy, audits its decision
(``scope.decision``, with the reason) and queues the job. A denial is
audited in a transaction of its own and then refused; a submission that
fails a static check is recorded as ``rejected`` and never queued.

Operators read their own jobs only: status, outcome code, durations,
resource use, findings' rule ids and messages (never values), logs of dummy
runs only, and the files of released jobs with their SHA-256 manifest.

Invariants:
- Nothing here raises for a failed user job: it is a state and an outcome.
- Every download is audited with the file's hash, after the bytes on disk
  were checked against the manifest recorded at release.
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

from gateway.audit import append
from gateway.audit.fields import canonical_json
from gateway.errors import StoreError
from gateway.jobs.errors import (
    Conflict,
    Forbidden,
    GrantUnavailable,
    NotConfigured,
    NotFound,
    NotYourJob,
    ScopeRefused,
)
from gateway.jobs.model import Job, Outcome, State, create_job, get_job, list_jobs, transition
from gateway.scope import Decision, ScopeDenied, ScopePolicy
from gateway.store.tables import job_outcomes, jobs
from sandbox.errors import SandboxError, ScreenRejected, SqlRejected
from sandbox.pipeline import JobOutcome
from sandbox.screen import check_python
from sandbox.sqlcheck import check_sql
from sandbox.views import Grant, ViewBuilder

GrantResolver = Callable[[Connection, str], Grant]
SYSTEM = "system"
MAX_OBJECTS_AUDITED = 200


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
    """The grant as the sandbox needs it, or ``GrantUnavailable`` (inactive, unknown)."""
    if resolver is None:
        raise NotConfigured("the gateway has no grant resolver")
    try:
        return resolver(conn, grant_id)
    except StoreError:
        raise
    except Exception as e:  # the resolver's own errors: unknown, suspended, revoked, expired
        raise GrantUnavailable(f"grant {grant_id!r} cannot be used: {e}") from e


def _lineage(
    grant: Grant, kind: str, code: str, views: ViewBuilder | None
) -> tuple[list[tuple[str, str | None]], str, tuple[str, ...]]:
    """What the job uses, the scope action, and static-check rejections (if any)."""
    if kind == "python":
        columns: list[tuple[str, str | None]] = [
            (s.dataset, c) for s in grant.scopes for c in s.columns
        ]
        return columns, "read", ()
    if views is None:
        raise NotConfigured("the gateway has no sandbox pipeline")
    try:
        policies = {s.dataset: p.policy for s, _, p in views.resolve(grant)}
    except SandboxError as e:
        raise GrantUnavailable(f"the grant's datasets cannot be resolved: {e}") from e
    try:
        checked = check_sql(code, policies)
    except SqlRejected as e:
        return [], "aggregate", tuple(r.message for r in e.rejections)
    used: list[tuple[str, str | None]] = [(v, None) for v in checked.views]
    used += list(checked.columns)
    return used, "aggregate", ()


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
) -> Job:
    """Scope-check and queue one submission (see the module docstring)."""
    with engine.begin() as conn:
        grant = resolve_grant(resolver, conn, grant_id)
    if grant.operator != operator or grant.grant_id != grant_id:
        raise Forbidden(f"grant {grant_id!r} is not held by {operator}")
    job_id = new_job_id()
    used, action, rejections = _lineage(grant, kind, code, views)
    datasets = tuple(sorted({s.dataset for s in grant.scopes}))
    decisions: list[Decision] = []
    denied = False
    if not rejections:
        try:
            decisions = scope.check_job_scope(operator, grant_id, used, action)
        except ScopeDenied as e:
            decisions, denied = list(e.decisions), True
        if not denied and kind == "python":
            try:
                check_python(code)
            except ScreenRejected as e:
                rejections = tuple(str(f) for f in e.findings)
    with engine.begin() as conn:
        if decisions or denied:
            append(
                conn,
                "scope.decision",
                operator,
                grant_id=grant_id,
                datasets=datasets,
                detail=_scope_detail(job_id, action, decisions),
            )
        if denied:
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
            if rejections:
                record_rejection(conn, job_id, rejections)
                job = transition(
                    conn,
                    job_id,
                    State.REJECTED,
                    actor=SYSTEM,
                    outcome=Outcome.STATIC_REJECTED,
                    detail={"rejections": len(rejections)},
                )
    if job is None:  # the denial's audit event is committed; now refuse
        raise ScopeRefused(
            f"scope denied: {sum(not d.allowed for d in decisions)} of {len(decisions)} "
            f"requests under grant {grant_id} for {action}"
        )
    return job


# -- outcomes -----------------------------------------------------------------------


def _finding(f: dict[str, Any]) -> dict[str, Any]:
    return {k: f.get(k) for k in ("rule", "verdict", "file", "row", "column", "message")}


def outcome_values(outcome: JobOutcome) -> dict[str, Any]:
    """The ``job_outcomes`` row of a pipeline outcome: no values, logs of dummy runs only."""
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
        "findings": findings,
        "rejections": list(outcome.rejections),
        "outputs": outputs,
        "dataset_versions": dict(outcome.dataset_versions),
        "policy_versions": dict(outcome.policy_versions),
        "stdout": execution.stdout.data.decode("utf-8", "replace") if logs and execution else None,
        "stderr": execution.stderr.data.decode("utf-8", "replace") if logs and execution else None,
    }


def record_outcome(conn: Connection, job_id: str, values: dict[str, Any]) -> None:
    """Write (or replace, after a re-run) the job's outcome row."""
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
    } | values
    conn.execute(
        sa.insert(job_outcomes).values(job_id=job_id, recorded_at=datetime.now(UTC), **row)
    )


def record_rejection(conn: Connection, job_id: str, rejections: Sequence[str]) -> None:
    record_outcome(conn, job_id, {"rejections": list(rejections)})


def add_finding(conn: Connection, job_id: str, finding: dict[str, Any]) -> None:
    """Append one finding to a job's outcome (e.g. the ledger refusing at approval)."""
    current = get_outcome(conn, job_id)
    findings = [*(current or {}).get("findings", []), _finding(finding)]
    verdict = finding.get("verdict") or (current or {}).get("verdict")
    if current is None:
        record_outcome(conn, job_id, {"findings": findings, "verdict": verdict})
        return
    conn.execute(
        sa.update(job_outcomes)
        .where(job_outcomes.c.job_id == job_id)
        .values(findings=findings, verdict=verdict)
    )


def get_outcome(conn: Connection, job_id: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(job_outcomes).where(job_outcomes.c.job_id == job_id)).first()
    return dict(row._mapping) if row is not None else None


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
