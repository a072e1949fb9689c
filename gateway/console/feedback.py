"""Data-quality feedback in the console (001 art. 29, 002 art. 25): operators file and
follow their issues, providers answer those on their datasets, administrators see all.

The rules are ``gateway.feedback.service``'s: the page lists what the viewer may read,
offers the filing form to operators (datasets they hold or held a grant for) and the
answer form to the dataset's provider while the issue takes answers; each POST calls
the same service method as the REST route (audited, notices written). A refusal shows
the page again with the service's message and the status the REST API would give.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import RedirectResponse, Response

from gateway.auth import engine_of
from gateway.console.pages import (
    PREFIX,
    ConsoleRoute,
    Viewer,
    check_form,
    check_text,
    needs,
    page,
    render,
    status_of,
)
from gateway.errors import GatewayError
from gateway.feedback.model import FEEDBACK_ISSUE, MARKS, Issue, State
from gateway.feedback.service import FeedbackService, feedback_service
from gateway.feedback.text import TEXT_MAX, TITLE_MAX
from gateway.identity import Account, Role
from gateway.store import read_transaction

router = APIRouter(route_class=ConsoleRoute)
Feedback = Annotated[Viewer, Depends(page("feedback"))]
Operator = Annotated[Viewer, Depends(needs(Role.OPERATOR))]
Provider = Annotated[Viewer, Depends(needs(Role.PROVIDER))]
MARK_ORDER = [m.value for m in State if m in MARKS]


def answerable(service: FeedbackService, account: Account, issue: Issue) -> bool:
    """Whether ``account`` is offered the answer form: the dataset's provider, while the
    issue takes answers (the service refuses anyone else whatever the page shows)."""
    return (
        account.has(Role.PROVIDER)
        and service.provider_of(issue.dataset) == account.name
        and bool(FEEDBACK_ISSUE.moves[issue.state])
    )


def _page(
    request: Request, viewer: Viewer, *, status: int = 200, problem: str | None = None
) -> Response:
    service = feedback_service(request.app)
    account = viewer.account
    with read_transaction(engine_of(request)) as conn:
        issues = service.visible(conn, account)
        held = (
            service.grants.find(conn, operator=account.name) if account.has(Role.OPERATOR) else []
        )
    datasets = sorted({d for g in held for d in g.datasets})
    rows = [{"issue": i, "answer": answerable(service, account, i)} for i in issues]
    context = {
        "problem": problem,
        "changed": request.query_params.get("changed"),
        "datasets": datasets,
        "marks": MARK_ORDER,
        "title_max": TITLE_MAX,
        "text_max": TEXT_MAX,
    }
    return render(request, "feedback.html", viewer, status=status, rows=rows, **context)


@router.get("/feedback")
def feedback(request: Request, viewer: Feedback) -> Response:
    return _page(request, viewer)


Csrf = Annotated[str, Form(max_length=100)]
Text = Annotated[str, Form(max_length=TEXT_MAX)]


def _done(
    request: Request, viewer: Viewer, issue_id: str | None, error: GatewayError | None
) -> Response:
    if error is not None:
        status = status_of(error)
        if status >= 500:
            raise error
        return _page(request, viewer, status=status, problem=str(error))
    return RedirectResponse(f"{PREFIX}/feedback?changed={quote(issue_id or '', safe='')}", 303)


@router.post("/feedback")
def file_issue(
    request: Request, viewer: Operator, csrf: Csrf = "", dataset: Text = "", title: Text = "",
    description: Text = "", columns: Text = "",
) -> Response:  # fmt: skip
    check_form(request, viewer.session.csrf, csrf)
    check_text(dataset, title, description, columns)
    named = [c.strip() for c in columns.split(",") if c.strip()]
    try:
        with engine_of(request).begin() as conn:
            issue = feedback_service(request.app).file(
                conn, viewer.account.name, dataset=dataset, title=title,
                description=description, columns=named,
            )  # fmt: skip
    except GatewayError as e:
        return _done(request, viewer, None, e)
    return _done(request, viewer, issue.id, None)


@router.post("/feedback/{issue_id}/answer")
def answer_issue(
    request: Request, viewer: Provider, issue_id: str, csrf: Csrf = "", text: Text = "",
    mark: Text = "",
) -> Response:  # fmt: skip
    check_form(request, viewer.session.csrf, csrf)
    check_text(text, mark)
    if mark and mark not in MARK_ORDER:
        return _page(request, viewer, status=422, problem=f"unknown mark {mark!r}")
    chosen = State(mark) if mark else None
    try:
        with engine_of(request).begin() as conn:
            feedback_service(request.app).answer(
                conn, viewer.account, issue_id, text=text, mark=chosen
            )
    except GatewayError as e:
        return _done(request, viewer, None, e)
    return _done(request, viewer, issue_id, None)
