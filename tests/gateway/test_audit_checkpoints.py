"""Signed checkpoints of the audit chain's head on both backends: the signing key
file and the signer command, the format, when checkpoints are made (every N
events, every few minutes, on demand, by the background thread), the table's
guard, the routes and the ``dsr audit`` commands (local and through a served
gateway). The attacks themselves: tests/security/test_audit_anchors.py."""

from __future__ import annotations

import base64
import json
import os
import re
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from gateway.app import create_app
from gateway.audit import append
from gateway.audit.anchors import verify_stored
from gateway.audit.chain import event_hash, iter_events
from gateway.audit.checkpointer import Checkpointer
from gateway.audit.checkpoints import Checkpoint, CheckpointLog, stored
from gateway.audit.signers import (
    CommandSigner,
    FileSigner,
    key_id,
    load_public_key,
    signer_from_settings,
    verifies,
)
from gateway.cli import app as dsr_app
from gateway.errors import ChainBroken, CheckpointError, SignerError
from gateway.identity import create_account, issue_token
from gateway.settings import GatewaySettings
from gateway.store import make_engine, migrate, read_transaction
from tests.support.live import free_port

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def fill(engine: Engine, n: int) -> None:
    with engine.begin() as conn:
        for i in range(n):
            append(conn, "job.state", "system", grant_id="G-1", detail={"n": i})


def make_checkpointer(
    engine: Engine, tmp_path: Path, *, every_events: int = 5, every_seconds: float = 3600
) -> tuple[Checkpointer, Clock]:
    clock = Clock()
    made = Checkpointer(
        engine,
        FileSigner(tmp_path / "keys" / "audit-signing.key"),
        CheckpointLog(tmp_path / "checkpoints.jsonl"),
        every_events=every_events,
        every_seconds=every_seconds,
        clock=clock,
    )
    return made, clock


def sql(engine: Engine, statement: str) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(statement)


def keys_of(signer: FileSigner | CommandSigner) -> dict[str, Any]:
    public = signer.public_key()
    return {key_id(public): public}


# -- the signing key file ------------------------------------------------------------------


def test_the_key_file_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "audit-signing.key"
    signers = [FileSigner(path) for _ in range(8)]
    ids: list[str] = []
    start = threading.Barrier(len(signers))

    def first_use(signer: FileSigner) -> None:
        start.wait(timeout=30)
        ids.append(key_id(signer.public_key()))

    threads = [threading.Thread(target=first_use, args=(s,)) for s in signers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 8 and len(set(ids)) == 1  # one key, whoever came first
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(path.parent).st_mode & 0o777 == 0o700
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    again = FileSigner(path)
    payload = b"dsr-audit-checkpoint/v1\n{}"
    assert verifies(again.public_key(), signers[0].sign(payload), payload)


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        ("group-readable", "mode 0640"),
        ("world-readable", "mode 0644"),
        ("symlink", "symlink"),
        ("dangling symlink", "symlink"),
        ("directory writable by others", "may be written by others"),
        ("not a key", "not an unencrypted PEM private key"),
        ("missing, not to be made", "no signing key"),
    ],
)
def test_an_unsafe_key_file_is_refused(tmp_path: Path, damage: str, problem: str) -> None:
    real = tmp_path / "real" / "audit-signing.key"
    FileSigner(real).public_key()
    path = tmp_path / "keys" / "audit-signing.key"
    path.parent.mkdir(mode=0o700)
    if damage in ("group-readable", "world-readable"):
        path.write_bytes(real.read_bytes())
        path.chmod(0o640 if damage == "group-readable" else 0o644)
    elif damage == "symlink":
        path.symlink_to(real)
    elif damage == "dangling symlink":
        path.symlink_to(tmp_path / "nowhere")
    elif damage == "directory writable by others":
        path.write_bytes(real.read_bytes())
        path.chmod(0o600)
        path.parent.chmod(0o777)
    elif damage == "not a key":
        path.write_bytes(b"hello")
        path.chmod(0o600)
    with pytest.raises(SignerError, match=problem):
        FileSigner(path, create=damage != "missing, not to be made").sign(b"x")
    assert real.read_bytes() != b""  # the key behind a symlink is left alone


# -- the signer command ---------------------------------------------------------------------

