"""Security reviewers: the queue of held and blocked jobs, the evidence with the values,
and votes with a written reason."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import Connection

from gateway.auth import read, requires, write
from gateway.identity import Account, Role
from gateway.jobs.router import runtime_of, scope_policy
from gateway.jobs.worker import app_clock
from gateway.reviews import service
from gateway.reviews.schemas import QueueItem, ReviewOut, VoteIn, VoteOut, VoteResult

router = APIRouter(prefix="/v1/reviews", tags=["reviews"])
Reviewer = Annotated[Account, Depends(requires(Role.REVIEWER))]


@router.get("", response_model=list[QueueItem])
def review_queue(reviewer: Reviewer, conn: Annotated[Connection, Depends(read)]) -> list[QueueItem]:
    return [
        QueueItem(
            job=job.id,
            operator=job.operator,
            grant=job.grant_id,
            kind=job.kind,
            state=job.state.value,
            verdict=outcome.verdict,
            rules=outcome.rules,
            submitted_at=job.submitted_at,
            finished_at=job.finished_at,
            approvals=review.approvals,
            required=review.required,
        )
        for job, review, outcome in service.queue(conn, reviewer.name)
    ]


@router.get("/{job_id}", response_model=ReviewOut)
def review_one(
    job_id: str,
    reviewer: Reviewer,
    conn: Annotated[Connection, Depends(write)],
    request: Request,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> ReviewOut:
    """The evidence of one job; its findings ``PAGE`` at a time (``?page=``)."""
    seen = service.view(
        conn, runtime_of(request), job_id, reviewer.name, page=page, clock=app_clock(request.app)
    )
    job, review, outcome = seen["job"], seen["review"], seen["outcome"]
    return ReviewOut(
        job=job.id,
        operator=job.operator,
        grant=job.grant_id,
        kind=job.kind,
        state=job.state.value,
        outcome=job.outcome,
        code=job.code,
        code_sha256=job.code_sha256,
        review_state=review.state.value,
        approvals=review.approvals,
        required=review.required,
        votes=[VoteOut.of(v) for v in review.votes],
        findings=seen["findings"],
        findings_total=seen["findings_total"],
        page=seen["page"],
        pages=seen["pages"],
        evidence=seen["report"],
        files=seen["files"],
        dataset_versions=dict(outcome.dataset_versions),
        policy_versions=dict(outcome.policy_versions),
    )


@router.post("/{job_id}/votes", response_model=VoteResult, status_code=201)
def cast_vote(
    job_id: str,
    body: VoteIn,
    reviewer: Reviewer,
    conn: Annotated[Connection, Depends(write)],
    request: Request,
) -> VoteResult:
    job, review = service.vote(
        conn,
        runtime_of(request),
        getattr(request.app.state, "grant_resolver", None),
        job_id,
        reviewer.name,
        body.decision,
        body.reason,
        scope_policy(request),
        app_clock(request.app),
    )
    return VoteResult(
        job=job.id,
        job_state=job.state.value,
        outcome=job.outcome,
        review_state=review.state.value,
        approvals=review.approvals,
        required=review.required,
    )
