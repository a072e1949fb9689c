"""Security review of held and blocked jobs (stage 6 of the data flow, by people).

Reviewers see the queue (held and blocked jobs they did not submit), open
one with its findings (all of them, with file names and full messages, from
the job's ``report.json``, ``PAGE`` at a time), evidence and the output files
themselves (audited ``review.viewed``), and vote approve or deny with a
written reason (audited ``review.vote``).

Rules:
- nobody reviews (opens or votes on) a job they submitted;
- a held job (worst finding REVIEW) is released on one approval;
- overriding a blocked job (worst finding FAIL) needs two approvals by
  different reviewers;
- one deny ends the review: the job is denied;
- an approval is checked again before anything leaves: the grant must
  still be active and cover the job's lineage (``release_scope``), and an
  approved SQL product's cells enter the differencing ledger
  (``record_release``, re-checked atomically). If either refuses, the job
  becomes ``refused`` (final; outcome ``scope_denied_at_release`` or
  ``ledger_refused``) with that finding, and leaves the queue.

A review has its own lifecycle (``gateway.reviews.model.REVIEW``);
:func:`end_review` moves the review and, in the same transaction, the job
(whose ``job.state`` event records both). The ledger is a separate store,
written before the gateway's transaction commits: if that transaction then
failed, the ledger would hold cells of a job never released, which only
makes later checks stricter.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from sqlalchemy import Connection

from gateway.audit import append
from gateway.jobs.endings import load_cells
from gateway.jobs.errors import Conflict, Forbidden, InvalidTransition
from gateway.jobs.findings import RELEASE_STAGE, ranked
from gateway.jobs.lineage import GrantResolver, release_scope, resolve_grant
from gateway.jobs.model import UNDER_REVIEW, Job, Outcome, State, get_job, list_jobs
from gateway.jobs.model import transition as job_transition
from gateway.jobs.outcomes import StoredOutcome, add_finding, get_outcome
from gateway.jobs.worker import JobRuntime
from gateway.reviews.model import (
    REVIEW,
    Review,
    ReviewState,
    Vote,
    add_vote,
    get_review,
    open_review,
)
from gateway.scope.policy import ScopePolicy
from gateway.store.lifecycle import Audit, Clock, LifecycleError, system_clock
from gateway.store.lifecycle import transition as move
from sandbox.errors import CheckError
from sandbox.judge.rules import Verdict
from sandbox.judge.types import Decision
from sandbox.judge.verdict import JobReport, record_release

# What the job becomes when its review ends so.
_JOB_MOVE = {
    ReviewState.APPROVED: (State.RELEASED, Outcome.REVIEW_APPROVED),
    ReviewState.DENIED: (State.DENIED, Outcome.REVIEW_DENIED),
    ReviewState.REFUSED: (State.REFUSED, Outcome.LEDGER_REFUSED),
}

PAGE = 200  # findings in one page of a review


class SelfReview(Forbidden):
    """A reviewer tried to review a job they submitted."""


def can_review(job: Job, reviewer: str) -> bool:
    """Rule: nobody reviews a job they submitted."""
    return job.operator != reviewer


def check_review(job: Job, reviewer: str) -> None:
    """Rule: nobody reviews a job they submitted (raises ``SelfReview``)."""
    if not can_review(job, reviewer):
        raise SelfReview(f"{reviewer} submitted job {job.id} and cannot review it")


def _under_review(job: Job) -> None:
    if job.state not in UNDER_REVIEW:
        raise Conflict(f"job {job.id} is {job.state} ({job.outcome}); it is not under review")


def end_review(
    conn: Connection,
    job: Job,
    to: ReviewState,
    *,
    actor: str,
    outcome: Outcome | None = None,
    clock: Clock = system_clock,
) -> Job:
    """End the job's review as ``to`` and move the job accordingly, in one transaction
    (``outcome``: why, where it is not the usual one for ``to``)."""
    review = get_review(conn, job)
    counted = {"approvals": review.approvals, "required": review.required}
    audit = Audit(actor, grant_id=job.grant_id, datasets=job.datasets, detail=counted)
    try:
        closed = {"closed_at": clock()}
        move(conn, REVIEW, job.id, review.state, to, audit, values=closed, key_name="job")
    except LifecycleError as e:
        raise InvalidTransition(f"the review of job {job.id}: {e}") from e
    state, usual = _JOB_MOVE[to]
    return job_transition(
        conn,
        job.id,
        state,
        actor=actor,
        outcome=outcome or usual,
        detail={"review": to.value} | counted,
        clock=clock,
    )


def queue(conn: Connection, reviewer: str) -> list[tuple[Job, Review, StoredOutcome]]:
    """Held and blocked jobs (every one still waits for a reviewer), other than the
    reviewer's own."""
    return [
        (job, get_review(conn, job), get_outcome(conn, job.id) or StoredOutcome())
        for job in list_jobs(conn, states=UNDER_REVIEW)
        if can_review(job, reviewer)
    ]


def _content(data: bytes) -> dict[str, str]:
    try:
        return {"encoding": "utf-8", "content": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"encoding": "base64", "content": base64.b64encode(data).decode()}


def all_findings(report: dict[str, Any], outcome: StoredOutcome) -> list[dict[str, Any]]:
    """Every finding of a job, with its file, place and full message, the worst first:
    the stored report's (the outcome row keeps only the worst ``STORED``) and those
    added when a review ended (scope, differencing at approval)."""
    if not report:
        return [dict(f) for f in ranked(outcome.findings)]
    found: list[dict[str, Any]] = list(report.get("findings", []))
    for entry in report.get("outputs", []):
        found += entry.get("findings", [])
    found += [dict(f) for f in outcome.findings if f.get("stage") == RELEASE_STAGE]
    return [dict(f) for f in ranked(found)]


