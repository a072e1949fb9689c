"""The product registration page (``gateway.products``, registration measures 001 art. 13).

Administrators (the registration body) and auditors see the queue: every
application not yet decided, oldest first, with the end of its publicity in
working days where it is publicised. Operators see their own applications
(every state, refusals with their reason and basis) and their registered
products with validity and the day the renewal window opens. Reading it
changes nothing; the steps are taken over REST or ``dsr products``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from gateway.auth import engine_of
from gateway.console.pages import ConsoleRoute, Viewer, page, render
from gateway.identity import Role
from gateway.products.codes import renewal_opens
from gateway.products.model import OPEN, Objection, list_products, list_registrations, objections_of
from gateway.store import read_transaction

router = APIRouter(route_class=ConsoleRoute)
Reader = Annotated[Viewer, Depends(page("products"))]


@router.get("/products")
def products(request: Request, viewer: Reader) -> Response:
    now = request.app.state.clock()
    calendar = request.app.state.calendar
    registry = viewer.has(Role.ADMIN, Role.AUDITOR)
    with read_transaction(engine_of(request)) as conn:
        if registry:
            found = [r for r in list_registrations(conn) if r.state in OPEN]
        else:
            found = list_registrations(conn, applicant=viewer.account.name)
        pending = {
            r.id: sum(o.state == Objection.PENDING for o in objections_of(conn, r.id))
            for r in found
        }
        own = [p for p in list_products(conn) if p.operator == viewer.account.name]
    rows: list[dict[str, Any]] = []
    for r in found:
        ends = r.publicity_ends_at
        left = calendar.working_days_left(ends, now) if ends is not None else None
        rows.append({"r": r, "left": left, "pending": pending[r.id]})
    products_rows = [{"p": p, "renewal": renewal_opens(p.valid_until)} for p in own]
    return render(
        request, "products.html", viewer, registry=registry, rows=rows, products=products_rows
    )