SIGNER = """
import base64, sys
from cryptography.hazmat.primitives import serialization as s
key = s.load_pem_private_key(open(sys.argv[1], "rb").read(), None)
if sys.argv[2:] == ["--public-key"]:
    pem = key.public_key().public_bytes(s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo)
    sys.stdout.write(pem.decode())
elif sys.argv[2:] == ["--garbage"]:
    print("not a signature!")
else:
    sys.stdout.write(base64.b64encode(key.sign(sys.stdin.buffer.read())).decode() + "\\n")
"""


def _pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture
def hsm(tmp_path: Path) -> tuple[str, Ed25519PrivateKey]:
    """A signer command (a script holding its own key) and that key."""
    key = Ed25519PrivateKey.generate()
    (tmp_path / "hsm").mkdir()
    (tmp_path / "hsm" / "key.pem").write_bytes(_pem(key))
    (tmp_path / "hsm" / "signer.py").write_text(SIGNER)
    command = f"{sys.executable} {tmp_path / 'hsm' / 'signer.py'} {tmp_path / 'hsm' / 'key.pem'}"
    return command, key


def test_a_signer_command_signs_checkpoints(
    engine: Engine, tmp_path: Path, hsm: tuple[str, Ed25519PrivateKey]
) -> None:
    command, key = hsm
    signer = CommandSigner(command)
    assert key_id(signer.public_key()) == key_id(key.public_key())
    assert verifies(key.public_key(), signer.sign(b"payload"), b"payload")
    url = engine.url.render_as_string(hide_password=False)
    settings = GatewaySettings(
        data_dir=tmp_path / "var", database_url=url, audit_signer_command=command
    )
    fill(engine, 3)
    made, created = Checkpointer.from_settings(engine, settings).checkpoint_now()
    assert created and made is not None and made.event_id == 3
    assert verifies(key.public_key(), made.signature, made.payload())
    assert not (tmp_path / "var" / "keys").exists()  # no key file beside a signer command
    with read_transaction(engine) as conn:
        log = CheckpointLog(tmp_path / "var" / "audit-checkpoints.jsonl")
        result = verify_stored(conn, keys_of(signer), log)
    assert result.ok and dict(result.accepted) == {"store": 1, "log": 1}


def test_a_signer_command_that_misbehaves_is_an_error(
    tmp_path: Path, hsm: tuple[str, Ed25519PrivateKey]
) -> None:
    command, _ = hsm
    other = tmp_path / "other.pub"
    other.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    cases = [
        (CommandSigner(f"{sys.executable} -c 'import sys; sys.exit(3)'"), "exited with 3"),
        (CommandSigner(command + " --garbage", other), "did not print a base64 signature"),
        (CommandSigner(command, other), "does not verify under its public key"),
        (CommandSigner(str(tmp_path / "no-such-signer")), "could not run"),
    ]
    for signer, problem in cases:
        with pytest.raises(SignerError, match=problem):
            signer.sign(b"payload")
    with pytest.raises(SignerError, match="empty"):
        CommandSigner("  ")
    settings = GatewaySettings(
        data_dir=tmp_path, audit_signer_command=command, audit_signer_public_key=other
    )
    assert isinstance(signer_from_settings(settings), CommandSigner)


