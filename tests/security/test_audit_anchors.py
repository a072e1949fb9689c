"""Whoever can write the store against the audit log: rewriting or cutting its tail.

The attacker holds the database (the SQLite file, or PostgreSQL credentials
that can drop triggers), not the checkpoint signing key, which lives outside
it. A hash chain alone cannot stop them: they drop the append-only triggers,
edit an event and recompute every later ``hash`` and ``prev_hash`` (or delete
the newest events), and the plain chain verification answers ok. Each test
below first shows that hole, then that the gateway's signed checkpoints
(``gateway.audit.checkpoints``) expose the attack:

- a consistently rewritten tail: the event at the checkpoint's id no longer
  has the signed hash;
- a cut-off tail: the chain ends before the checkpoint's id;
- a forged checkpoint (an altered signature, an altered field, another key,
  one slipped into the checkpoint table) is refused, never used as an anchor;
- the attacker rewrites the ``audit_checkpoints`` table as well: the copy in
  the log outside the database, and the auditor's own saved copy, still show
  the rewrite.

Real pieces on SQLite and PostgreSQL: the app from ``create_app`` (its
lifespan signs the head at shutdown, as a stopping gateway does), the
auditor's REST calls, raw SQL for the attacker. On the code before
checkpoints existed, the rewrite and cut tests fail at their core assertion:
``GET /v1/audit/verify`` answered ok.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from gateway.app import create_app
from gateway.audit.chain import append, event_hash, iter_events, verify
from gateway.identity import create_account, issue_token
from gateway.settings import GatewaySettings
from gateway.store import make_engine

# The store fixtures (a SQLite file; a throwaway PostgreSQL cluster) are tests/conftest.py's.

EVENTS = 40  # written before the gateway stops (and signs its head)
EDITED = 25  # the event the attacker edits


@dataclass
class Gateway:
    """A gateway on one store and data directory, started and stopped as a whole."""

    settings: GatewaySettings
    auditor: dict[str, str]

    @contextmanager
    def serving(self) -> Iterator[TestClient]:
        app = create_app(self.settings)
        try:
            with TestClient(app) as client:  # its shutdown signs the head
                yield client
        finally:
            app.state.engine.dispose()

    def verify(self, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """The auditor's verification: GET, or POST with kept checkpoints."""
        with self.serving() as client:
            if body is None:
                response = client.get("/v1/audit/verify", headers=self.auditor)
            else:
                response = client.post("/v1/audit/verify", headers=self.auditor, json=body)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    @property
    def log(self) -> Path:
        return self.settings.data_dir / "audit-checkpoints.jsonl"


@pytest.fixture
def gateway(store_url: str, tmp_path: Path) -> Gateway:
    """A gateway that wrote EVENTS events and stopped: the last checkpoint is its head."""
    settings = GatewaySettings(data_dir=tmp_path / "var", database_url=store_url)
    app = create_app(settings)
    with app.state.engine.begin() as conn:
        create_account(conn, "auditor-1", {"auditor"}, actor="test")
        token = issue_token(conn, "auditor-1", actor="test")
    gw = Gateway(settings, {"Authorization": f"Bearer {token}"})
    with TestClient(app), app.state.engine.begin() as conn:
        for i in range(EVENTS - 2):
            append(conn, "job.state", "system", grant_id="G-1", detail={"to": "done", "n": i})
    app.state.engine.dispose()
    return gw


# -- the attacker ---------------------------------------------------------------------------


def sql(engine: Engine, *statements: str) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)


def drop_guards(engine: Engine, *tables: str) -> None:
    """First, the append-only triggers go."""
    for table in tables:
        if engine.dialect.name == "sqlite":
            sql(engine, f"DROP TRIGGER {table}_no_update", f"DROP TRIGGER {table}_no_delete")
        else:
            sql(engine, f"DROP TRIGGER {table}_no_update_delete ON {table}")


def rewrite_tail(engine: Engine, edited: int) -> int:
    """Change event ``edited``'s actor and recompute every later hash and prev_hash,
    so the chain verifies again; the new head id."""
    drop_guards(engine, "audit_events")
    with engine.connect() as conn:
        events = [e for e in iter_events(conn) if e.id >= edited]
    prev = events[0].prev_hash
    with engine.begin() as conn:
        for e in events:
            actor = "nobody" if e.id == edited else e.actor
            digest = event_hash(e.id, e.at, e.type, actor, e.grant_id, e.datasets, e.detail, prev)
            conn.execute(
                sa.text(
                    "UPDATE audit_events SET actor = :a, prev_hash = :p, hash = :h WHERE id = :i"
                ),
                {"a": actor, "p": prev, "h": digest, "i": e.id},
            )
            prev = digest
    return events[-1].id


