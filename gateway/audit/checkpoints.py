"""Stage 7 of the data flow, the audit log's anchors: signed checkpoints of the chain head.

A hash chain alone cannot show that its newest events were cut off, or that
its tail was edited and every later hash recomputed (see
:mod:`gateway.audit.chain`). A checkpoint closes both holes: the head (event
id and hash) at a time, signed with Ed25519 by a key held outside the store
(:mod:`gateway.audit.signers`). Verified with a checkpoint
(:mod:`gateway.audit.anchors`), a rewritten tail shows (the event at the
checkpoint's id no longer has its hash) and so does a cut one (the chain
ends before the checkpoint's id). This module is the format, the signing,
the table and the log; :mod:`gateway.audit.checkpointer` decides when.

Format, version 1. The signature (base64 in JSON) is over :meth:`Checkpoint.payload`:
the ASCII line ``dsr-audit-checkpoint/v1`` and a newline (domain separation:
the key signs nothing else that could be taken for a checkpoint), then the
canonical JSON (:func:`gateway.audit.fields.canonical_json`) of
``{"at", "event_id", "hash", "key_id", "version"}``, ``at`` as ISO 8601 UTC
with microseconds. As JSON (:meth:`Checkpoint.to_json`, one line each in the
checkpoint log and in an export with checkpoints) a checkpoint is
``{"kind": "checkpoint", "version", "event_id", "hash", "at", "key_id", "signature"}``.

Where they are kept: the ``audit_checkpoints`` table (append-only by trigger,
as ``audit_events``; one per head and key), and a copy of each as a JSON line
in a file outside the database (:class:`CheckpointLog`; default
``<data_dir>/audit-checkpoints.jsonl``, setting ``audit_checkpoint_log``),
which survives a rewrite of the store: put it on other storage (another
disk, an append-only file attribute, a log shipper). Whoever verifies should
keep the latest checkpoint and the public key themselves
(``dsr audit checkpoints --save``, ``dsr audit public-key``): their copy is
the anchor nobody else can reach.

Invariants:

- Only a head that extends the previous checkpoint is signed:
  :func:`make_checkpoint` first recomputes the chain from the newest
  checkpoint it trusts (``chain.verify(start=...)``) and refuses to sign a
  broken one (:class:`ChainBroken`).
- No audit event records a checkpoint: its row and its log line are the
  record. An event would move the head it had just signed, so every
  checkpoint would leave the next one something to cover. The verifications
  and exports that read checkpoints are audited as before.
- A checkpoint cannot vouch for events after its head: a consistent rewrite
  of those stays invisible until a later checkpoint, so they are made often
  (:mod:`gateway.audit.checkpointer`: every N events, every few minutes).
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, Engine

from gateway.audit.chain import Writer, verify
from gateway.audit.fields import canonical_json
from gateway.audit.signers import SIGNATURE_BYTES, Signer, key_id, verifies
from gateway.errors import CheckpointError
from gateway.store.engine import is_sqlite, read_transaction, serialise_writers
from gateway.store.tables import audit_checkpoints, audit_events, utc_iso

VERSION = 1
DOMAIN = b"dsr-audit-checkpoint/v1\n"  # the payload's first line: what the key signs
KIND = "checkpoint"  # the "kind" of a checkpoint's JSON line
LOG_FILE = "audit-checkpoints.jsonl"  # under the data directory
LOCK = "dsr.audit_checkpoints"  # writers of the table take it (serialise_writers)
MAX_LINE = 4096
_HEX64 = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Checkpoint:
    """The chain's head ``event_id`` had ``hash`` at ``at``, signed by key ``key_id``."""

    event_id: int
    hash: str
    at: datetime
    key_id: str
    signature: bytes
    version: int = VERSION

    def payload(self) -> bytes:
        """The bytes the signature covers (see the module docstring)."""
        body = {
            "at": utc_iso(self.at),
            "event_id": self.event_id,
            "hash": self.hash,
            "key_id": self.key_id,
            "version": self.version,
        }
        return DOMAIN + canonical_json(body)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "version": self.version,
            "event_id": self.event_id,
            "hash": self.hash,
            "at": utc_iso(self.at),
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }

    @classmethod
    def from_json(cls, value: object) -> Checkpoint:
        """A checkpoint from its JSON object; :class:`CheckpointError` naming the
        first field that is wrong (never quoting it). The signature is not checked."""
        if not isinstance(value, Mapping):
            raise CheckpointError("a checkpoint is a JSON object")
        if value.get("kind", KIND) != KIND:
            raise CheckpointError('a checkpoint\'s "kind" is "checkpoint"')
        if value.get("version") != VERSION:
            raise CheckpointError(f"unknown checkpoint version (this gateway reads {VERSION})")
        event_id = value.get("event_id")
        if not isinstance(event_id, int) or isinstance(event_id, bool) or event_id < 1:
            raise CheckpointError("event_id must be a positive integer")
        for field in ("hash", "key_id"):
            text = value.get(field)
            if not isinstance(text, str) or len(text) != 64 or not set(text) <= _HEX64:
                raise CheckpointError(f"{field} must be 64 lower-case hex digits")
        try:
            at = datetime.fromisoformat(str(value.get("at")))
            signature = base64.b64decode(str(value.get("signature")), validate=True)
        except (ValueError, binascii.Error) as e:
            raise CheckpointError("at must be ISO 8601 and signature base64") from e
        if at.tzinfo is None or at.utcoffset() is None:
            raise CheckpointError("at must carry its time zone")
        if len(signature) != SIGNATURE_BYTES:
            raise CheckpointError(f"an Ed25519 signature is {SIGNATURE_BYTES} bytes")
        return cls(
            event_id, str(value["hash"]), at.astimezone(UTC), str(value["key_id"]), signature
        )


