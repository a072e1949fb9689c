"""Auditors verify the chain and export events; providers export their datasets' events.

Checkpoints (``gateway.audit.checkpoints``): ``GET /verify`` checks the chain
against every stored checkpoint (the table and the log outside the
database), ``POST /verify`` against checkpoints the caller kept as well
(signed by the gateway's key, or by the public key the caller gives);
``GET /checkpoints`` lists them (auditors and providers: they carry no
data), ``POST /checkpoints`` signs the head now (administrators and
auditors), ``GET /public-key`` is the key that verifies them. ``GET
/events?checkpoints=true`` adds the checkpoints to an export, as lines with
``"kind": "checkpoint"`` after the events; without it the export is events
only, as before.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from gateway.audit import checkpoints as cps
from gateway.audit.anchors import verify_stored
from gateway.audit.chain import append, export_jsonl
from gateway.audit.checkpointer import checkpointer_of
from gateway.audit.signers import key_id, load_public_key, public_key_pem
from gateway.auth import engine_of, requires
from gateway.errors import SignerError
from gateway.identity import Account, Role
from gateway.store import read_transaction

router = APIRouter(prefix="/v1/audit", tags=["audit"])
log = logging.getLogger("dsr.audit")

MAX_SUPPLIED = 1000  # checkpoints in one POST /verify


class CheckpointIn(BaseModel):
    """A checkpoint as ``GET /checkpoints`` and the exports give it."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["checkpoint"] = "checkpoint"
    version: int
    event_id: int = Field(ge=1)
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    at: AwareDatetime
    key_id: str = Field(pattern=r"^[0-9a-f]{64}$")
    signature: str = Field(max_length=128)


class VerifyIn(BaseModel):
    """Checkpoints the caller kept, and optionally the public key they trust
    (PEM, or the base64 of its 32 raw bytes; default: the gateway's key)."""

    model_config = ConfigDict(extra="forbid")

    checkpoints: list[CheckpointIn] = Field(min_length=1, max_length=MAX_SUPPLIED)
    public_key: str | None = Field(default=None, max_length=4096)


def gateway_keys(request: Request) -> dict[str, Ed25519PublicKey]:
    """The gateway's signing key by key id; none if the key is unusable (then
    every stored checkpoint is refused, and the log says why)."""
    try:
        public = checkpointer_of(request.app).signer.public_key()
    except SignerError as e:
        log.error("the audit signing key is unusable: %s", e)
        return {}
    return {key_id(public): public}


def _verify(
    request: Request, account: Account, supplied: Sequence[cps.Checkpoint], caller_key: str | None
) -> dict[str, Any]:
    keys = gateway_keys(request)
    theirs = None if caller_key is None else _caller_keys(caller_key)
    log_file = checkpointer_of(request.app).log
    with read_transaction(engine_of(request)) as conn:
        body = verify_stored(conn, keys, log_file, supplied, theirs).to_json()
    with engine_of(request).begin() as conn:
        append(conn, "audit.verified", account.name, detail=body)
    return body


def _caller_keys(text: str) -> dict[str, Ed25519PublicKey]:
    public = load_public_key(text)
    return {key_id(public): public}


@router.get("/verify")
def verify_chain(
    account: Annotated[Account, Depends(requires(Role.AUDITOR))],
    request: Request,
) -> dict[str, Any]:
    """Recompute the whole chain against every stored checkpoint (the table and
    the log outside the database) and name the first broken link."""
    return _verify(request, account, (), None)


@router.post("/verify")
def verify_with_checkpoints(
    account: Annotated[Account, Depends(requires(Role.AUDITOR))],
    request: Request,
    body: VerifyIn,
) -> dict[str, Any]:
    """As ``GET /verify``, and against checkpoints the caller kept: a chain
    rewritten or cut since one of them fails, even if the store's own
    checkpoints were rewritten too."""
    supplied = [cps.Checkpoint.from_json(c.model_dump(mode="json")) for c in body.checkpoints]
    return _verify(request, account, supplied, body.public_key)


@router.get("/checkpoints")
def list_checkpoints(
    account: Annotated[Account, Depends(requires(Role.AUDITOR, Role.PROVIDER))],
    request: Request,
    last: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[dict[str, Any]]:
    """The newest ``last`` stored checkpoints, oldest first (no data: ids, hashes, signatures)."""
    with read_transaction(engine_of(request)) as conn:
        return [cp.to_json() for cp in cps.stored(conn, last=last)]


@router.post("/checkpoints")
def make_checkpoint(
    account: Annotated[Account, Depends(requires(Role.ADMIN, Role.AUDITOR))],
    request: Request,
) -> dict[str, Any]:
    """Sign the chain's head now if it moved since the last checkpoint."""
    made, created = checkpointer_of(request.app).checkpoint_now()
    return {"created": created, "checkpoint": None if made is None else made.to_json()}


@router.get("/public-key")
def public_key(
    account: Annotated[Account, Depends(requires(Role.ADMIN, Role.AUDITOR, Role.PROVIDER))],
    request: Request,
) -> dict[str, str]:
    """The Ed25519 public key that verifies the gateway's checkpoints: keep a copy."""
    public = checkpointer_of(request.app).signer.public_key()
    return {"algorithm": "Ed25519", "key_id": key_id(public), "public_key": public_key_pem(public)}


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
    checkpoints: bool = False,
) -> StreamingResponse:
    """Events as JSON Lines: all of them for auditors, their datasets' for providers;
    with ``checkpoints=true`` the stored checkpoints follow (``"kind": "checkpoint"``)."""
    datasets = None if account.has(Role.AUDITOR) else provider_datasets(request, account)
    # Closed by the response generator below, after the last line is sent.
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024, mode="w+", encoding="utf-8")  # noqa: SIM115
    with read_transaction(engine_of(request)) as conn:
        written = export_jsonl(conn, spool, datasets=datasets, since=since)
        anchors = cps.export_jsonl(conn, spool, since=since) if checkpoints else None
    detail: dict[str, Any] = {"events": written, "scope": "all" if datasets is None else "provider"}
    if anchors is not None:
        detail["checkpoints"] = anchors
    with engine_of(request).begin() as conn:
        append(conn, "audit.exported", account.name, datasets=datasets or (), detail=detail)
    spool.seek(0)

    def lines() -> Iterator[str]:
        try:
            yield from spool
        finally:
            spool.close()

    return StreamingResponse(lines(), media_type="application/x-ndjson")
