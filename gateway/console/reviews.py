"""Reviewers' pages: the queue of held and blocked outputs, one job's findings next to
its output with the named cells marked (a page of findings at a time, ``?page=``,
so a job with tens of thousands of findings still renders at once), and the vote
with a written reason.

The rules are ``gateway.reviews.service``'s, shown, not re-implemented: the
queue leaves out the reviewer's own jobs, opening a job is audited
(``review.viewed``), a held job needs one approval and a blocked one two
from different reviewers, and one denial ends the review.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from gateway.auth import engine_of
from gateway.console.pages import PREFIX, ConsoleRoute, Viewer, check_form, check_text, page, render
from gateway.console.tables import Mark, job_level, marks_of, show
from gateway.jobs.errors import NotFound
from gateway.jobs.model import get_job
from gateway.jobs.router import runtime_of, scope_policy
from gateway.jobs.worker import app_clock
from gateway.reviews import service
from gateway.reviews.model import Vote, get_review
from gateway.reviews.schemas import VoteIn
from gateway.store import read_transaction

router = APIRouter(route_class=ConsoleRoute)
Reviewer = Annotated[Viewer, Depends(page("reviews"))]


@router.get("/reviews")
def queue(request: Request, viewer: Reviewer, voted: str | None = None) -> Response:
    me = viewer.account.name
    with read_transaction(engine_of(request)) as conn:
        items = service.queue(conn, me)
        notice = None
        if voted:
            try:
                job = get_job(conn, voted)
            except NotFound:
                job = None
            review = get_review(conn, job) if job is not None else None
            if job is not None and review and review.voted(me):
                notice = {
                    "job": job.id,
                    "state": job.state.value,
                    "approvals": review.approvals,
                    "required": review.required,
                }
    rows = [
        {
            "job": job,
            "review": review,
            "verdict": outcome.verdict,
            "rules": outcome.rules,
        }
        for job, review, outcome in items
    ]
    return render(request, "reviews.html", viewer, rows=rows, notice=notice)


def _detail(
    request: Request,
    viewer: Viewer,
    job_id: str,
    *,
    status: int = 200,
    problem: str | None = None,
    reason: str = "",
    page: int = 1,
) -> Response:
    me = viewer.account.name
    with engine_of(request).begin() as conn:  # opening the evidence is audited
        seen = service.view(
            conn, runtime_of(request), job_id, me, page=page, clock=app_clock(request.app)
        )
    job, review, outcome = seen["job"], seen["review"], seen["outcome"]
    first = (seen["page"] - 1) * service.PAGE
    marks = marks_of(seen["findings"], start=first + 1)
    by_file: dict[str | None, list[Mark]] = {}
    for m in marks:
        by_file.setdefault(m.file, []).append(m)
    files = [show(f, by_file.get(f["file"], [])) for f in seen["files"]]
    voted = review.voted(me)
    context: dict[str, Any] = {
        "job": job,
        "review": review,
        "verdict": outcome.verdict,
        "marks": marks,
        "files": files,
        "job_marks": job_level(marks, [f.file for f in files]),
        "needed": max(review.required - review.approvals, 0),
        "voted": voted,
        "policy_versions": dict(outcome.policy_versions),
        "findings_page": {
            "page": seen["page"],
            "pages": seen["pages"],
            "total": seen["findings_total"],
            "first": first + 1 if seen["findings"] else 0,
            "last": first + len(seen["findings"]),
        },
        "problem": problem,
        "reason": reason,
    }
    return render(request, "review.html", viewer, status=status, **context)


@router.get("/reviews/{job_id}")
def detail(
    request: Request,
    viewer: Reviewer,
    job_id: str,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    """One job's evidence; its findings ``service.PAGE`` at a time (``?page=``)."""
    return _detail(request, viewer, job_id, page=page)


@router.post("/reviews/{job_id}/vote")
def vote(
    request: Request,
    viewer: Reviewer,
    job_id: str,
    csrf: Annotated[str, Form(max_length=100)] = "",
    decision: Annotated[str, Form(max_length=20)] = "",
    reason: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    check_form(request, viewer.session.csrf, csrf)
    check_text(decision, reason)
    if decision not in {v.value for v in Vote}:
        return _detail(request, viewer, job_id, status=422, problem="review.decision_missing",
                       reason=reason)  # fmt: skip
    try:
        body = VoteIn(decision=Vote(decision), reason=reason)
    except ValidationError:
        return _detail(request, viewer, job_id, status=422, problem="review.reason_short",
                       reason=reason)  # fmt: skip
    with engine_of(request).begin() as conn:
        service.vote(
            conn,
            runtime_of(request),
            getattr(request.app.state, "grant_resolver", None),
            job_id,
            viewer.account.name,
            body.decision,
            body.reason,
            scope_policy(request),
            app_clock(request.app),
        )
    return RedirectResponse(f"{PREFIX}/reviews?voted={quote(job_id, safe='')}", 303)
