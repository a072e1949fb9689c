"""Auditors verify the chain and export events; providers export their datasets' events."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from gateway.audit.chain import append, export_jsonl, verify
from gateway.auth import engine_of, requires
from gateway.identity import Account, Role
from gateway.store import read_transaction

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("/verify")
def verify_chain(
    account: Annotated[Account, Depends(requires(Role.AUDITOR))],
    request: Request,
) -> dict[str, Any]:
    """Recompute the whole chain and name the first broken link."""
    with read_transaction(engine_of(request)) as conn:
        result = verify(conn)
    body = {
        "ok": result.ok,
        "checked": result.checked,
        "first_broken": result.first_broken,
        "reason": result.reason,
        "head_id": result.head_id,
        "head_hash": result.head_hash,
    }
    with engine_of(request).begin() as conn:
        append(conn, "audit.verified", account.name, detail=body)
    return body


def provider_datasets(request: Request, account: Account) -> tuple[str, ...]:
    """The datasets a provider registered (the registry records the provider)."""
    registry = request.app.state.registry
    return tuple(
        name
        for name in registry.names()
        if any(v.provider == account.name for v in registry.versions(name))
    )


@router.get("/events")
def events(
    account: Annotated[Account, Depends(requires(Role.AUDITOR, Role.PROVIDER))],
    request: Request,
    since: datetime | None = None,
) -> StreamingResponse:
    """Events as JSON Lines: all of them for auditors, their datasets' for providers."""
    datasets = None if account.has(Role.AUDITOR) else provider_datasets(request, account)
    # Closed by the response generator below, after the last line is sent.
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024, mode="w+", encoding="utf-8")  # noqa: SIM115
    with read_transaction(engine_of(request)) as conn:
        written = export_jsonl(conn, spool, datasets=datasets, since=since)
    with engine_of(request).begin() as conn:
        append(
            conn,
            "audit.exported",
            account.name,
            datasets=datasets or (),
            detail={"events": written, "scope": "all" if datasets is None else "provider"},
        )
    spool.seek(0)

    def lines() -> Iterator[str]:
        try:
            yield from spool
        finally:
            spool.close()

    return StreamingResponse(lines(), media_type="application/x-ndjson")