def page_of(items: list[dict[str, Any]], page: int, size: int = PAGE) -> dict[str, Any]:
    """Page ``page`` (1-based) of ``items``: the items, the total and the number of pages."""
    pages = max(1, -(-len(items) // size))
    page = min(max(page, 1), pages)
    return {
        "findings": items[(page - 1) * size : page * size],
        "findings_total": len(items),
        "page": page,
        "pages": pages,
    }


def evidence_of(report: dict[str, Any]) -> dict[str, Any]:
    """The stored report without its findings lists (they are paged apart), each
    replaced by its count."""
    evidence = {k: v for k, v in report.items() if k != "findings"}
    if "findings" in report:
        evidence["findings_count"] = len(report["findings"])
    evidence["outputs"] = [
        {k: v for k, v in o.items() if k != "findings"}
        | {"findings_count": len(o.get("findings", []))}
        for o in report.get("outputs", [])
    ]
    return evidence


def view(
    conn: Connection,
    runtime: JobRuntime,
    job_id: str,
    reviewer: str,
    *,
    page: int = 1,
    clock: Clock = system_clock,
) -> dict[str, Any]:
    """The job with its findings (page ``page`` of ``PAGE``), evidence and output
    files; audited ``review.viewed``. The first look opens the review (its
    ``opened_at`` starts the review time metered by ``gateway.metering``)."""
    job = get_job(conn, job_id)
    check_review(job, reviewer)
    if job.state not in UNDER_REVIEW:
        raise Conflict(f"job {job.id} is {job.state}; only held and blocked jobs are reviewed")
    open_review(conn, job, clock)
    root = runtime.job_root(job.id)
    report_path = root / "report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    files = []
    for entry in report.get("outputs", []):
        path = root / "outputs" / entry["file"]
        data = path.read_bytes() if path.is_file() else b""
        files.append({"file": entry["file"], "sha256": entry["sha256"], **_content(data)})
    append(
        conn,
        "review.viewed",
        reviewer,
        grant_id=job.grant_id,
        datasets=job.datasets,
        detail={
            "job": job.id,
            # By position, as operators see them: the log goes to providers too.
            "files": [{"output": i, "sha256": f["sha256"]} for i, f in enumerate(files, start=1)],
        },
    )
    outcome = get_outcome(conn, job.id) or StoredOutcome()
    return {
        "job": job,
        "review": get_review(conn, job),
        "outcome": outcome,
        "report": evidence_of(report) if report else {},
        "files": files,
    } | page_of(all_findings(report, outcome), page)


def vote(
    conn: Connection,
    runtime: JobRuntime,
    resolver: GrantResolver | None,
    job_id: str,
    reviewer: str,
    decision: Vote,
    reason: str,
    scope: ScopePolicy | None = None,
    clock: Clock = system_clock,
) -> tuple[Job, Review]:
    """Record one vote and, when it decides the review, end it (see the module docstring)."""
    job = get_job(conn, job_id)
    check_review(job, reviewer)
    _under_review(job)
    review = open_review(conn, job, clock)
    if review.state != ReviewState.OPEN:
        raise Conflict(f"the review of job {job.id} is {review.state}")
    if review.voted(reviewer):
        raise Conflict(f"{reviewer} has already voted on job {job.id}")
    review = add_vote(conn, job, reviewer, decision, reason, clock)
    append(
        conn,
        "review.vote",
        reviewer,
        grant_id=job.grant_id,
        datasets=job.datasets,
        detail={
            "job": job.id,
            "decision": decision.value,
            "reason": reason,
            "job_state": job.state.value,
            "approvals": review.approvals,
            "required": review.required,
        },
    )
    if decision == Vote.DENY:
        job = end_review(conn, job, ReviewState.DENIED, actor=reviewer, clock=clock)
    elif review.approvals >= review.required:
        job = _release(conn, runtime, resolver, job, reviewer, scope, clock)
    return job, get_review(conn, job)


def _release(
    conn: Connection,
    runtime: JobRuntime,
    resolver: GrantResolver | None,
    job: Job,
    reviewer: str,
    scope: ScopePolicy | None,
    clock: Clock,
) -> Job:
    """Approved: the grant must still be active and cover the job's lineage, and the
    ledger must take the cells; else the job is refused, with the finding why."""
    grant = resolve_grant(resolver, conn, job.grant_id)  # GrantUnavailable: nothing released
    if scope is not None and not release_scope(conn, scope, runtime.views, job, grant, reviewer):
        add_finding(conn, job.id, "scope", "the job's lineage is no longer within its grant",
                    clock=clock)  # fmt: skip
        return end_review(conn, job, ReviewState.REFUSED, actor=reviewer,
                          outcome=Outcome.SCOPE_DENIED, clock=clock)  # fmt: skip
    cells, k = load_cells(runtime.job_root(job.id))
    report = JobReport(outputs=(), findings=(), verdict=Verdict.PASS, decision=Decision.RELEASED,
                       cells=cells)  # fmt: skip
    try:
        record_release(
            report,
            runtime.ledger,
            k,
            job_id=job.id,
            grant_id=job.grant_id,
            operator=job.operator,
            query=job.code if job.kind == "sql" else "",
        )
    except CheckError as e:
        add_finding(conn, job.id, "differencing", str(e), clock=clock)
        return end_review(conn, job, ReviewState.REFUSED, actor=reviewer, clock=clock)
    return end_review(conn, job, ReviewState.APPROVED, actor=reviewer, clock=clock)