def test_public_keys_are_pem_or_the_base64_of_32_bytes() -> None:
    public = Ed25519PrivateKey.generate().public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert key_id(load_public_key(pem)) == key_id(public)
    assert key_id(load_public_key(base64.b64encode(raw).decode())) == key_id(public)
    rsa = (
        generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    for bad in (rsa, b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", b"abc", b""):
        with pytest.raises(CheckpointError):
            load_public_key(bad)


# -- the format -----------------------------------------------------------------------------


def test_the_payload_is_domain_separated_canonical_json(tmp_path: Path) -> None:
    signer = FileSigner(tmp_path / "k.key")
    from gateway.audit.checkpoints import sign_head

    cp = sign_head(signer, 7, "a" * 64, T0)
    first, body = cp.payload().split(b"\n", 1)
    assert first == b"dsr-audit-checkpoint/v1"
    assert json.loads(body) == {
        "at": "2026-12-01T09:00:00.000000+00:00",
        "event_id": 7,
        "hash": "a" * 64,
        "key_id": key_id(signer.public_key()),
        "version": 1,
    }
    assert body == json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    assert Checkpoint.from_json(json.loads(json.dumps(cp.to_json()))) == cp
    good = cp.to_json()
    for change in (
        {"kind": "event"},
        {"version": 2},
        {"event_id": 0},
        {"event_id": True},
        {"hash": "A" * 64},
        {"key_id": "a" * 63},
        {"at": "2026-12-01T09:00:00"},
        {"at": "yesterday"},
        {"signature": "AAAA"},
        {"signature": "not base64!"},
    ):
        with pytest.raises(CheckpointError):
            Checkpoint.from_json(good | change)


# -- when checkpoints are made ----------------------------------------------------------------


def test_a_checkpoint_every_n_events(engine: Engine, tmp_path: Path) -> None:
    checkpointer, _ = make_checkpointer(engine, tmp_path, every_events=5)
    fill(engine, 4)
    assert not checkpointer.due() and checkpointer.tick() is None
    fill(engine, 1)
    made = checkpointer.tick()
    assert made is not None and made.event_id == 5
    fill(engine, 4)
    assert checkpointer.tick() is None
    fill(engine, 7)
    made = checkpointer.tick()
    assert made is not None and made.event_id == 16  # the head when it looked
    with read_transaction(engine) as conn:
        assert [c.event_id for c in stored(conn)] == [5, 16]
    lines = (tmp_path / "checkpoints.jsonl").read_text().splitlines()
    assert [json.loads(line)["event_id"] for line in lines] == [5, 16]


def test_a_checkpoint_when_the_period_passed_and_the_head_moved(
    engine: Engine, tmp_path: Path
) -> None:
    checkpointer, clock = make_checkpointer(engine, tmp_path, every_events=1000, every_seconds=60)
    fill(engine, 3)
    assert checkpointer.tick() is None  # neither 1000 events nor a minute yet
    clock.advance(61)
    made = checkpointer.tick()
    assert made is not None and (made.event_id, made.at) == (3, T0 + timedelta(seconds=61))
    clock.advance(600)
    assert checkpointer.tick() is None  # the head has not moved: nothing new to sign
    fill(engine, 1)
    made = checkpointer.tick()
    assert made is not None and made.event_id == 4
    fill(engine, 1)
    clock.advance(59)
    assert checkpointer.tick() is None


def test_a_checkpoint_on_demand(engine: Engine, tmp_path: Path) -> None:
    checkpointer, _ = make_checkpointer(engine, tmp_path)
    assert checkpointer.checkpoint_now() == (None, False)  # an empty log: nothing to sign
    fill(engine, 2)
    made, created = checkpointer.checkpoint_now()
    assert created and made is not None and made.event_id == 2
    assert checkpointer.checkpoint_now() == (made, False)
    # A second gateway on the same store and key finds the checkpoint there.
    twin, _ = make_checkpointer(engine, tmp_path)
    assert twin.last() == made and twin.checkpoint_now() == (made, False)


def test_the_background_thread_signs_without_being_asked(engine: Engine, tmp_path: Path) -> None:
    checkpointer, _ = make_checkpointer(engine, tmp_path, every_events=3)
    checkpointer.start(poll_seconds=0.01)
    try:
        fill(engine, 3)
        assert checkpointer.made.wait(timeout=30)
    finally:
        checkpointer.stop()
    last = checkpointer.last()
    assert last is not None and last.event_id == 3


def test_a_broken_chain_is_never_signed(engine: Engine, tmp_path: Path) -> None:
    checkpointer, _ = make_checkpointer(engine, tmp_path)
    fill(engine, 10)
    signed, _ = checkpointer.checkpoint_now()
    assert signed is not None
    # The attacker rewrites the tail from event 6 on, consistently.
    if engine.dialect.name == "sqlite":
        sql(engine, "DROP TRIGGER audit_events_no_update")
    else:
        sql(engine, "ALTER TABLE audit_events DISABLE TRIGGER USER")
    with engine.connect() as conn:
        tail = [e for e in iter_events(conn) if e.id >= 6]
    prev = tail[0].prev_hash
    with engine.begin() as conn:
        for e in tail:
            digest = event_hash(e.id, e.at, e.type, "x", e.grant_id, e.datasets, e.detail, prev)
            conn.execute(
                sa.text(
                    "UPDATE audit_events SET actor = 'x', prev_hash = :p, hash = :h WHERE id = :i"
                ),
                {"p": prev, "h": digest, "i": e.id},
            )
            prev = digest
    fill(engine, 2)  # the gateway goes on writing
    with pytest.raises(ChainBroken, match="recorded earlier"):
        checkpointer.checkpoint_now()
    # Restarted, with the table's checkpoints deleted too: the log outside remembers.
    if engine.dialect.name == "sqlite":
        sql(engine, "DROP TRIGGER audit_checkpoints_no_delete")
    else:
        sql(engine, "ALTER TABLE audit_checkpoints DISABLE TRIGGER USER")
    sql(engine, "DELETE FROM audit_checkpoints")
    restarted, _ = make_checkpointer(engine, tmp_path)
    assert restarted.last() == signed
    with pytest.raises(ChainBroken):
        restarted.checkpoint_now()
    with read_transaction(engine) as conn:
        assert stored(conn) == []


def test_a_cut_chain_is_never_signed_and_a_forged_row_never_taken(
    engine: Engine, tmp_path: Path
) -> None:
    checkpointer, _ = make_checkpointer(engine, tmp_path)
    fill(engine, 8)
    signed, _ = checkpointer.checkpoint_now()
    assert signed is not None and signed.event_id == 8
    if engine.dialect.name == "sqlite":
        sql(engine, "DROP TRIGGER audit_events_no_delete")
    else:
        sql(engine, "ALTER TABLE audit_events DISABLE TRIGGER USER")
    sql(engine, "DELETE FROM audit_events WHERE id > 5")
    with pytest.raises(ChainBroken, match="cut off"):
        checkpointer.checkpoint_now()  # not "the head has not moved"
    # Another store: an attacker wrote a row for the next head under our key id.
    fresh, log = tmp_path / "fresh", tmp_path / "fresh" / "checkpoints.jsonl"
    other = make_engine(f"sqlite:///{fresh / 'g.sqlite'}")
    migrate(other)
    fill(other, 3)
    twin = Checkpointer(
        other,
        checkpointer.signer,
        CheckpointLog(log),
        every_events=5,
        every_seconds=60,
    )
    forged = signed.to_json() | {"event_id": 3, "hash": "f" * 64}
    with other.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO audit_checkpoints (event_id, hash, key_id, version, signature, at) "
                "VALUES (:event_id, :hash, :key_id, :version, :signature, :at)"
            ),
            {k: forged[k] for k in ("event_id", "hash", "key_id", "version", "signature", "at")},
        )
    with pytest.raises(CheckpointError, match="tampered with"):
        twin.checkpoint_now()
    (line,) = log.read_text().splitlines()  # the genuine one went to the log all the same
    genuine = Checkpoint.from_json(json.loads(line))
    assert genuine.event_id == 3 and genuine.hash != "f" * 64
    other.dispose()


