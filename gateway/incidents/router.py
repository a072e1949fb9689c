"""Incident routes: administrators and providers record incidents, add the actions taken
and resolve them; administrators and auditors export a period's incidents as a report
for the implementing agency (JSON or CSV)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy import Connection

from gateway.audit import append
from gateway.auth import read, requires, write
from gateway.grants.terms import utc
from gateway.identity import Account, Role
from gateway.incidents.errors import IncidentError
from gateway.incidents.report import Report, as_csv, as_json
from gateway.incidents.schemas import ActionIn, IncidentIn, IncidentOut, ResolveIn
from gateway.incidents.service import IncidentService, incident_service

router = APIRouter(prefix="/v1", tags=["incidents"])
Reader = Annotated[Connection, Depends(read)]
Writer = Annotated[Connection, Depends(write)]


def service(request: Request) -> IncidentService:
    return incident_service(request.app)


Service = Annotated[IncidentService, Depends(service)]
Recorder = Annotated[Account, Depends(requires(Role.ADMIN, Role.PROVIDER))]
Viewer = Annotated[Account, Depends(requires(Role.ADMIN, Role.PROVIDER, Role.AUDITOR))]
Reporter = Annotated[Account, Depends(requires(Role.ADMIN, Role.AUDITOR))]


@router.post("/incidents", response_model=IncidentOut, status_code=201)
def create(body: IncidentIn, account: Recorder, s: Service, conn: Writer) -> IncidentOut:
    """Record an incident (an administrator; a provider, on its own datasets)."""
    found = s.create(
        conn, account, kind=body.kind, severity=body.severity, summary=body.summary,
        datasets=body.datasets, grants=body.grants,
        occurred_at=utc(body.occurred_at) if body.occurred_at else None,
        detected_at=utc(body.detected_at) if body.detected_at else None,
    )  # fmt: skip
    return IncidentOut.of(found)


@router.get("/incidents", response_model=list[IncidentOut])
def list_incidents(account: Viewer, s: Service, conn: Reader) -> list[IncidentOut]:
    return [IncidentOut.of(i) for i in s.visible(conn, account)]


@router.get("/incidents/export", response_model=None)
def export(
    account: Reporter,
    s: Service,
    conn: Writer,
    since: Annotated[datetime, Query()],
    until: Annotated[datetime, Query()],
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Any:
    """The incidents detected in [since, until), as a report for the implementing agency;
    the export is audited (``incident.exported``)."""
    start, end = utc(since), utc(until)
    if start >= end:
        raise IncidentError("the period's start comes before its end")
    report = Report(start, end, s.clock(), tuple(s.find(conn, since=start, until=end)))
    detail = {"since": start.isoformat(), "until": end.isoformat(), "format": format,
              "incidents": len(report.incidents)}  # fmt: skip
    append(conn, "incident.exported", account.name, detail=detail)
    if format == "csv":
        return PlainTextResponse(as_csv(report), media_type="text/csv; charset=utf-8")
    return as_json(report)


@router.get("/incidents/{incident_id}", response_model=IncidentOut)
def show(incident_id: str, account: Viewer, s: Service, conn: Reader) -> IncidentOut:
    return IncidentOut.of(s.shown(conn, account, incident_id))


@router.post("/incidents/{incident_id}/actions", response_model=IncidentOut)
def add_action(
    incident_id: str, body: ActionIn, account: Recorder, s: Service, conn: Writer
) -> IncidentOut:
    """Record an action taken (the reporter, a provider of a touched dataset, an admin)."""
    return IncidentOut.of(s.add_action(conn, account, incident_id, body.action))


@router.post("/incidents/{incident_id}/resolve", response_model=IncidentOut)
def resolve(
    incident_id: str, body: ResolveIn, account: Recorder, s: Service, conn: Writer
) -> IncidentOut:
    return IncidentOut.of(s.resolve(conn, account, incident_id, body.resolution))
