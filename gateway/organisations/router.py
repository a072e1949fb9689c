"""Organisations over HTTP (``/v1/organisations``).

Administrators create organisations and assign accounts (``PUT``/``DELETE``
on a member); every signed-in account lists and reads its own organisation,
administrators every one. An organisation the caller may not read answers
404, like one that does not exist.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import Connection

from gateway.auth import ANY_ROLE, read, requires, write
from gateway.identity import Account, Role
from gateway.organisations import service
from gateway.organisations.errors import UnknownOrganisation
from gateway.organisations.schemas import MembershipOut, OrganisationIn, OrganisationOut

router = APIRouter(prefix="/v1/organisations", tags=["organisations"])
Admin = Annotated[Account, Depends(requires(Role.ADMIN))]
Anyone = Annotated[Account, Depends(requires(*ANY_ROLE))]
Read = Annotated[Connection, Depends(read)]
Write = Annotated[Connection, Depends(write)]


@router.post("", response_model=OrganisationOut, status_code=201)
def create(body: OrganisationIn, admin: Admin, conn: Write, request: Request) -> OrganisationOut:
    made = service.create_organisation(
        conn, body.id, body.name, body.kind, actor=admin.name, now=request.app.state.clock()
    )
    return OrganisationOut.of(made)


@router.get("", response_model=list[OrganisationOut])
def listing(account: Anyone, conn: Read) -> list[OrganisationOut]:
    """Every organisation (administrators); the caller's own, if any (everyone else)."""
    return [OrganisationOut.of(o) for o in service.visible(conn, account)]


@router.get("/{organisation_id}", response_model=OrganisationOut)
def show(organisation_id: str, account: Anyone, conn: Read) -> OrganisationOut:
    return OrganisationOut.of(service.readable(conn, account, organisation_id))


@router.put("/{organisation_id}/members/{account_name}", response_model=MembershipOut)
def add_member(
    organisation_id: str, account_name: str, admin: Admin, conn: Write, request: Request
) -> MembershipOut:
    """Make the account a member (moving it from any other organisation)."""
    previous = service.assign(
        conn, account_name, organisation_id, actor=admin.name, now=request.app.state.clock()
    )
    return MembershipOut(account=account_name, organisation=organisation_id, previous=previous)


@router.delete("/{organisation_id}/members/{account_name}", status_code=204)
def remove_member(
    organisation_id: str, account_name: str, admin: Admin, conn: Write, request: Request
) -> Response:
    """The account leaves the organisation (it belongs to none afterwards)."""
    if account_name not in service.get_organisation(conn, organisation_id).members:
        raise UnknownOrganisation(f"{account_name} is not a member of {organisation_id}")
    service.assign(conn, account_name, None, actor=admin.name, now=request.app.state.clock())
    return Response(status_code=204)