def test_the_gateway_does_not_start_with_an_unsafe_key(tmp_path: Path) -> None:
    key = tmp_path / "var" / "keys" / "audit-signing.key"
    FileSigner(key).public_key()
    key.chmod(0o644)
    app = create_app(GatewaySettings(data_dir=tmp_path / "var"))
    with pytest.raises(SignerError, match="mode 0644"), TestClient(app):
        pass
    app.state.engine.dispose()


def test_the_checkpoint_table_is_append_only(engine: Engine, tmp_path: Path) -> None:
    checkpointer, _ = make_checkpointer(engine, tmp_path)
    fill(engine, 2)
    checkpointer.checkpoint_now()
    statements = [
        "UPDATE audit_checkpoints SET hash = 'x'",
        "DELETE FROM audit_checkpoints",
    ]
    if engine.dialect.name == "postgresql":
        statements.append("TRUNCATE audit_checkpoints")
    for statement in statements:
        refused = f"audit_checkpoints is append-only: {statement.split()[0]} refused"
        with pytest.raises(DBAPIError, match=refused) as caught:
            sql(engine, statement)
        assert isinstance(caught.value, sa.exc.IntegrityError)
    with read_transaction(engine) as conn:
        assert len(stored(conn)) == 1


# -- the routes -------------------------------------------------------------------------------