@dataclass(frozen=True)
class Refused:
    """A checkpoint not taken as an anchor: where it came from and why."""

    source: str  # "store", "log" or "supplied"
    event_id: int | None
    key_id: str | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("source", "event_id", "key_id", "reason")}


# -- signing ----------------------------------------------------------------------------


def sign_head(signer: Signer, event_id: int, hash: str, at: datetime) -> Checkpoint:
    """A checkpoint of the head (``event_id``, ``hash``) at ``at``, signed by ``signer``."""
    unsigned = Checkpoint(event_id, hash, at.astimezone(UTC), key_id(signer.public_key()), b"")
    return Checkpoint(event_id, hash, unsigned.at, unsigned.key_id, signer.sign(unsigned.payload()))


def check_signature(checkpoint: Checkpoint, keys: Mapping[str, Ed25519PublicKey]) -> str | None:
    """None if ``checkpoint`` is signed by the trusted key it names, else why not.
    ``keys``: trusted public keys by key id."""
    key = keys.get(checkpoint.key_id)
    if key is None:
        return "signed by a key that is not trusted"
    if not verifies(key, checkpoint.signature, checkpoint.payload()):
        return "its signature does not verify"
    return None


def head(conn: Connection) -> tuple[int, str] | None:
    """The chain's newest event (id, hash), or None when the log is empty."""
    row = conn.execute(
        sa.select(audit_events.c.id, audit_events.c.hash)
        .order_by(audit_events.c.id.desc())
        .limit(1)
    ).first()
    return None if row is None else (int(row.id), str(row.hash))


def make_checkpoint(
    engine: Engine,
    signer: Signer,
    log: CheckpointLog,
    *,
    after: Checkpoint | None,
    now: datetime,
) -> Checkpoint | None:
    """Sign the current head and keep the checkpoint (table and log); None when
    the log is empty, ``after`` itself when the head has not moved past it.

    ``after`` is the newest checkpoint the caller trusts (or None): the events
    from it to the head are recomputed first, and a broken chain (a changed
    event, or a log that now ends before ``after``) raises :class:`ChainBroken`
    instead of being signed."""
    with read_transaction(engine) as conn:
        if after is None and head(conn) is None:
            return None
        checked = verify(conn, start=None if after is None else (after.event_id, after.hash))
    checked.raise_if_broken()
    if checked.head_id is None or checked.head_hash is None:  # pragma: no cover - never when ok
        return None
    if after is not None and checked.head_id == after.event_id:
        return after  # the head has not moved
    checkpoint = sign_head(signer, checked.head_id, checked.head_hash, now)
    with engine.begin() as conn:
        serialise_writers(conn, LOCK)  # one row per head and key, however many gateways
        existing = _select(conn).where(
            audit_checkpoints.c.event_id == checkpoint.event_id,
            audit_checkpoints.c.key_id == checkpoint.key_id,
        )
        kept = conn.execute(existing).first()
        if kept is None:
            conn.execute(sa.insert(audit_checkpoints).values(_row(checkpoint)))
            log.append(checkpoint)  # before the commit: a failed write keeps no row either
            return checkpoint
        try:
            theirs = _decode(kept)  # another gateway's, signed by the same key
        except CheckpointError:
            theirs = None
        keys = {checkpoint.key_id: signer.public_key()}
        if (
            theirs is not None
            and theirs.hash == checkpoint.hash
            and check_signature(theirs, keys) is None
        ):
            return theirs
    log.append(checkpoint)  # the copy outside the store keeps the genuine one
    raise CheckpointError(
        f"the checkpoint table already holds a checkpoint of event {checkpoint.event_id} "
        "under this key that does not verify: the table was tampered with"
    )


# -- the table ------------------------------------------------------------------------------


