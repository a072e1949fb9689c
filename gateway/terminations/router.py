"""Termination routes (004 art. 24, 33): providers and administrators propose ending a
grant with a basis; its operator requests ending supply with the list of its data;
administrators approve or refuse; the proposer withdraws; everyone concerned reads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy import Connection

from gateway.auth import read, requires, write
from gateway.identity import Account, Role
from gateway.terminations.model import TerminationRecord
from gateway.terminations.schemas import DecisionIn, ProposeIn, RequestIn, TerminationOut
from gateway.terminations.service import TerminationService, termination_service

router = APIRouter(prefix="/v1", tags=["terminations"])
Reader = Annotated[Connection, Depends(read)]
Writer = Annotated[Connection, Depends(write)]


def service(request: Request) -> TerminationService:
    return termination_service(request.app)


Service = Annotated[TerminationService, Depends(service)]
Concerned = Annotated[Account, Depends(requires(Role.ADMIN, Role.PROVIDER, Role.OPERATOR))]
Governor = Annotated[Account, Depends(requires(Role.ADMIN, Role.PROVIDER))]
Admin = Annotated[Account, Depends(requires(Role.ADMIN))]


def _out(s: TerminationService, t: TerminationRecord) -> TerminationOut:
    return TerminationOut.of(t, s.calendar, s.clock())


@router.post("/grants/{grant_id}/terminations", response_model=TerminationOut, status_code=201)
def propose(
    grant_id: str, body: ProposeIn, account: Governor, terms: Service, conn: Writer
) -> TerminationOut:
    """Propose ending the grant (an administrator, or a provider of its datasets), with a
    reason and a legal basis; it takes effect only approved, after the notice period."""
    return _out(terms, terms.propose(conn, account, grant_id, body.reason, body.legal_basis))


@router.post(
    "/grants/{grant_id}/termination-requests", response_model=TerminationOut, status_code=201
)
def request_end(
    grant_id: str,
    body: RequestIn,
    account: Annotated[Account, Depends(requires(Role.OPERATOR))],
    terms: Service,
    conn: Writer,
) -> TerminationOut:
    """The grant's operator asks to end supply, listing every dataset of the grant."""
    return _out(terms, terms.request(conn, account, grant_id, body.datasets, body.reason))


@router.get("/terminations", response_model=list[TerminationOut])
def list_terminations(account: Concerned, terms: Service, conn: Reader) -> list[TerminationOut]:
    """Administrators: every termination; providers: those on their datasets; operators:
    those of their grants."""
    return [_out(terms, t) for t in terms.visible(conn, account)]


@router.get("/terminations/{termination_id}", response_model=TerminationOut)
def show(termination_id: str, account: Concerned, terms: Service, conn: Reader) -> TerminationOut:
    return _out(terms, terms.shown(conn, account, termination_id))


@router.post("/terminations/{termination_id}/approve", response_model=TerminationOut)
def approve(
    termination_id: str, body: DecisionIn, account: Admin, terms: Service, conn: Writer
) -> TerminationOut:
    """Approve (the data authority): everyone concerned is told; the grant ends when the
    notice period is over (at once if it is already)."""
    return _out(terms, terms.approve(conn, account, termination_id, body.reason))


@router.post("/terminations/{termination_id}/refuse", response_model=TerminationOut)
def refuse(
    termination_id: str, body: DecisionIn, account: Admin, terms: Service, conn: Writer
) -> TerminationOut:
    return _out(terms, terms.refuse(conn, account, termination_id, body.reason))


@router.post("/terminations/{termination_id}/withdraw", response_model=TerminationOut)
def withdraw(
    termination_id: str, body: DecisionIn, account: Concerned, terms: Service, conn: Writer
) -> TerminationOut:
    """The proposer withdraws its own before it takes effect."""
    return _out(terms, terms.withdraw(conn, account, termination_id, body.reason))
