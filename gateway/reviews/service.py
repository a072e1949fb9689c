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
- an approved SQL product's cells enter the differencing ledger
  (``checking.record_release``, re-checked atomically); if the ledger now
  refuses them the job stays, or becomes, blocked with that finding.

A review has its own state (``TRANSITIONS``); its one ``transition()`` moves
the review and, in the same transaction, the job (whose ``job.state`` event
records both). The ledger is a separate store, written before the gateway's
transaction commits: if that transaction then failed, the ledger would hold
cells of a job never released, which only makes later checks stricter.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.audit import append
from gateway.jobs.errors import Conflict, Forbidden, InvalidTransition
from gateway.jobs.findings import RELEASE_STAGE, ranked
from gateway.jobs.model import UNDER_REVIEW, Job, Outcome, State, get_job, list_jobs
from gateway.jobs.model import transition as job_transition
from gateway.jobs.service import (
    GrantResolver,
    add_finding,
    get_outcome,
    release_scope,
    resolve_grant,
)
from gateway.jobs.worker import JobRuntime, load_cells
from gateway.scope import ScopePolicy
from gateway.store.tables import review_votes, reviews
from sandbox.checking import JobReport, record_release
from sandbox.checks import Verdict
from sandbox.errors import CheckError


class ReviewState(StrEnum):
    """Values are stored: never change them."""

    OPEN = "open"
    APPROVED = "approved"
    DENIED = "denied"
    REFUSED = "refused"  # approved, but the differencing ledger refused the release


class Vote(StrEnum):
    APPROVE = "approve"
    DENY = "deny"


TRANSITIONS: dict[ReviewState, set[ReviewState]] = {
    ReviewState.OPEN: {ReviewState.APPROVED, ReviewState.DENIED, ReviewState.REFUSED},
    ReviewState.APPROVED: set(),
    ReviewState.DENIED: set(),
    ReviewState.REFUSED: set(),
}
# What the job becomes when its review ends so.
_JOB_MOVE = {
    ReviewState.APPROVED: (State.RELEASED, Outcome.REVIEW_APPROVED),
    ReviewState.DENIED: (State.DENIED, Outcome.REVIEW_DENIED),
    ReviewState.REFUSED: (State.BLOCKED, Outcome.LEDGER_REFUSED),
}


PAGE = 200  # findings in one page of a review

# Approved, then refused at release: nothing left for reviewers to decide.
REFUSED_AT_RELEASE = frozenset({Outcome.LEDGER_REFUSED, Outcome.SCOPE_DENIED})


class SelfReview(Forbidden):
    """A reviewer tried to review a job they submitted."""


@dataclass(frozen=True)
class Review:
    job_id: str
    state: ReviewState
    required: int
    votes: tuple[dict[str, Any], ...]

    @property
    def approvals(self) -> int:
        return sum(v["decision"] == Vote.APPROVE for v in self.votes)


def required_approvals(job: Job) -> int:
    """One approval for a held job; two different reviewers to override a blocked one."""
    return 2 if job.state == State.BLOCKED else 1


def can_review(job: Job, reviewer: str) -> bool:
    """Rule: nobody reviews a job they submitted."""
    return job.operator != reviewer


def check_review(job: Job, reviewer: str) -> None:
    """Rule: nobody reviews a job they submitted (raises ``SelfReview``)."""
    if not can_review(job, reviewer):
        raise SelfReview(f"{reviewer} submitted job {job.id} and cannot review it")


def _under_review(job: Job) -> None:
    if job.state not in UNDER_REVIEW or job.outcome in REFUSED_AT_RELEASE:
        raise Conflict(f"job {job.id} is {job.state} ({job.outcome}); it is not under review")


def get_review(conn: Connection, job: Job) -> Review:
    """The job's review (an open one, not yet stored, if nobody has voted)."""
    row = conn.execute(sa.select(reviews).where(reviews.c.job_id == job.id)).first()
    votes = tuple(
        dict(r._mapping)
        for r in conn.execute(
            sa.select(review_votes.c.reviewer, review_votes.c.decision, review_votes.c.reason,
                      review_votes.c.at)
            .where(review_votes.c.job_id == job.id)
            .order_by(review_votes.c.id)
        )
    )  # fmt: skip
    if row is None:
        return Review(job.id, ReviewState.OPEN, required_approvals(job), votes)
    return Review(job.id, ReviewState(row.state), int(row.required), votes)


def _open(conn: Connection, job: Job) -> Review:
    review = get_review(conn, job)
    exists = conn.execute(sa.select(reviews.c.job_id).where(reviews.c.job_id == job.id)).first()
    if exists is None:
        conn.execute(
            sa.insert(reviews).values(
                job_id=job.id,
                state=ReviewState.OPEN.value,
                required=review.required,
                opened_at=datetime.now(UTC),
            )
        )
    return review


