"""Data request routes: operators ask and follow theirs; administrators review the
form; providers review what touches their datasets, may ask the city office (the
administrators) to extend that review, and mark the data provided; a grant supplies
the request. Every step's deadline counts on the statutory calendar (art. 20)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy import Connection

from gateway.auth import read, requires, write
from gateway.identity import Account, Role
from gateway.requests import extensions
from gateway.requests.model import RequestRecord
from gateway.requests.schemas import (
    ExtensionDecisionIn,
    ExtensionIn,
    ExtensionOut,
    FormalReviewIn,
    ProviderReviewIn,
    RequestIn,
    RequestOut,
    SupplyIn,
)
from gateway.requests.service import RequestService, request_service

router = APIRouter(prefix="/v1", tags=["requests"])
Reader = Annotated[Connection, Depends(read)]
Writer = Annotated[Connection, Depends(write)]


def service(request: Request) -> RequestService:
    return request_service(request.app)


Service = Annotated[RequestService, Depends(service)]


def _out(requests: RequestService, record: RequestRecord) -> RequestOut:
    return RequestOut.of(record, requests.deadline(record))


@router.post("/requests", response_model=RequestOut, status_code=201)
def submit(
    body: RequestIn,
    account: Annotated[Account, Depends(requires(Role.OPERATOR))],
    requests: Service,
    conn: Writer,
) -> RequestOut:
    """Ask for data: content, use, scenario, purpose and exactly the columns needed."""
    record = requests.create(
        conn,
        operator=account.name,
        scenario=body.scenario,
        purpose=body.purpose,
        content=body.content,
        use=body.use,
        scopes=[(s.dataset, s.columns) for s in body.datasets],
    )
    return _out(requests, record)


@router.get("/requests", response_model=list[RequestOut])
def list_requests(
    account: Annotated[Account, Depends(requires(Role.OPERATOR, Role.PROVIDER, Role.ADMIN))],
    requests: Service,
    conn: Reader,
    pending: bool = False,
) -> list[RequestOut]:
    """Operators: their own; providers: those touching their datasets; administrators: all.

    ``pending=true``: only those waiting for something the caller may do next.
    Each shows its current step's deadline and whether it is overdue.
    """
    found = requests.visible(conn, account)
    if pending:
        found = [r for r in found if requests.pending_for(account, r)]
    now = requests.now()
    return [RequestOut.of(r, requests.deadline(r, now)) for r in found]


@router.get("/requests/{request_id}", response_model=RequestOut)
def get_request(
    request_id: str,
    account: Annotated[Account, Depends(requires(Role.OPERATOR, Role.PROVIDER, Role.ADMIN))],
    requests: Service,
    conn: Reader,
) -> RequestOut:
    record = requests.get(conn, request_id)
    requests.check_read(account, record)
    return _out(requests, record)


@router.post("/requests/{request_id}/formal-review", response_model=RequestOut)
def formal_review(
    request_id: str,
    body: FormalReviewIn,
    account: Annotated[Account, Depends(requires(Role.ADMIN))],
    requests: Service,
    conn: Writer,
) -> RequestOut:
    """Pass, or reject with the reason and its legal basis (5 working days)."""
    record = requests.formal_review(
        conn,
        request_id,
        account.name,
        passed=body.decision == "pass",
        reason=body.reason,
        legal_basis=body.legal_basis,
    )
    return _out(requests, record)


@router.post("/requests/{request_id}/provider-review", response_model=RequestOut)
def provider_review(
    request_id: str,
    body: ProviderReviewIn,
    account: Annotated[Account, Depends(requires(Role.PROVIDER))],
    requests: Service,
    conn: Writer,
) -> RequestOut:
    """Approve, or reject with the reason and its legal basis (10 working days)."""
    record = requests.provider_review(
        conn,
        request_id,
        account.name,
        approved=body.decision == "approve",
        reason=body.reason,
        legal_basis=body.legal_basis,
    )
    return _out(requests, record)


@router.post("/requests/{request_id}/supply", response_model=RequestOut, status_code=201)
def supply(
    request_id: str,
    body: SupplyIn,
    account: Annotated[Account, Depends(requires(Role.ADMIN, Role.PROVIDER))],
    requests: Service,
    conn: Writer,
) -> RequestOut:
    """Issue the grant (20 working days); the request then names it."""
    record = requests.supply(
        conn,
        request_id,
        account,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        days=body.days,
    )
    return _out(requests, record)


@router.post("/requests/{request_id}/provide", response_model=RequestOut)
def provide(
    request_id: str,
    account: Annotated[Account, Depends(requires(Role.PROVIDER))],
    requests: Service,
    conn: Writer,
) -> RequestOut:
    """The data is on the city platform (20 working days from approval); the city office's
    delivery (10 working days) starts."""
    return _out(requests, requests.provide(conn, request_id, account))


@router.get("/requests/{request_id}/extensions", response_model=list[ExtensionOut])
def list_extensions(
    request_id: str,
    account: Annotated[Account, Depends(requires(Role.OPERATOR, Role.PROVIDER, Role.ADMIN))],
    requests: Service,
    conn: Reader,
) -> list[ExtensionOut]:
    """The request's extension asks and their decisions, oldest first."""
    requests.check_read(account, requests.get(conn, request_id))
    return [ExtensionOut.of(e) for e in extensions.extensions(conn, request_id)]


@router.post("/requests/{request_id}/extensions", response_model=ExtensionOut, status_code=201)
def ask_extension(
    request_id: str,
    body: ExtensionIn,
    account: Annotated[Account, Depends(requires(Role.PROVIDER))],
    requests: Service,
    conn: Writer,
) -> ExtensionOut:
    """Ask for 1 to 10 more working days of provider review, with the reason (once)."""
    made = extensions.ask(requests, conn, request_id, account, days=body.days, reason=body.reason)
    return ExtensionOut.of(made)


@router.post(
    "/requests/{request_id}/extensions/{extension_id}/decision", response_model=ExtensionOut
)
def decide_extension(
    request_id: str,
    extension_id: str,
    body: ExtensionDecisionIn,
    account: Annotated[Account, Depends(requires(Role.ADMIN))],
    requests: Service,
    conn: Writer,
) -> ExtensionOut:
    """The city office approves or refuses an extension, with its reason."""
    decided = extensions.decide(
        requests, conn, request_id, extension_id, account,
        approved=body.decision == "approve", reason=body.reason,
    )  # fmt: skip
    return ExtensionOut.of(decided)