@pytest.fixture
def gateway(
    store_url: str, tmp_path: Path
) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    settings = GatewaySettings(data_dir=tmp_path / "var", database_url=store_url)
    app = create_app(settings)
    headers = {}
    with app.state.engine.begin() as conn:
        for role in ("admin", "auditor", "provider", "operator"):
            create_account(conn, f"{role}-1", {role}, actor="test")
            token = issue_token(conn, f"{role}-1", actor="test")
            headers[role] = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as client:
        yield client, headers
    app.state.engine.dispose()


def test_checkpoints_through_the_api(gateway: tuple[TestClient, Any]) -> None:
    client, who = gateway
    assert client.get("/v1/audit/checkpoints", headers=who["auditor"]).json() == []
    made = client.post("/v1/audit/checkpoints", headers=who["admin"]).json()
    assert made["created"] is True and made["checkpoint"]["event_id"] == 8
    again = client.post("/v1/audit/checkpoints", headers=who["auditor"]).json()
    assert again == {"created": False, "checkpoint": made["checkpoint"]}
    listed = client.get("/v1/audit/checkpoints", headers=who["provider"]).json()
    assert listed == [made["checkpoint"]]
    key = client.get("/v1/audit/public-key", headers=who["provider"]).json()
    assert key["algorithm"] == "Ed25519" and key["key_id"] == listed[0]["key_id"]
    cp = Checkpoint.from_json(listed[0])
    assert verifies(load_public_key(key["public_key"]), cp.signature, cp.payload())
    assert client.post("/v1/audit/checkpoints", headers=who["operator"]).status_code == 403

    verified = client.get("/v1/audit/verify", headers=who["auditor"]).json()
    assert verified["ok"] is True, verified["reason"]
    assert verified["checkpoints"]["accepted"] == {"store": 1, "log": 1}
    assert verified["checkpoints"]["latest"] == made["checkpoint"]
    posted = client.post(
        "/v1/audit/verify",
        headers=who["auditor"],
        json={"checkpoints": listed, "public_key": key["public_key"]},
    ).json()
    assert posted["ok"] is True and posted["checkpoints"]["accepted"]["supplied"] == 1
    for bad in (
        {"checkpoints": listed, "public_key": "not a key"},
        {"checkpoints": [listed[0] | {"extra": 1}]},
        {"checkpoints": []},
        {"checkpoints": [listed[0] | {"at": "2026-12-01T09:00:00"}]},
    ):
        refused = client.post("/v1/audit/verify", headers=who["auditor"], json=bad)
        assert refused.status_code == 422, bad

    plain = client.get("/v1/audit/events", headers=who["auditor"]).text.splitlines()
    assert all("kind" not in json.loads(line) for line in plain)  # as before
    both = client.get(
        "/v1/audit/events", headers=who["auditor"], params={"checkpoints": "true"}
    ).text.splitlines()
    lines = [json.loads(line) for line in both]
    assert lines[-1] == made["checkpoint"] and lines[-1]["kind"] == "checkpoint"
    assert [x for x in lines if "kind" not in x][: len(plain)] == [json.loads(p) for p in plain]
    mine = client.get("/v1/audit/events", headers=who["provider"], params={"checkpoints": "true"})
    assert [json.loads(line) for line in mine.text.splitlines()] == [made["checkpoint"]]
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        exports = conn.execute(
            sa.text("SELECT detail FROM audit_events WHERE type = 'audit.exported' ORDER BY id")
        ).all()
    details = [d[0] if isinstance(d[0], dict) else json.loads(d[0]) for d in exports]
    assert [d.get("checkpoints") for d in details] == [None, 1, 1]


def test_the_gateway_signs_its_head_when_it_stops(store_url: str, tmp_path: Path) -> None:
    log = tmp_path / "elsewhere" / "anchors.jsonl"
    settings = GatewaySettings(
        data_dir=tmp_path / "var",
        database_url=store_url,
        audit_signing_key=Path("secrets/signing.key"),  # relative: under the data directory
        audit_checkpoint_log=log,
    )
    app = create_app(settings)
    with TestClient(app):
        assert app.state.checkpointer._thread.is_alive()
        fill(app.state.engine, 3)
    assert app.state.checkpointer._thread is None
    assert (tmp_path / "var" / "secrets" / "signing.key").stat().st_mode & 0o777 == 0o600
    (line,) = log.read_text().splitlines()
    assert json.loads(line)["event_id"] == 3
    app.state.engine.dispose()


