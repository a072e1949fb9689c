"""Data-quality feedback over HTTP (``/v1/feedback``).

Operators file issues on datasets they hold or held a grant for; the dataset's
provider answers; operators, providers and administrators list and read the
issues they may (``FeedbackService.can_read``); an issue they may not read
answers 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import Connection

from gateway.auth import read, requires, write
from gateway.feedback.model import State
from gateway.feedback.schemas import AnswerIn, IssueIn, IssueOut
from gateway.feedback.service import FeedbackService, feedback_service
from gateway.identity import Account, Role

router = APIRouter(prefix="/v1/feedback", tags=["data-quality feedback"])
Operator = Annotated[Account, Depends(requires(Role.OPERATOR))]
Provider = Annotated[Account, Depends(requires(Role.PROVIDER))]
Reader = Annotated[Account, Depends(requires(Role.OPERATOR, Role.PROVIDER, Role.ADMIN))]
Read = Annotated[Connection, Depends(read)]
Write = Annotated[Connection, Depends(write)]


def service(request: Request) -> FeedbackService:
    return feedback_service(request.app)


Service = Annotated[FeedbackService, Depends(service)]


@router.post("", response_model=IssueOut, status_code=201)
def file(body: IssueIn, operator: Operator, conn: Write, feedback: Service) -> IssueOut:
    """File a data-quality issue on a dataset you hold or held a grant for."""
    issue = feedback.file(
        conn, operator.name, dataset=body.dataset, title=body.title,
        description=body.description, columns=body.columns,
    )  # fmt: skip
    return IssueOut.of(issue)


@router.get("", response_model=list[IssueOut])
def listing(
    account: Reader,
    conn: Read,
    feedback: Service,
    dataset: Annotated[str | None, Query(max_length=200)] = None,
    state: State | None = None,
) -> list[IssueOut]:
    """Yours (operators), those on your datasets (providers), every one (administrators)."""
    return [IssueOut.of(i) for i in feedback.visible(conn, account, dataset=dataset, state=state)]


@router.get("/{issue_id}", response_model=IssueOut)
def show(issue_id: str, account: Reader, conn: Read, feedback: Service) -> IssueOut:
    return IssueOut.of(feedback.get(conn, account, issue_id))


@router.post("/{issue_id}/answers", response_model=IssueOut, status_code=201)
def answer(
    issue_id: str, body: AnswerIn, provider: Provider, conn: Write, feedback: Service
) -> IssueOut:
    """Answer an issue on your dataset, marking it will_correct, resolved or not_an_issue."""
    mark = State(body.mark) if body.mark else None
    return IssueOut.of(feedback.answer(conn, provider, issue_id, text=body.text, mark=mark))
