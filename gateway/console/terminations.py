"""The terminations page: proposals to end grants, their basis, decision, and the notice
period's end with the working days left (004 art. 24); each termination is shown to
those who would see it through the REST API (``gateway.terminations.service``).
Reading it changes nothing; decisions go through the API or ``dsr terminations``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from gateway.auth import engine_of
from gateway.console.pages import ConsoleRoute, Viewer, page, render
from gateway.store import read_transaction
from gateway.terminations.service import termination_service

router = APIRouter(route_class=ConsoleRoute)
Reader = Annotated[Viewer, Depends(page("terminations"))]


@router.get("/terminations")
def terminations(request: Request, viewer: Reader) -> Response:
    service = termination_service(request.app)
    now = service.clock()
    with read_transaction(engine_of(request)) as conn:
        found = service.visible(conn, viewer.account)
    rows = [
        {"t": t, "left": service.calendar.working_days_left(t.effective_after, now)}
        for t in reversed(found)
    ]
    return render(request, "terminations.html", viewer, rows=rows)
