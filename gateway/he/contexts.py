"""Consumers' public contexts: registered once, referenced by id on every call.

A context is checked (``sandbox.container.he.verify.load_context`` /
``sandbox.container.he.score.load_context``) before anything is stored: one carrying a
secret key is refused before SEAL parses it and is never written anywhere.
A registered context is a file ``<data_dir>/he/contexts/<id>`` (mode 0600;
public keys only) with a row in ``he_contexts`` naming its consumer, kind,
size and SHA-256. Parsed contexts are kept in a small in-memory cache (a
scoring context with Galois keys takes about 0.15 s to parse and some
200 MB of memory), so only a few are held at once.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.he.errors import HEProductError, HETooLarge, UnknownHEProduct
from gateway.he.model import Kind
from gateway.store.tables import he_contexts
from sandbox.container.he import score, verify
from sandbox.container.he.errors import HEInputError, InputTooLarge
from sandbox.container.he.params import (
    MAX_SCORE_CONTEXT_BYTES,
    MAX_VERIFY_CONTEXT_BYTES,
    PublicContext,
)
from sandbox.fsutil import write_atomic

CAPS = {Kind.VERIFY: MAX_VERIFY_CONTEXT_BYTES, Kind.SCORE: MAX_SCORE_CONTEXT_BYTES}
CACHED = 4


def input_error(e: HEInputError) -> HEProductError:
    """The gateway's error for a consumer's refused bytes (413 for size, else 422)."""
    if isinstance(e, InputTooLarge):
        return HETooLarge(str(e))
    return HEProductError(str(e))


def parse(kind: Kind, data: bytes) -> PublicContext:
    """The checked context, or the refusal as a gateway error."""
    loader = verify.load_context if kind == Kind.VERIFY else score.load_context
    try:
        return loader(data)
    except HEInputError as e:
        raise input_error(e) from e


class ContextStore:
    """Registered contexts: files under ``root``, rows in the store, a parsed-context cache."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: OrderedDict[str, PublicContext] = OrderedDict()
        self._lock = threading.Lock()

    def path(self, context_id: str) -> Path:
        return self.root / context_id

    def save(
        self,
        conn: Connection,
        consumer: str,
        kind: Kind,
        data: bytes,
        checked: PublicContext | None,
    ) -> dict[str, Any]:
        """Store a checked context for ``consumer``; its row (the caller audits it).
        ``checked`` is the parsed context when it was parsed in this process."""
        context_id = "ctx-" + secrets.token_hex(8)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(self.path(context_id), data)
        os.chmod(self.path(context_id), 0o600)
        row: dict[str, Any] = {
            "id": context_id,
            "consumer": consumer,
            "kind": kind.value,
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
            "created_at": datetime.now(UTC),
        }
        conn.execute(sa.insert(he_contexts).values(row))
        if checked is not None:
            self._remember(context_id, checked)
        return row

    def owned(self, conn: Connection, context_id: str, consumer: str, kind: Kind) -> None:
        """Rule: a call uses a context its own consumer registered, for the product's kind."""
        row = conn.execute(
            sa.select(he_contexts.c.consumer, he_contexts.c.kind).where(
                he_contexts.c.id == context_id
            )
        ).first()
        if row is None or row.consumer != consumer:
            raise UnknownHEProduct(f"{consumer} has registered no context {context_id!r}")
        if row.kind != kind.value:
            raise HEProductError(f"context {context_id} is for {row.kind}, not {kind.value}")

    def load(self, context_id: str, kind: Kind) -> PublicContext:
        """The parsed context (from the cache, else from its file, checked again)."""
        with self._lock:
            held = self._cache.get(context_id)
            if held is not None:
                self._cache.move_to_end(context_id)
                return held
        try:
            data = self.path(context_id).read_bytes()
        except OSError as e:
            raise UnknownHEProduct(f"context {context_id} is no longer stored") from e
        checked = parse(kind, data)
        self._remember(context_id, checked)
        return checked

    def _remember(self, context_id: str, checked: PublicContext) -> None:
        with self._lock:
            self._cache[context_id] = checked
            self._cache.move_to_end(context_id)
            while len(self._cache) > CACHED:
                self._cache.popitem(last=False)
