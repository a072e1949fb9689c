"""The incidents page: security incidents the viewer may see (administrators and auditors
every one, a provider those it reported or on its datasets), newest first, with their
actions (``gateway.incidents.service``). Reading it changes nothing."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from gateway.auth import engine_of
from gateway.console.pages import ConsoleRoute, Viewer, page, render
from gateway.incidents.service import incident_service
from gateway.store import read_transaction

router = APIRouter(route_class=ConsoleRoute)
Reader = Annotated[Viewer, Depends(page("incidents"))]


@router.get("/incidents")
def incidents(request: Request, viewer: Reader) -> Response:
    service = incident_service(request.app)
    with read_transaction(engine_of(request)) as conn:
        found = service.visible(conn, viewer.account)
    return render(request, "incidents.html", viewer, rows=list(reversed(found)))
