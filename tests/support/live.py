"""A gateway as deployed: ``dsr gateway serve`` in its own process, spoken to over HTTP.

``LiveGateway`` starts the real server (uvicorn, the job worker, the Docker
backend) on a free loopback port with its own data directory, bootstraps
accounts and tokens with the ``dsr`` commands an operator of the machine
would use, and can be stopped politely or killed with SIGKILL. The helpers
below drive the HTTP API the way the people in DESIGN.md do: a provider
uploads a dataset and its policy, a data request goes through formal and
provider review to a grant.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.support.city import ENTITY, POLICIES

DSR = str(Path(sys.executable).with_name("dsr"))
# Where the worker leaves a job (held and blocked wait for reviewers, not for it).
SETTLED = frozenset(
    {"released", "held", "blocked", "failed", "cancelled", "rejected", "completed", "denied",
     "refused"}
)  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveGateway:
    def __init__(self, data_dir: Path, *, runtime: str = "runc") -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        # No client configuration leaks in: `dsr accounts` and friends open the store.
        client = ("DSR_SERVER", "DSR_TOKEN", "DSR_PROFILE")
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in client},
            "DSR_GATEWAY_DATA_DIR": str(data_dir),
            "DSR_GATEWAY_DATABASE_URL": "",
            "DSR_RUNTIME": runtime,
            "DSR_CONFIG": str(data_dir.parent / "no-dsr-config.toml"),
        }
        self.log = data_dir.parent / "gateway.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.tokens: dict[str, str] = {}
        self._clients: list[httpx.Client] = []
        data_dir.mkdir(parents=True, exist_ok=True)

    # -- the process ---------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [DSR, "gateway", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the gateway exited:\n{self.log_text()}")
            try:
                if httpx.get(f"{self.base}/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"the gateway did not answer in {timeout} s:\n{self.log_text()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, jobs are left wherever they were."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self.process = None

    def stop(self) -> None:
        for client in self._clients:
            client.close()
        self._clients = []
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(30)
        self.process = None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    # -- the machine owner's bootstrap ---------------------------------------------------

    def dsr(self, *args: str) -> str:
        done = subprocess.run(
            [DSR, *args], env=self.env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"dsr {' '.join(args)}: {done.stderr}"
        return done.stdout

    def account(self, name: str, *roles: str) -> str:
        """Create an account and return a fresh bearer token for it."""
        self.dsr("accounts", "create", name, *(a for r in roles for a in ("--role", r)))
        token = self.dsr("tokens", "issue", name).strip()
        self.tokens[name] = token
        return token

    # -- speaking HTTP -------------------------------------------------------------------

    def client(self, who: str) -> httpx.Client:
        """A client speaking as ``who`` (closed by ``stop``)."""
        client = httpx.Client(
            base_url=self.base,
            headers={"Authorization": f"Bearer {self.tokens[who]}"},
            timeout=60,
        )
        self._clients.append(client)
        return client


def upload_dataset(client: httpx.Client, path: Path, name: str) -> dict[str, Any]:
    with path.open("rb") as f:
        response = client.post(
            "/v1/datasets",
            files={"file": (path.name, f, "application/octet-stream")},
            data={"name": name, "entity_column": ENTITY[name]},
        )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def apply_policy(client: httpx.Client, name: str) -> dict[str, Any]:
    response = client.put(
        f"/v1/datasets/{name}/policy",
        content=(POLICIES / f"{name}.yaml").read_bytes(),
        headers={"Content-Type": "application/yaml"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def request_grant(
    operator: httpx.Client,
    admin: httpx.Client,
    provider: httpx.Client,
    datasets: Iterable[tuple[str, list[str]]],
    *,
    scenario: str = "district-population",
) -> str:
    """A data request taken through formal review, provider review and supply: the grant id."""
    made = operator.post(
        "/v1/requests",
        json={
            "scenario": scenario,
            "purpose": "population by district for service planning",
            "content": "resident counts by district",
            "use": "aggregate statistics for the city's planning office",
            "datasets": [{"dataset": d, "columns": c} for d, c in datasets],
        },
    )
    assert made.status_code == 201, made.text
    rid = made.json()["id"]
    formal = admin.post(f"/v1/requests/{rid}/formal-review", json={"decision": "pass"})
    assert formal.status_code == 200, formal.text
    substantive = provider.post(f"/v1/requests/{rid}/provider-review", json={"decision": "approve"})
    assert substantive.status_code == 200, substantive.text
    until = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    supplied = provider.post(f"/v1/requests/{rid}/supply", json={"valid_until": until})
    assert supplied.status_code == 201, supplied.text
    return str(supplied.json()["grant_id"])


def submit(client: httpx.Client, grant: str, kind: str, code: str) -> str:
    response = client.post("/v1/jobs", json={"grant": grant, "kind": kind, "code": code})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def wait(client: httpx.Client, job: str, timeout: float = 180.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/v1/jobs/{job}").json()
        if body["state"] in SETTLED:
            return body
        time.sleep(0.3)
    raise AssertionError(f"job {job} did not end in {timeout} s")


@dataclass
class DsrShell:
    """The real ``dsr`` command run in ``root`` against ``gw``, as a person's shell would."""

    gw: LiveGateway
    root: Path
    env: dict[str, str]

    def dsr(
        self, *args: str, who: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``dsr`` as ``who`` (its token in DSR_TOKEN); never a traceback."""
        extra = {"DSR_TOKEN": self.gw.tokens[who]} if who else {}
        done = subprocess.run(
            [DSR, *args],
            env={**self.env, **extra, **(env or {})},
            capture_output=True,
            text=True,
            timeout=300,
            cwd=self.root,
        )
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def ok(self, *args: str, who: str | None = None, **kw: Any) -> str:
        done = self.dsr(*args, who=who, **kw)
        assert done.returncode == 0, f"dsr {' '.join(args)}: {done.stderr}{done.stdout}"
        return done.stdout

    def json(self, *args: str, who: str | None = None) -> Any:
        return json.loads(self.ok(*args, "--json", who=who))
