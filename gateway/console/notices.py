"""The notices page: what the gateway told the viewer or the viewer's roles, newest first
(``gateway.notices``). Every role has one; reading it changes nothing."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from gateway.auth import engine_of
from gateway.console.pages import ConsoleRoute, Viewer, page, render
from gateway.notices.service import notices_for
from gateway.store import read_transaction

router = APIRouter(route_class=ConsoleRoute)
Reader = Annotated[Viewer, Depends(page("notices"))]
SHOWN = 200


@router.get("/notices")
def notices(request: Request, viewer: Reader) -> Response:
    with read_transaction(engine_of(request)) as conn:
        found = notices_for(conn, viewer.account, limit=SHOWN)
    rows = [
        {"at": n.at, "kind": n.kind, "subject": n.subject, "key": n.key,
         "detail": json.dumps(n.detail, ensure_ascii=False, sort_keys=True)}
        for n in found
    ]  # fmt: skip
    return render(request, "notices.html", viewer, rows=rows)
