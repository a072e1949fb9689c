"""Grant routes: operators list theirs; administrators and the providers of a
grant's datasets read it, stop it (``suspend``: their own hold), lift their own
stop (``resume``) and revoke it; administrators stop every grant on a dataset at
once. A party lifts only its own stop (``gateway.grants.stops``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy import Connection

from gateway.auth import read, requires, write
from gateway.grants.model import State
from gateway.grants.schemas import (
    EmergencyStopIn,
    EmergencyStopOut,
    GrantOut,
    StateChangeIn,
    StopIn,
)
from gateway.grants.service import GrantService, grant_service
from gateway.identity import Account, Role
from gateway.incidents.service import incident_service

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


Governor = Annotated[Account, Depends(requires(Role.ADMIN, Role.PROVIDER))]


def _rectify_by(request: Request, grants: GrantService, days: int | None) -> datetime | None:
    """The end of the ``days``-th working day from now (gateway.workdays), or None."""
    return None if days is None else request.app.state.calendar.deadline(grants.now(), days).at


@router.post("/grants/{grant_id}/suspend", response_model=GrantOut)
def suspend(
    grant_id: str,
    body: StopIn,
    account: Governor,
    grants: Service,
    conn: Writer,
    request: Request,
) -> GrantOut:
    """Place the caller's stop: an active grant stops at once (its queued jobs are
    cancelled), with a rectification deadline if ``rectify_days`` is given. 409 when the
    caller holds one already."""
    holder = grants.check_govern(account.name, account.roles, grants.get(conn, grant_id))
    by = _rectify_by(request, grants, body.rectify_days)
    return GrantOut.of(
        grants.suspend(conn, grant_id, holder, account.name, body.reason, rectify_by=by)
    )


@router.post("/grants/{grant_id}/resume", response_model=GrantOut)
def resume(
    grant_id: str, body: StateChangeIn, account: Governor, grants: Service, conn: Writer
) -> GrantOut:
    """Lift the caller's own stop; the grant is active again when no stop is left.
    409 when the caller holds none (the message names who does)."""
    holder = grants.check_govern(account.name, account.roles, grants.get(conn, grant_id))
    return GrantOut.of(grants.resume(conn, grant_id, holder, account.name, body.reason))


@router.post("/grants/{grant_id}/revoke", response_model=GrantOut)
def revoke(
    grant_id: str, body: StateChangeIn, account: Governor, grants: Service, conn: Writer
) -> GrantOut:
    """End the grant for good: scope removed, its views and entity maps destroyed,
    every stop on it moot."""
    grants.check_govern(account.name, account.roles, grants.get(conn, grant_id))
    return GrantOut.of(grants.transition(conn, grant_id, State.REVOKED, account.name, body.reason))


@router.post("/datasets/{name}/emergency-stop", response_model=EmergencyStopOut)
def emergency_stop(
    name: str,
    body: EmergencyStopIn,
    account: Annotated[Account, Depends(requires(Role.ADMIN))],
    grants: Service,
    conn: Writer,
    request: Request,
) -> EmergencyStopOut:
    """Place the administrators' stop on every live grant on the dataset (active or
    already suspended): only an administrator lifts it, grant by grant (``resume``).
    The stop is recorded on an incident (the one named, else a new one) and the
    administrators, the dataset's provider and the grants' operators are told."""
    by = _rectify_by(request, grants, body.rectify_days)
    stopped, already = grants.emergency_stop(conn, name, account.name, body.reason, rectify_by=by)
    operators = [grants.get(conn, g).operator for g in stopped]
    incident = incident_service(request.app).record_emergency_stop(
        conn, account, dataset=name, reason=body.reason, stopped=stopped, already=already,
        operators=operators, incident_id=body.incident,
    )  # fmt: skip
    return EmergencyStopOut(
        dataset=name, suspended=stopped, already_held=already, incident=incident.id
    )