def plain_verify_passes(url: str) -> None:
    """The hole: the chain alone verifies after the attack."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            result = verify(conn)
        assert result.ok, result.reason
    finally:
        engine.dispose()


def head_id(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT max(id) FROM audit_events")).scalar_one())
    finally:
        engine.dispose()


# -- the attacks ----------------------------------------------------------------------------


def test_a_consistently_rewritten_tail_is_found_by_the_checkpoint(
    gateway: Gateway, store_url: str
) -> None:
    signed = head_id(store_url)  # the gateway signed this head when it stopped
    engine = make_engine(store_url)
    rewrite_tail(engine, EDITED)
    engine.dispose()
    plain_verify_passes(store_url)

    result = gateway.verify()

    assert result["ok"] is False, result["reason"]  # before checkpoints: ok
    assert result["first_broken"] == signed
    assert "rewritten" in result["reason"]
    assert result["checkpoints"]["latest"]["event_id"] == signed


def test_a_cut_off_tail_is_found_by_the_checkpoint(gateway: Gateway, store_url: str) -> None:
    signed = head_id(store_url)
    engine = make_engine(store_url)
    drop_guards(engine, "audit_events")
    sql(engine, f"DELETE FROM audit_events WHERE id > {signed - 6}")
    engine.dispose()
    plain_verify_passes(store_url)

    result = gateway.verify()

    assert result["ok"] is False, result["reason"]  # before checkpoints: ok
    assert "cut off" in result["reason"]
    assert result["first_broken"] == signed - 5


def _signed_by(
    key: Ed25519PrivateKey, checkpoint: dict[str, Any], **changes: Any
) -> dict[str, Any]:
    """``checkpoint`` with ``changes``, signed by ``key`` as the format says (version 1)."""
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    body = checkpoint | {"key_id": hashlib.sha256(raw).hexdigest()} | changes
    fields = {k: body[k] for k in ("at", "event_id", "hash", "key_id", "version")}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    signature = key.sign(b"dsr-audit-checkpoint/v1\n" + canonical)
    return body | {"signature": base64.b64encode(signature).decode()}


def test_forged_checkpoints_are_refused(gateway: Gateway, store_url: str) -> None:
    with gateway.serving() as client:
        listed = client.get("/v1/audit/checkpoints", headers=gateway.auditor)
        public = client.get("/v1/audit/public-key", headers=gateway.auditor)
    assert listed.status_code == 200 and public.status_code == 200, listed.text
    genuine = listed.json()[-1]
    pinned = public.json()["public_key"]
    assert gateway.verify({"checkpoints": [genuine], "public_key": pinned})["ok"] is True

    sig = bytearray(base64.b64decode(genuine["signature"]))
    sig[7] ^= 0x01
    flipped = genuine | {"signature": base64.b64encode(bytes(sig)).decode()}
    other = genuine | {"hash": "f" * 64}  # the head the attacker would like signed
    mallory = Ed25519PrivateKey.generate()
    theirs = _signed_by(mallory, genuine, hash="f" * 64)
    posing = theirs | {"key_id": genuine["key_id"]}  # claims the gateway's key id
    cases = {
        "altered signature": (flipped, "does not verify"),
        "altered hash": (other, "does not verify"),
        "another key": (theirs, "not trusted"),
        "another key posing as the gateway's": (posing, "does not verify"),
    }
    for case, (forged, why) in cases.items():
        for key in (pinned, None):  # the auditor's pinned key, or the gateway's
            result = gateway.verify({"checkpoints": [forged], "public_key": key})
            assert result["ok"] is False, case
            refused = result["checkpoints"]["refused"]
            assert [r["source"] for r in refused] == ["supplied"], case
            assert why in refused[0]["reason"], case
            assert result["checkpoints"]["accepted"]["supplied"] == 0, case

    # The attacker slips their own checkpoint into the store's table.
    row = {k: theirs[k] for k in ("event_id", "hash", "key_id", "version", "signature", "at")}
    engine = make_engine(store_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO audit_checkpoints (event_id, hash, key_id, version, signature, at) "
                "VALUES (:event_id, :hash, :key_id, :version, :signature, :at)"
            ),
            row,
        )
    engine.dispose()
    result = gateway.verify()
    assert result["ok"] is False
    assert [(r["source"], r["reason"]) for r in result["checkpoints"]["refused"]] == [
        ("store", "signed by a key that is not trusted")
    ]


def test_the_log_outside_the_store_survives_a_rewritten_checkpoint_table(
    gateway: Gateway, store_url: str
) -> None:
    signed = head_id(store_url)
    kept = json.loads(gateway.log.read_text().splitlines()[-1])  # the auditor's own copy
    assert kept["event_id"] == signed
    engine = make_engine(store_url)
    rewrite_tail(engine, EDITED)
    drop_guards(engine, "audit_checkpoints")
    sql(engine, "DELETE FROM audit_checkpoints")  # no checkpoint left in the store
    engine.dispose()
    plain_verify_passes(store_url)

    result = gateway.verify()  # the log outside the database
    assert result["ok"] is False, result["reason"]
    assert result["first_broken"] == signed and "rewritten" in result["reason"]
    assert result["checkpoints"]["accepted"] == {"store": 0, "log": 1}

    gateway.log.write_text("")  # the attacker empties the log as well
    result = gateway.verify({"checkpoints": [kept]})  # the auditor's saved checkpoint
    assert result["ok"] is False, result["reason"]
    assert result["first_broken"] == signed and "rewritten" in result["reason"]
    assert result["checkpoints"]["accepted"]["supplied"] == 1