def stored(
    conn: Connection, *, last: int | None = None, since: datetime | None = None
) -> list[Checkpoint]:
    """The table's checkpoints in head order (the newest ``last`` of them;
    those made at or after ``since``). Unreadable rows raise :class:`CheckpointError`."""
    stmt = _select(conn)
    if since is not None:
        stmt = stmt.where(audit_checkpoints.c.at >= since)
    if last is not None:
        newest = stmt.order_by(audit_checkpoints.c.event_id.desc(), audit_checkpoints.c.at.desc())
        return [_decode(r) for r in reversed(conn.execute(newest.limit(last)).all())]
    order = (audit_checkpoints.c.event_id, audit_checkpoints.c.at)
    return [_decode(r) for r in conn.execute(stmt.order_by(*order)).all()]


def stored_candidates(conn: Connection) -> list[Checkpoint | Refused]:
    """Every row of the table, an unreadable one as a :class:`Refused`."""
    found: list[Checkpoint | Refused] = []
    for row in conn.execute(_select(conn).order_by(audit_checkpoints.c.event_id)):
        try:
            found.append(_decode(row))
        except CheckpointError as e:
            found.append(Refused("store", _int_or_none(row.event_id), None, str(e)))
    return found


def _select(conn: Connection) -> sa.Select[Any]:
    """Rows as stored (on SQLite ``at`` as text), so a damaged row is refused by
    :func:`_decode` instead of failing the whole read."""
    c = audit_checkpoints.c
    at = sa.type_coerce(c.at, sa.Text()).label("at") if is_sqlite(conn) else c.at
    return sa.select(c.event_id, c.hash, at, c.key_id, c.version, c.signature)


def _row(checkpoint: Checkpoint) -> dict[str, Any]:
    as_json = checkpoint.to_json()
    return {k: as_json[k] for k in ("event_id", "hash", "key_id", "version", "signature")} | {
        "at": checkpoint.at
    }


def _decode(row: sa.Row[Any]) -> Checkpoint:
    at = row.at
    return Checkpoint.from_json(
        {
            "version": row.version,
            "event_id": row.event_id,
            "hash": row.hash,
            "at": at.isoformat() if isinstance(at, datetime) else str(at),
            "key_id": row.key_id,
            "signature": row.signature,
        }
    )


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) else None


# -- the log outside the database ---------------------------------------------------------


class CheckpointLog:
    """A copy of every checkpoint, one JSON line each, in a file outside the
    database (see the module docstring). Appends are whole lines under an
    exclusive ``flock``, so gateways sharing the file do not interleave."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, checkpoint: Checkpoint) -> None:
        line = json.dumps(checkpoint.to_json(), separators=(",", ":")) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as e:
            raise CheckpointError(f"cannot open the checkpoint log {self.path}: {e}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line.encode("ascii"))
            os.fsync(fd)
        except OSError as e:
            raise CheckpointError(f"cannot write the checkpoint log {self.path}: {e}") from e
        finally:
            os.close(fd)  # releases the lock

    def read(self) -> Iterator[Checkpoint | Refused]:
        """Every line in order; a line that is not a checkpoint as a :class:`Refused`."""
        if not self.path.exists():
            return
        with self.path.open("rb") as lines:
            for number, raw in enumerate(lines, 1):
                if not raw.strip():
                    continue
                yield _parse_line(raw, "log", f"line {number}")


def _parse_line(raw: str | bytes, source: str, where: str) -> Checkpoint | Refused:
    if len(raw) > MAX_LINE:
        return Refused(source, None, None, f"{where} is too long for a checkpoint")
    try:
        value = json.loads(raw)
    except ValueError:
        return Refused(source, None, None, f"{where} is not JSON")
    if isinstance(value, Mapping) and value.get("kind", KIND) != KIND:
        return Refused(source, None, None, f"{where} is not a checkpoint")
    try:
        return Checkpoint.from_json(value)
    except CheckpointError as e:
        event_id = value.get("event_id") if isinstance(value, Mapping) else None
        return Refused(source, _int_or_none(event_id), None, f"{where}: {e}")


def log_of(data_dir: Path, setting: Path | None) -> CheckpointLog:
    """The log at ``setting`` (relative: under ``data_dir``), else the default."""
    return CheckpointLog(data_dir / (setting or LOG_FILE))


def export_jsonl(conn: Connection, out: Writer, *, since: datetime | None = None) -> int:
    """Write the table's checkpoints as JSON Lines (:meth:`Checkpoint.to_json`,
    ``"kind": "checkpoint"``), in head order, and return how many."""
    written = 0
    for cp in stored(conn, since=since):
        out.write(json.dumps(cp.to_json(), separators=(",", ":")) + "\n")
        written += 1
    return written