# -- the console ------------------------------------------------------------------------------


def test_the_auditors_page_shows_the_latest_checkpoint(tmp_path: Path) -> None:
    base = "http://testserver"

    def csrf_of(html: str) -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', html)
        assert found, html[:2000]
        return found.group(1)

    app = create_app(GatewaySettings(data_dir=tmp_path / "var"))
    with app.state.engine.begin() as conn:
        create_account(conn, "auditor", {"auditor"}, actor="test")
        token = issue_token(conn, "auditor", actor="test")
    with TestClient(app, base_url=base) as c:
        form = c.get("/console/login")
        c.post("/console/login", data={"token": token, "csrf": csrf_of(form.text)})
        empty = c.get("/console/audit/verify")
        assert 'id="checkpoint" data-ok="none"' in empty.text
        app.state.checkpointer.checkpoint_now()
        page = c.get("/console/audit/verify").text
        assert 'id="checkpoint" data-ok="true"' in page
        assert '<dd id="checkpoint-event">' in page
        csrf = csrf_of(page)
        ran = c.post("/console/audit/verify", data={"csrf": csrf}, headers={"Origin": base})
        assert 'data-ok="true"' in ran.text and "store: 1, log: 1" in ran.text
        sql(app.state.engine, "DROP TRIGGER audit_events_no_delete")
        sql(app.state.engine, "DELETE FROM audit_events WHERE id > 1")
        cut = c.get("/console/audit/verify").text
        assert 'id="checkpoint" data-ok="false"' in cut and "cut off" in cut
    app.state.engine.dispose()


# -- the command line ---------------------------------------------------------------------------