def transition(
    conn: Connection, job: Job, to: ReviewState, *, actor: str, outcome: Outcome | None = None
) -> Job:
    """End the job's review as ``to`` and move the job accordingly, in one transaction
    (``outcome``: why, where it is not the usual one for ``to``)."""
    review = get_review(conn, job)
    if to not in TRANSITIONS[review.state]:
        raise InvalidTransition(f"the review of job {job.id} is {review.state}")
    done = conn.execute(
        sa.update(reviews)
        .where(reviews.c.job_id == job.id, reviews.c.state == review.state.value)
        .values(state=to.value, closed_at=datetime.now(UTC))
    )
    if done.rowcount != 1:
        raise InvalidTransition(f"the review of job {job.id} changed meanwhile")
    state, usual = _JOB_MOVE[to]
    return job_transition(
        conn,
        job.id,
        state,
        actor=actor,
        outcome=outcome or usual,
        detail={"review": to.value, "approvals": review.approvals, "required": review.required},
    )


def queue(conn: Connection, reviewer: str) -> list[tuple[Job, Review, dict[str, Any]]]:
    """Held and blocked jobs still under review, other than the reviewer's own."""
    found = []
    for job in list_jobs(conn, states=UNDER_REVIEW):
        if job.outcome in REFUSED_AT_RELEASE or not can_review(job, reviewer):
            continue
        found.append((job, get_review(conn, job), get_outcome(conn, job.id) or {}))
    return found


def _content(data: bytes) -> dict[str, str]:
    try:
        return {"encoding": "utf-8", "content": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"encoding": "base64", "content": base64.b64encode(data).decode()}


def all_findings(report: dict[str, Any], outcome: dict[str, Any]) -> list[dict[str, Any]]:
    """Every finding of a job, with its file, place and full message, the worst first:
    the stored report's (the outcome row keeps only the worst ``STORED``) and those
    added when a review ended (scope, differencing at approval)."""
    if not report:
        return [dict(f) for f in ranked(outcome.get("findings", []))]
    found: list[dict[str, Any]] = list(report.get("findings", []))
    for entry in report.get("outputs", []):
        found += entry.get("findings", [])
    found += [f for f in outcome.get("findings", []) if f.get("stage") == RELEASE_STAGE]
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
    conn: Connection, runtime: JobRuntime, job_id: str, reviewer: str, *, page: int = 1
) -> dict[str, Any]:
    """The job with its findings (page ``page`` of ``PAGE``), evidence and output
    files; audited ``review.viewed``."""
    job = get_job(conn, job_id)
    check_review(job, reviewer)
    if job.state not in UNDER_REVIEW:
        raise Conflict(f"job {job.id} is {job.state}; only held and blocked jobs are reviewed")
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
    outcome = get_outcome(conn, job.id) or {}
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
) -> tuple[Job, Review]:
    """Record one vote and, when it decides the review, end it (see the module docstring)."""
    job = get_job(conn, job_id)
    check_review(job, reviewer)
    _under_review(job)
    review = _open(conn, job)
    if review.state != ReviewState.OPEN:
        raise Conflict(f"the review of job {job.id} is {review.state}")
    if any(v["reviewer"] == reviewer for v in review.votes):
        raise Conflict(f"{reviewer} has already voted on job {job.id}")
    conn.execute(
        sa.insert(review_votes).values(
            job_id=job.id,
            reviewer=reviewer,
            decision=decision.value,
            reason=reason,
            at=datetime.now(UTC),
        )
    )
    review = get_review(conn, job)
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
        job = transition(conn, job, ReviewState.DENIED, actor=reviewer)
    elif review.approvals >= review.required:
        job = _release(conn, runtime, resolver, job, reviewer, scope)
    return job, get_review(conn, job)


def _release(
    conn: Connection,
    runtime: JobRuntime,
    resolver: GrantResolver | None,
    job: Job,
    reviewer: str,
    scope: ScopePolicy | None,
) -> Job:
    """Approved: the grant must still be active and cover the job's lineage, and the
    ledger must take the cells."""
    grant = resolve_grant(resolver, conn, job.grant_id)  # GrantUnavailable: nothing released
    if scope is not None and not release_scope(conn, scope, runtime.views, job, grant, reviewer):
        add_finding(
            conn,
            job.id,
            {"rule": "scope", "verdict": Verdict.FAIL.value, "file": None, "row": None,
             "column": None, "message": "the job's lineage is no longer within its grant"},
        )  # fmt: skip
        return transition(
            conn, job, ReviewState.REFUSED, actor=reviewer, outcome=Outcome.SCOPE_DENIED
        )
    cells, k = load_cells(runtime.job_root(job.id))
    report = JobReport(outputs=(), findings=(), verdict=Verdict.PASS, decision="released",
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
        add_finding(
            conn,
            job.id,
            {"rule": "differencing", "verdict": Verdict.FAIL.value, "file": None,
             "row": None, "column": None, "message": str(e)},
        )  # fmt: skip
        return transition(conn, job, ReviewState.REFUSED, actor=reviewer)
    return transition(conn, job, ReviewState.APPROVED, actor=reviewer)
