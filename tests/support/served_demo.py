"""``make run``'s demo served for a test, and the README's walkthrough blocks.

``served_demo`` starts ``dsr gateway demo`` (the real server, containers on
runc, a free port, a data directory under the test's tmp path) and stops it
with Ctrl-C (SIGINT) as a person would; ``walkthrough`` reads a fenced
``sh`` block of the README by its ``<!-- walkthrough:<name> -->`` marker,
so tests run what the README says, as written.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from tests.support.engine import ROOT
from tests.support.live import free_port

T = TypeVar("T")


def walkthrough(name: str) -> str:
    """The README's fenced ``sh`` block after ``<!-- walkthrough:<name> ... -->``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(rf"<!-- walkthrough:{name}\b[^>]*-->\s*```sh\n(.*?)```", text, re.DOTALL)
    assert found, f"README.md has no walkthrough:{name} block"
    return found.group(1)


def bash(script: str, cwd: Path, *, timeout: float = 60, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    assert done.returncode == 0, (
        f"{script}\nexit {done.returncode}: {done.stderr}\nstdout:\n{done.stdout[-4000:]}"
    )
    return done.stdout


def wait_for(what: str, check: Callable[[], T | None], seconds: float, log: Path) -> T:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what} within {seconds}s; server log:\n{log.read_text()[-3000:]}")


@dataclass(frozen=True)
class ServedDemo:
    directory: Path  # the working directory: var/ (the data directory) is in it
    port: int
    log: Path
    env: dict[str, str]  # the environment a person's shell would have (no DSR_SERVER/TOKEN)


@contextmanager
def served_demo(directory: Path, *, residents: int) -> Iterator[ServedDemo]:
    dsr = shutil.which("dsr", path=str(Path(sys.executable).parent))
    assert dsr, "the dsr command is not installed beside this Python (pip install -e .)"
    directory.chmod(0o755)
    port = free_port()
    env = {
        **os.environ,
        "DSR_GATEWAY_DATA_DIR": str(directory / "var"),
        "DSR_RUNTIME": "runc",
        "DSR_CONFIG": str(directory / "no-config.toml"),  # a person's own profiles stay out
    }
    for name in ("DSR_GATEWAY_DATABASE_URL", "DSR_GATEWAY_ENVIRONMENT", "DSR_SERVER"):
        env.pop(name, None)
    for name in ("DSR_TOKEN", "DSR_PROFILE"):
        env.pop(name, None)
    log = directory / "server.log"
    started = time.monotonic()
    with log.open("wb") as out:
        server = subprocess.Popen(
            [dsr, "gateway", "demo", "--port", str(port), "--residents", str(residents)],
            cwd=directory,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def healthy() -> bool:
            if server.poll() is not None:
                raise AssertionError(f"the server exited {server.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=2) as r:
                    return bool(r.status == 200)
            except OSError:
                return False

        wait_for("the gateway answers /v1/health", healthy, 90, log)
        print(f"seeded and serving after {time.monotonic() - started:.1f}s")
        yield ServedDemo(directory, port, log, env)
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C: uvicorn shuts down, the worker stops
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            raise AssertionError("the server did not stop on SIGINT") from None
    assert server.returncode == 0, log.read_text()[-3000:]
