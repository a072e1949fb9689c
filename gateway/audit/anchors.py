"""Stage 7 of the data flow, the audit log's anchors: the chain verified against checkpoints.

:func:`verify_anchored` recomputes the chain (``chain.verify``) with every
accepted checkpoint (:mod:`gateway.audit.checkpoints`) as an anchor: a tail
rewritten since a checkpoint fails at the checkpoint's id (the event there
no longer has the signed hash), a tail cut before it fails at the chain's
end. :func:`verify_stored` does that for every checkpoint of the table and
of the log outside the database, and for the ones a caller kept.

Invariants:

- Only a checkpoint whose signature verifies under a trusted key (by key id)
  is an anchor (:func:`screen`); the others are refused and reported, and a
  refused one fails the verification: a stored checkpoint that does not
  verify means the table or the log was tampered with, or the key changed.
- Two accepted checkpoints that disagree about one event fail it too.
- A checkpoint supplied by the caller may be checked under the caller's own
  public key, so a key swapped on the gateway's side does not vouch for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, Engine

from gateway.audit.chain import Verification, verify
from gateway.audit.checkpoints import (
    Checkpoint,
    CheckpointLog,
    Refused,
    check_signature,
    stored_candidates,
)
from gateway.store.engine import read_transaction
from gateway.store.tables import audit_events


@dataclass(frozen=True)
class AnchoredVerification:
    """The chain recomputed with every accepted checkpoint as an anchor.

    ``ok`` only when the chain verifies against all of them, no two disagree
    and none was refused (a refused stored checkpoint means the table or the
    log was tampered with, or the key changed)."""

    ok: bool
    reason: str
    first_broken: int | None
    chain: Verification
    accepted: Mapping[str, int]  # per source
    refused: tuple[Refused, ...]
    latest: Checkpoint | None

    def to_json(self, *, refusals_shown: int = 10) -> dict[str, Any]:
        """The REST and ``--json`` shape: the chain's keys as before, plus ``checkpoints``."""
        return {
            "ok": self.ok,
            "checked": self.chain.checked,
            "first_broken": self.first_broken,
            "reason": self.reason,
            "head_id": self.chain.head_id,
            "head_hash": self.chain.head_hash,
            "checkpoints": {
                "accepted": dict(self.accepted),
                "refused": [r.to_json() for r in self.refused[:refusals_shown]],
                "refused_count": len(self.refused),
                "latest": None if self.latest is None else self.latest.to_json(),
            },
        }


def latest_known(
    engine: Engine, log: CheckpointLog, keys: Mapping[str, Ed25519PublicKey]
) -> Checkpoint | None:
    """The newest checkpoint of the table or the log signed by one of ``keys``."""
    with read_transaction(engine) as conn:
        rows = stored_candidates(conn)
    return _newest([*rows, *log.read()], keys)


def _newest(
    items: Iterable[Checkpoint | Refused], keys: Mapping[str, Ed25519PublicKey]
) -> Checkpoint | None:
    best: Checkpoint | None = None
    for item in items:
        if not isinstance(item, Checkpoint) or check_signature(item, keys) is not None:
            continue
        if best is None or item.event_id > best.event_id:
            best = item
    return best


def screen(
    items: Iterable[Checkpoint | Refused], keys: Mapping[str, Ed25519PublicKey], source: str
) -> tuple[list[Checkpoint], list[Refused]]:
    """Split checkpoints into those signed by one of ``keys`` and the refused."""
    accepted: list[Checkpoint] = []
    refused: list[Refused] = []
    for item in items:
        if isinstance(item, Refused):
            refused.append(item)
            continue
        problem = check_signature(item, keys)
        if problem is None:
            accepted.append(item)
        else:
            refused.append(Refused(source, item.event_id, item.key_id, problem))
    return accepted, refused


def verify_anchored(
    conn: Connection,
    accepted: Mapping[str, Sequence[Checkpoint]],
    refused: Sequence[Refused] = (),
    *,
    batch: int = 1000,
) -> AnchoredVerification:
    """Recompute the chain with every ``accepted`` checkpoint (by source, their
    signatures already checked, see :func:`screen`) as an anchor: a rewritten
    tail fails at the checkpoint's id, a cut one at the chain's end."""
    anchors: dict[int, str] = {}
    conflict: int | None = None
    latest: Checkpoint | None = None
    for checkpoints in accepted.values():
        for cp in checkpoints:
            if anchors.setdefault(cp.event_id, cp.hash) != cp.hash:
                conflict = cp.event_id if conflict is None else min(conflict, cp.event_id)
            if latest is None or cp.event_id > latest.event_id:
                latest = cp
    chain = verify(conn, anchors=anchors.items(), batch=batch)
    counts = {source: len(cps) for source, cps in accepted.items()}
    if not chain.ok:
        ok, reason, first = False, chain.reason, chain.first_broken
    elif conflict is not None:
        ok, first = False, conflict
        reason = f"two signed checkpoints disagree about event {conflict}: the chain was rewritten"
    elif refused:
        ok, first = False, None
        r = refused[0]
        where = f" at event {r.event_id}" if r.event_id is not None else ""
        reason = f"{len(refused)} checkpoint(s) refused, the first ({r.source}{where}): {r.reason}"
    else:
        ok, first = True, None
        reason = chain.reason
        if latest is not None:
            reason += (
                f", against {len(anchors)} signed checkpoint(s) (newest at event {latest.event_id})"
            )
        else:
            reason += "; no checkpoint yet: a cut or rewritten tail would not show"
    return AnchoredVerification(ok, reason, first, chain, counts, tuple(refused), latest)


def verify_stored(
    conn: Connection,
    keys: Mapping[str, Ed25519PublicKey],
    log: CheckpointLog,
    supplied: Sequence[Checkpoint] = (),
    supplied_keys: Mapping[str, Ed25519PublicKey] | None = None,
) -> AnchoredVerification:
    """The chain against every checkpoint of the table and the log (signed by
    one of ``keys``) and every ``supplied`` one (signed by one of
    ``supplied_keys``, by default ``keys``): what ``dsr audit verify`` and
    ``/v1/audit/verify`` report."""
    in_store, refused = screen(stored_candidates(conn), keys, "store")
    in_log, refused_log = screen(log.read(), keys, "log")
    theirs, refused_theirs = screen(
        supplied, keys if supplied_keys is None else supplied_keys, "supplied"
    )
    accepted = {"store": in_store, "log": in_log}
    if supplied:
        accepted["supplied"] = theirs
    return verify_anchored(conn, accepted, [*refused, *refused_log, *refused_theirs])


def anchor_problem(conn: Connection, checkpoint: Checkpoint) -> str | None:
    """A quick look (one row): None if the event at the checkpoint's id still
    has its hash, else what happened to the tail. The links are
    :func:`verify_anchored`'s to check."""
    found = conn.execute(
        sa.select(audit_events.c.hash).where(audit_events.c.id == checkpoint.event_id)
    ).first()
    if found is None:
        return "the log ends before this checkpoint: events were cut off"
    if str(found.hash) != checkpoint.hash:
        return "the event's hash differs from the signed one: the chain was rewritten"
    return None