@pytest.fixture
def dsr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DSR_GATEWAY_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("DSR_GATEWAY_DATABASE_URL", raising=False)
    monkeypatch.setenv("DSR_CONFIG", str(tmp_path / "no-dsr-config.toml"))
    for name in ("DSR_SERVER", "DSR_TOKEN", "DSR_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    return lambda *args, env=None: runner.invoke(dsr_app, list(args), env=env)


def _rewrite_sqlite_tail(path: Path, edited: int) -> None:
    raw = sqlite3.connect(path)
    raw.execute("DROP TRIGGER audit_events_no_update")
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        tail = [e for e in iter_events(conn) if e.id >= edited]
    engine.dispose()
    prev = tail[0].prev_hash
    for e in tail:
        digest = event_hash(e.id, e.at, e.type, "x", e.grant_id, e.datasets, e.detail, prev)
        raw.execute(
            "UPDATE audit_events SET actor = 'x', prev_hash = ?, hash = ? WHERE id = ?",
            (prev, digest, e.id),
        )
        prev = digest
    raw.commit()
    raw.close()


def test_the_local_commands(dsr, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert dsr("accounts", "create", "wang", "--role", "auditor").exit_code == 0
    assert dsr("audit", "checkpoints", "--save", str(tmp_path / "none.json")).exit_code == 1
    made = dsr("audit", "checkpoint")
    assert made.exit_code == 0 and made.output.startswith("checkpoint at event 1 "), made.output
    assert "has not moved" in dsr("audit", "checkpoint").output
    assert dsr("tokens", "issue", "wang").exit_code == 0
    assert dsr("audit", "checkpoint").exit_code == 0  # the head moved: event 2
    listed = json.loads(dsr("audit", "checkpoints", "--json").output)
    assert [c["event_id"] for c in listed] == [1, 2]
    saved, pem = tmp_path / "latest.json", tmp_path / "audit.pub"
    assert dsr("audit", "checkpoints", "--save", str(saved)).exit_code == 0
    assert json.loads(saved.read_text())["event_id"] == 2
    assert dsr("audit", "public-key", "--save", str(pem)).exit_code == 0
    assert pem.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    args = ("audit", "verify", "--checkpoint", str(saved), "--public-key", str(pem))
    ok = dsr(*args)
    assert ok.exit_code == 0 and "audit chain ok: 2 events" in ok.output, ok.output
    assert "1 given" in ok.output
    as_json = json.loads(dsr(*args, "--json").output)
    assert as_json["checkpoints"]["accepted"] == {"store": 2, "log": 2, "supplied": 1}
    exported = [json.loads(x) for x in dsr("audit", "export", "--checkpoints").output.splitlines()]
    assert [x["event_id"] for x in exported if x.get("kind") == "checkpoint"] == [1, 2]
    plain = [json.loads(x) for x in dsr("audit", "export").output.splitlines()]
    assert plain and not any("kind" in x for x in plain)  # without --checkpoints: as before

    other = tmp_path / "other.pub"  # another gateway's key
    elsewhere = {"DSR_GATEWAY_AUDIT_SIGNING_KEY": str(tmp_path / "other.key")}
    other.write_text(dsr("audit", "public-key", env=elsewhere).output)
    foreign = dsr("audit", "verify", "--checkpoint", str(saved), "--public-key", str(other))
    assert foreign.exit_code == 1 and "not trusted" in foreign.output, foreign.output

    _rewrite_sqlite_tail(tmp_path / "var" / "gateway.sqlite", 2)
    (tmp_path / "var" / "audit-checkpoints.jsonl").unlink()  # and the log outside goes too
    broken = dsr(*args)
    assert broken.exit_code == 1 and "rewritten" in broken.output, broken.output
    junk = tmp_path / "junk.json"
    junk.write_text("{}")
    assert dsr("audit", "verify", "--checkpoint", str(junk)).exit_code == 2
    assert "Traceback" not in broken.output + foreign.output


@contextmanager
def served(app: Any) -> Iterator[str]:
    """The app behind a real HTTP server on a loopback port, in this process."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:  # waiting for it to listen, not asserting anything
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def test_the_commands_through_the_gateway(dsr, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = create_app(GatewaySettings(data_dir=tmp_path / "served"))
    tokens = {}
    with app.state.engine.begin() as conn:
        for role in ("admin", "auditor", "provider"):
            create_account(conn, f"{role}-1", {role}, actor="test")
            tokens[role] = issue_token(conn, f"{role}-1", actor="test")
    with served(app) as url:

        def as_(role: str) -> dict[str, str]:
            return {"DSR_SERVER": url, "DSR_TOKEN": tokens[role]}

        made = dsr("audit", "checkpoint", env=as_("admin"))
        assert made.exit_code == 0 and made.output.startswith("checkpoint at event 6 "), made.output
        refused = dsr("audit", "checkpoint", env=as_("provider"))
        assert refused.exit_code == 1 and "needs the role" in refused.output
        saved, pem = tmp_path / "cp.json", tmp_path / "audit.pub"
        assert dsr("audit", "checkpoints", "--save", str(saved), env=as_("provider")).exit_code == 0
        assert dsr("audit", "public-key", "--save", str(pem), env=as_("auditor")).exit_code == 0
        args = ("audit", "verify", "--checkpoint", str(saved), "--public-key", str(pem))
        ok = dsr(*args, env=as_("auditor"))
        assert ok.exit_code == 0 and ok.output.startswith("audit chain ok: "), ok.output
        assert "1 given" in ok.output
        lines = dsr("audit", "export", "--checkpoints", env=as_("provider")).output.splitlines()
        assert [json.loads(x)["kind"] for x in lines] == ["checkpoint"]
        assert dsr("audit", "verify", "--public-key", str(pem), env=as_("auditor")).exit_code == 2
        with app.state.engine.begin() as conn:  # the attacker cuts the tail
            conn.exec_driver_sql("DROP TRIGGER audit_events_no_delete")
            conn.exec_driver_sql("DELETE FROM audit_events WHERE id > 4")
        cut = dsr(*args, "--json", env=as_("auditor"))
        assert cut.exit_code == 1 and "cut off" in json.loads(cut.output)["reason"]
    app.state.engine.dispose()


def test_a_fresh_store_migrates_with_the_table(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'g.sqlite'}")
    migrate(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM audit_checkpoints").scalar_one() == 0
    engine.dispose()
