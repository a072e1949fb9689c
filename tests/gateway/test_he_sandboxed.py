"""Product calls are evaluated in a hardened sandbox container (``gateway.he.sandboxed``).

The container answers (on runc, and once on gVisor), it is hardened as job
containers are (code run inside it cannot connect out, resolve a name,
write to its input or its root, or become root), a container killed behind
the evaluator's back is started again, a malformed ciphertext is the same
422 as in process, the spool refuses symlinks on both sides, and what the
container sees holds no raw identifier.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.he.errors import HEUnavailable
from gateway.he.sandboxed import Sandboxed, publish, read_spool
from sandbox.container.he import verify
from sandbox.container.he.errors import HEInputError
from sandbox.container.he.server import Server
from sandbox.he.client import VerificationKeys
from tests.support.engine import require_engine
from tests.support.he_products import OCTETS, band, ready_product
from tests.support.he_products import ask as ask_claim
from tests.support.he_world import FIRMS, World, code, make_world

pytestmark = pytest.mark.docker

# Each line prints "contained" when the attempt fails as it must.
ATTACK = """
import os, socket
def tried(what):
    try:
        what()
    except OSError:
        print("contained")
    else:
        print("ESCAPED", what)
tried(lambda: socket.create_connection(("1.1.1.1", 53), timeout=2))
tried(lambda: socket.getaddrinfo("example.com", 443))
tried(lambda: open("/he/in/tables/planted.npz", "wb"))
tried(lambda: open("/etc/planted", "w"))
tried(lambda: os.setuid(0))
"""


@pytest.fixture(scope="module")
def vkeys() -> VerificationKeys:
    return VerificationKeys.make()


def sandboxed_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runtime: str) -> World:
    require_engine()
    monkeypatch.setenv("DSR_RUNTIME", runtime)
    return make_world(tmp_path / "var", he_evaluator="sandbox")


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    w = sandboxed_world(tmp_path, monkeypatch, "runc")
    with w.client:
        yield w
    w.app.state.engine.dispose()


def evaluator(w: World) -> Sandboxed:
    found = w.app.state.he.evaluator
    assert isinstance(found, Sandboxed)
    return found


def answers(w: World, keys: VerificationKeys, product: dict, context: str, i: int) -> bool:  # type: ignore[type-arg]
    r = ask_claim(w, keys, product, context, code(i), band(i))
    assert r.status_code == 200, r.text
    return keys.read_answer(r.content)


def test_the_container_answers_is_hardened_and_comes_back(
    world: World, vkeys: VerificationKeys, docker_client
) -> None:  # type: ignore[no-untyped-def]
    w = world
    product, context = ready_product(w, vkeys)
    assert answers(w, vkeys, product, context, 7)
    ev = evaluator(w)
    first = docker_client.containers.get(ev.container_id())
    host, config = first.attrs["HostConfig"], first.attrs["Config"]
    assert host["NetworkMode"] == "none" and host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"] and host["Runtime"] == "runc"
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert host["Memory"] == 2 * 2**30 and host["PidsLimit"] == 64
    assert config["User"] == "1000:1000" and config["Labels"]["dsr.role"] == "he-evaluator"
    assert first.attrs["State"]["Pid"] not in (0, os.getpid())
    mounts = {m["Destination"]: m for m in first.attrs["Mounts"]}
    assert set(mounts) == {"/he/in", "/he/io"} and mounts["/he/in"]["RW"] is False

    # What the container sees: tables and contexts only, no raw identifier.
    listing = first.exec_run(
        ["python3", "-c", "import os; print(*(os.path.join(d, f) for d, _, fs in "
         "os.walk('/he/in') for f in fs))"], user="1000"
    )  # fmt: skip
    seen = listing.output.decode().split()
    assert listing.exit_code == 0 and seen
    assert all(p.startswith(("/he/in/tables/", "/he/in/contexts/")) for p in seen), seen
    inside = b"".join(p.read_bytes() for p in ev.inp.rglob("*") if p.is_file())
    assert not any(code(i).encode() in inside for i in range(FIRMS))

    # Code running in the evaluator, as a SEAL exploit would: no way out, nothing to change.
    attack = first.exec_run(["python3", "-c", ATTACK], user="1000")
    assert attack.exit_code == 0, attack.output.decode()
    assert attack.output.decode().split() == ["contained"] * 5, attack.output.decode()

    # Killed behind the evaluator's back: the next call starts it again.
    first.remove(force=True)
    assert answers(w, vkeys, product, context, 8)
    other = ask_claim(w, vkeys, product, context, code(9), band(9) + 1)
    assert other.status_code == 200 and not vkeys.read_answer(other.content)
    assert ev.container_id() != first.id

    # A malformed ciphertext: the same 422 and message as in process.
    bits, bucket = product["spec"]["bucket_bits"], 0
    url = f"/v1/he/products/{product['id']}/verify?context={context}&bucket={bucket}"
    bad = vkeys.encrypt_claim(product["id"], code(7), 0, bucket_bits=bits).ciphertext[:-9]
    r = w.client.post(url, headers=w.h("bank-1", **OCTETS), content=bad)
    with pytest.raises(HEInputError) as in_process:
        table = verify.build_table(product["id"], [], verify.Band("x", (1.0,)), bucket_bits=bits)
        query = verify.VerificationQuery(product["id"], bits, bucket, bad)
        verify.evaluate(table, vkeys.public_context(), query)
    assert r.status_code == 422 and r.json()["detail"] == str(in_process.value)


def test_on_gvisor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, docker_client) -> None:  # type: ignore[no-untyped-def]
    if "runsc" not in docker_client.info().get("Runtimes", {}):
        pytest.skip("runsc is not registered with the engine")
    w = sandboxed_world(tmp_path, monkeypatch, "runsc")
    keys = VerificationKeys.make()
    with w.client:
        product, context = ready_product(w, keys)
        assert answers(w, keys, product, context, 11)
        ev = evaluator(w)
        container = docker_client.containers.get(ev.container_id())
        assert container.attrs["HostConfig"]["Runtime"] == "runsc"
    w.app.state.engine.dispose()
    # The gateway's shutdown removed the container.
    assert not docker_client.containers.list(all=True, filters={"name": ev.name})


def test_the_host_refuses_symlinks_in_the_spool(tmp_path: Path) -> None:
    secret = tmp_path / "host-secret"
    secret.write_bytes(b"a host file the container must never name")
    spool = tmp_path / "spool"
    spool.mkdir()
    # A request file planted as a symlink: replaced, never written through.
    (spool / "r.q").symlink_to(secret)
    publish(spool / "r.q", b"query bytes")
    assert secret.read_bytes().startswith(b"a host file")
    assert not (spool / "r.q").is_symlink() and (spool / "r.q").read_bytes() == b"query bytes"
    # An answer replaced by a symlink, a hard link or a FIFO: refused, never read.
    (spool / "a1").symlink_to(secret)
    os.link(secret, spool / "a2")
    os.mkfifo(spool / "a3")
    for name in ("a1", "a2", "a3"):
        with pytest.raises(HEUnavailable):
            read_spool(spool / name, 1024)
    (spool / "big").write_bytes(b"x" * 2048)
    with pytest.raises(HEUnavailable):
        read_spool(spool / "big", 1024)


def test_an_answer_swapped_for_a_symlink_fails_the_call(tmp_path: Path) -> None:
    """A compromised evaluator answers with a symlink to a host file: a 503, nothing read."""
    secret = tmp_path / "host-secret"
    secret.write_bytes(b"not for the consumer")
    ev = Sandboxed(tmp_path / "sb", None, None)  # type: ignore[arg-type]  # no container
    ev.settings = type("S", (), {"job_uid": os.getuid()})()  # type: ignore[assignment]
    ev._dirs()
    ev._container, ev._alive = object(), lambda: True  # type: ignore[method-assign]
    stop, done = threading.Event(), set()

    def hostile() -> None:
        while not stop.is_set():
            for request in (ev.io / "req").glob("*.json"):
                if request.name not in done:
                    done.add(request.name)
                    os.symlink(secret, ev.io / "ans" / request.name[:-5])
            time.sleep(0.002)

    thread = threading.Thread(target=hostile, daemon=True)
    thread.start()
    try:
        with pytest.raises(HEUnavailable, match="not a plain file"):
            ev._ask({"op": "check", "kind": "verify"}, b"bytes")
    finally:
        stop.set()
        thread.join()
    assert not list((ev.io / "ans").iterdir()) and not list((ev.io / "req").iterdir())


def test_the_server_refuses_a_query_file_that_is_a_symlink(tmp_path: Path) -> None:
    for sub in ("in/tables", "io/req", "io/ans", "io/err"):
        (tmp_path / sub).mkdir(parents=True)
    secret = tmp_path / "host-secret"
    secret.write_bytes(b"\x0a\x0bHOST-SECRET")
    (tmp_path / "io/req/r1.json").write_text('{"op": "check", "kind": "verify"}')
    (tmp_path / "io/req/r1.q").symlink_to(secret)
    server = Server(tmp_path)
    assert server.pending() == ["r1"]
    server.serve_one("r1")
    assert not (tmp_path / "io/ans/r1").exists()
    error = (tmp_path / "io/err/r1.json").read_text()
    assert "MalformedInput" in error and "HOST-SECRET" not in error
    assert not list((tmp_path / "io/req").iterdir())
