"""Audit pages: the latest events (all of them for auditors, their datasets' for
providers) and, for auditors, a verification of the whole chain.

Both read through ``gateway.audit`` and are audited themselves, as the REST
routes are: a listing as ``audit.exported``, a verification as
``audit.verified``. The verification page shows the newest signed
checkpoint (``gateway.audit.checkpoints``) with a quick check (its signature,
and the event at its id still carrying its hash); running the verification
checks the whole chain against every checkpoint, as ``GET /v1/audit/verify``.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import Response

from gateway.audit import append, export_jsonl
from gateway.audit.anchors import anchor_problem, verify_stored
from gateway.audit.checkpointer import checkpointer_of
from gateway.audit.checkpoints import Checkpoint, check_signature, stored_candidates
from gateway.audit.router import gateway_keys, provider_datasets
from gateway.auth import engine_of
from gateway.console.pages import ConsoleRoute, Viewer, check_form, page, render
from gateway.identity import Role
from gateway.store import read_transaction

router = APIRouter(route_class=ConsoleRoute)
Events = Annotated[Viewer, Depends(page("audit_events"))]
Verifier = Annotated[Viewer, Depends(page("audit_verify"))]
SHOWN = 200  # the newest events listed; `dsr audit export` gives them all
DETAIL_CHARS = 400


class _Tail:
    """A writer keeping the last ``n`` JSON lines it is given."""

    def __init__(self, n: int) -> None:
        self.lines: deque[str] = deque(maxlen=n)

    def write(self, text: str) -> int:
        self.lines.append(text)
        return len(text)


def _event_row(line: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(line)
    detail = json.dumps(event["detail"], ensure_ascii=False, sort_keys=True)
    if len(detail) > DETAIL_CHARS:
        detail = detail[:DETAIL_CHARS] + " …"
    return {**event, "detail_text": detail}


@router.get("/audit/events")
def events(request: Request, viewer: Events) -> Response:
    account = viewer.account
    datasets = None if account.has(Role.AUDITOR) else provider_datasets(request, account)
    tail = _Tail(SHOWN)
    with read_transaction(engine_of(request)) as conn:
        written = export_jsonl(conn, tail, datasets=datasets)
    with engine_of(request).begin() as conn:
        append(
            conn,
            "audit.exported",
            account.name,
            datasets=datasets or (),
            detail={
                "events": len(tail.lines),
                "matched": written,
                "scope": "all" if datasets is None else "provider",
                "via": "console",
            },
        )
    rows = [_event_row(line) for line in reversed(tail.lines)]
    return render(
        request, "events.html", viewer, rows=rows, everything=datasets is None, shown=SHOWN
    )


def _latest_checkpoint(request: Request) -> dict[str, Any] | None:
    """The newest checkpoint of the table or the log, and whether it verifies
    (its signature; the event at its id still has its hash)."""
    keys = gateway_keys(request)
    log = checkpointer_of(request.app).log
    with read_transaction(engine_of(request)) as conn:
        found = [c for c in (*stored_candidates(conn), *log.read()) if isinstance(c, Checkpoint)]
        if not found:
            return None
        newest = max(found, key=lambda c: (c.event_id, c.at))
        problem = check_signature(newest, keys) or anchor_problem(conn, newest)
    return newest.to_json() | {"ok": problem is None, "problem": problem}


@router.get("/audit/verify")
def verify_form(request: Request, viewer: Verifier) -> Response:
    latest = _latest_checkpoint(request)
    return render(request, "verify.html", viewer, result=None, checkpoint=latest)


@router.post("/audit/verify")
def run_verify(
    request: Request, viewer: Verifier, csrf: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    check_form(request, viewer.session.csrf, csrf)
    keys = gateway_keys(request)
    log = checkpointer_of(request.app).log
    with read_transaction(engine_of(request)) as conn:
        body = verify_stored(conn, keys, log).to_json()
    with engine_of(request).begin() as conn:
        append(conn, "audit.verified", viewer.account.name, detail=body)
    latest = _latest_checkpoint(request)
    return render(request, "verify.html", viewer, result=body, checkpoint=latest)
