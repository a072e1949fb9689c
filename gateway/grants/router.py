"""Grant routes: operators list theirs; administrators and the providers of a
grant's datasets read it, suspend, resume and revoke it; administrators stop
every grant on a dataset at once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy import Connection

from gateway.auth import read, requires, write
from gateway.grants.model import State
from gateway.grants.schemas import EmergencyStopOut, GrantOut, StateChangeIn
from gateway.grants.service import GrantService, grant_service
from gateway.identity import Account, Role

router = APIRouter(prefix="/v1", tags=["grants"])
Reader = Annotated[Connection, Depends(read)]
Writer = Annotated[Connection, Depends(write)]


def service(request: Request) -> GrantService:
    return grant_service(request.app)


Service = Annotated[GrantService, Depends(service)]


@router.get("/grants", response_model=list[GrantOut])
def list_grants(
    account: Annotated[Account, Depends(requires(Role.OPERATOR, Role.PROVIDER, Role.ADMIN))],
    grants: Service,
    conn: Reader,
) -> list[GrantOut]:
    """Administrators: every grant; providers: grants on their datasets; operators: their own."""
    return [GrantOut.of(g) for g in grants.visible(conn, account)]


@router.get("/grants/{grant_id}", response_model=GrantOut)
def get_grant(
    grant_id: str,
    account: Annotated[Account, Depends(requires(Role.ADMIN, Role.PROVIDER))],
    grants: Service,
    conn: Reader,
) -> GrantOut:
    grant = grants.get(conn, grant_id)
    grants.check_govern(account.name, account.roles, grant)
    return GrantOut.of(grant)


def _change(
    grants: GrantService, conn: Connection, account: Account, grant_id: str, to: State, why: str
) -> GrantOut:
    grants.check_govern(account.name, account.roles, grants.get(conn, grant_id))
    return GrantOut.of(grants.transition(conn, grant_id, to, account.name, why))


Governor = Annotated[Account, Depends(requires(Role.ADMIN, Role.PROVIDER))]


@router.post("/grants/{grant_id}/suspend", response_model=GrantOut)
def suspend(
    grant_id: str, body: StateChangeIn, account: Governor, grants: Service, conn: Writer
) -> GrantOut:
    """Stop the grant at once (its queued jobs are cancelled); ``resume`` restores it."""
    return _change(grants, conn, account, grant_id, State.SUSPENDED, body.reason)


@router.post("/grants/{grant_id}/resume", response_model=GrantOut)
def resume(
    grant_id: str, body: StateChangeIn, account: Governor, grants: Service, conn: Writer
) -> GrantOut:
    return _change(grants, conn, account, grant_id, State.ACTIVE, body.reason)


@router.post("/grants/{grant_id}/revoke", response_model=GrantOut)
def revoke(
    grant_id: str, body: StateChangeIn, account: Governor, grants: Service, conn: Writer
) -> GrantOut:
    """End the grant for good: scope removed, its views and entity maps destroyed."""
    return _change(grants, conn, account, grant_id, State.REVOKED, body.reason)


@router.post("/datasets/{name}/emergency-stop", response_model=EmergencyStopOut)
def emergency_stop(
    name: str,
    body: StateChangeIn,
    account: Annotated[Account, Depends(requires(Role.ADMIN))],
    grants: Service,
    conn: Writer,
) -> EmergencyStopOut:
    """Suspend every active grant on the dataset."""
    suspended = grants.emergency_stop(conn, name, account.name, body.reason)
    return EmergencyStopOut(dataset=name, suspended=suspended)
