"""Stage 7 of the data flow, the audit log's anchors on the gateway's machine:
the local forms of ``dsr audit verify/checkpoint/checkpoints/public-key``.

They open the store and the signing key (or signer command) the gateway's
settings name, and answer in the shapes of the REST routes
(:mod:`gateway.audit.router`), so :mod:`gateway.client.checkpoints` prints
both alike. A local verification is audited (``audit.verified``) like a
remote one; it never makes a signing key (a key made now could not vouch
for checkpoints made before), so without a key file every stored checkpoint
is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine

from gateway.audit import checkpoints as cps
from gateway.audit.anchors import verify_stored
from gateway.audit.chain import append
from gateway.audit.checkpointer import Checkpointer
from gateway.audit.signers import key_id, load_public_key, public_key_pem, signer_from_settings
from gateway.errors import SignerError
from gateway.settings import GatewaySettings
from gateway.store.engine import read_transaction


def trusted_keys(settings: GatewaySettings) -> dict[str, Ed25519PublicKey]:
    """The configured signer's public key by key id; none without a usable key."""
    try:
        public = signer_from_settings(settings, create=False).public_key()
    except SignerError:
        return {}
    return {key_id(public): public}


def verify(
    engine: Engine,
    settings: GatewaySettings,
    actor: str,
    supplied: Sequence[Mapping[str, Any]] = (),
    public_key: str | None = None,
) -> dict[str, Any]:
    """The chain against the stored checkpoints and ``supplied`` ones (signed by
    ``public_key`` if given, else the local key); audited as ``audit.verified``."""
    keys = trusted_keys(settings)
    theirs = None if public_key is None else _keys_of(public_key)
    kept = [cps.Checkpoint.from_json(c) for c in supplied]
    log = cps.log_of(settings.data_dir, settings.audit_checkpoint_log)
    with read_transaction(engine) as conn:
        body = verify_stored(conn, keys, log, kept, theirs).to_json()
    with engine.begin() as conn:
        append(conn, "audit.verified", actor, detail=body)
    return body


def _keys_of(text: str) -> dict[str, Ed25519PublicKey]:
    public = load_public_key(text)
    return {key_id(public): public}


def checkpoints(engine: Engine, last: int) -> list[dict[str, Any]]:
    with read_transaction(engine) as conn:
        return [cp.to_json() for cp in cps.stored(conn, last=last)]


def checkpoint(engine: Engine, settings: GatewaySettings) -> dict[str, Any]:
    """Sign the head now, as ``POST /v1/audit/checkpoints`` does."""
    made, created = Checkpointer.from_settings(engine, settings).checkpoint_now()
    return {"created": created, "checkpoint": None if made is None else made.to_json()}


def public_key(settings: GatewaySettings) -> dict[str, str]:
    """The signer's public key, as ``GET /v1/audit/public-key`` gives it."""
    public = signer_from_settings(settings).public_key()
    return {"algorithm": "Ed25519", "key_id": key_id(public), "public_key": public_key_pem(public)}
