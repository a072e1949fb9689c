"""An operator against the other operators: flooding the queue with slow jobs.

Operator A submits more jobs that sleep than the gateway has workers; operator
B then submits an ordinary SQL product. With the oldest queued job always
first, A's sleepers would hold every worker for minutes and B would wait for
all of them. With fair scheduling (``gateway.jobs.worker``: at most
``max_running_per_operator`` jobs of one operator at once, operators taking
turns) B's job ends well within a liveness deadline while A's sleepers are
still running, and A's submissions beyond ``max_queued_per_operator`` are
refused with 429 and audited.

Real pieces: the app from ``create_app`` with the runtime of ``build_runtime``
(the Docker engine on runc, the worker pool at its default size), a grant per
operator from the grant service. At the end A's queued jobs are cancelled and
the containers of its running ones killed, so nothing is left behind.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.grants.service import grant_service
from gateway.identity import create_account, issue_token
from gateway.runtime import build_runtime
from gateway.settings import GatewaySettings
from gateway.store.tables import audit_events
from sandbox.intake.policy import PolicyStore
from sandbox.intake.registry import Registry
from sandbox.run.backends.hardening import job_name
from sandbox.synthetic import demo
from tests.support.city import ENTITY, POLICIES
from tests.support.engine import require_engine

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]

WORKERS = 2  # start_worker's default pool
QUEUE_CAP = 4
SLEEPER = "import time\ntime.sleep(240)\n"  # far beyond the liveness deadline below
SQL = "SELECT district_code, count(*) AS residents FROM residents GROUP BY 1"
LIVENESS_SECONDS = 90.0  # generous: an ordinary SQL product takes a few seconds
WAITING = ("queued", "running", "checking")


@dataclass
class World:
    app: FastAPI
    client: TestClient
    headers: dict[str, dict[str, str]]
    grants: dict[str, str]

    def submit(self, who: str, kind: str, code: str) -> Any:
        body = {"grant": self.grants[who], "kind": kind, "code": code}
        return self.client.post("/v1/jobs", headers=self.headers[who], json=body)

    def job(self, who: str, job_id: str) -> dict[str, Any]:
        got = self.client.get(f"/v1/jobs/{job_id}", headers=self.headers[who])
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        return body

    def states(self, who: str) -> dict[str, str]:
        listed = self.client.get("/v1/jobs", headers=self.headers[who]).json()
        return {j["id"]: j["state"] for j in listed}


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    require_engine()
    monkeypatch.setenv("DSR_RUNTIME", "runc")
    data = tmp_path / "var"
    paths = demo.generate_city(tmp_path / "src", residents=1000, enterprises=100, seed=7)
    registry, policies = Registry(data), PolicyStore(data)
    version = registry.register(
        paths["residents"], name="residents", entity_column=ENTITY["residents"], provider="city"
    )
    text = (POLICIES / "residents.yaml").read_text()
    policies.apply(
        text, {c.name: c.type for c in version.columns}, dataset="residents", author="city"
    )
    for path in (tmp_path, data):
        path.chmod(0o755)
    settings = GatewaySettings(
        data_dir=data,
        database_url="",
        max_running_per_operator=1,  # the default, below the pool's WORKERS
        max_queued_per_operator=QUEUE_CAP,
    )
    app = create_app(settings, build_runtime(settings))
    headers, grants = {}, {}
    with app.state.engine.begin() as conn:
        create_account(conn, "admin-1", {"admin"}, actor="test")
        for who in ("op-a", "op-b"):
            create_account(conn, who, {"operator"}, actor="test")
            headers[who] = {"Authorization": f"Bearer {issue_token(conn, who, actor='test')}"}
    for who in ("op-a", "op-b"):
        with app.state.engine.begin() as conn:
            grant = grant_service(app).create(
                conn, operator=who, scenario=f"population ({who})", purpose="planning",
                scopes=[("residents", ["district_code", "gender"])],
                valid_until=datetime.now(UTC) + timedelta(days=30), actor="admin-1",
            )  # fmt: skip
        grants[who] = grant.id
    with TestClient(app) as client:
        yield World(app, client, headers, grants)
    app.state.engine.dispose()


def kill_sandbox(client: docker.DockerClient, job_id: str) -> None:
    # Not started yet, already stopped or removed: all fine.
    with contextlib.suppress(docker.errors.APIError):
        client.api.kill(job_name(job_id))


def settle_everything(world: World, client: docker.DockerClient, deadline: float) -> None:
    """Cancel every queued job and kill every running sandbox until all jobs have ended."""
    while True:
        waiting = {
            (who, j): s
            for who in world.headers
            for j, s in world.states(who).items()
            if s in WAITING
        }
        if not waiting:
            return
        assert time.monotonic() < deadline, f"jobs did not end: {waiting}"
        for (who, job_id), state in waiting.items():
            if state == "queued":
                world.client.post(f"/v1/jobs/{job_id}/cancel", headers=world.headers[who])
            else:
                kill_sandbox(client, job_id)
        time.sleep(0.5)


def test_a_flood_of_sleepers_does_not_starve_another_operator(
    world: World, docker_client: docker.DockerClient
) -> None:
    try:
        flood = []
        for _ in range(WORKERS + 1):
            submitted = world.submit("op-a", "python", SLEEPER)
            assert submitted.status_code == 201, submitted.text
            flood.append(submitted.json()["id"])

        # A's sleepers are inside their sandboxes, and every idle worker has had
        # its chance to take one (workers look at least once a second).
        deadline = time.monotonic() + 120
        while "running" not in world.states("op-a").values():
            assert time.monotonic() < deadline, world.states("op-a")
            time.sleep(0.2)
        time.sleep(3)

        b = world.submit("op-b", "sql", SQL)
        assert b.status_code == 201, b.text
        deadline = time.monotonic() + LIVENESS_SECONDS
        while (done := world.job("op-b", b.json()["id"]))["state"] in WAITING:
            assert time.monotonic() < deadline, (
                f"operator B's job did not end within {LIVENESS_SECONDS} s while operator A's "
                f"sleepers held the workers: {world.states('op-a')}"
            )
            time.sleep(0.5)
        assert done["state"] == "released", done
        a_states = world.states("op-a")
        running = [j for j, s in a_states.items() if s == "running"]
        assert len(running) == 1, a_states  # the running cap: one at a time
        assert all(a_states[j] in ("running", "queued") for j in flood), a_states

        # A's queue is capped: submissions beyond it are refused, with a hint when
        # to try again, and audited.
        codes = []
        for _ in range(QUEUE_CAP + WORKERS + 1):
            more = world.submit("op-a", "python", SLEEPER)
            codes.append(more.status_code)
            if more.status_code != 201:
                break
        assert more.status_code == 429, (codes, more.text)
        assert int(more.headers["Retry-After"]) > 0
        assert "nothing was queued" in more.json()["detail"]
        queued = [j for j, s in world.states("op-a").items() if s == "queued"]
        assert len(queued) == QUEUE_CAP
        with world.app.state.engine.connect() as conn:
            refused = conn.execute(
                sa.select(audit_events.c.actor, audit_events.c.detail).where(
                    audit_events.c.type == "job.refused"
                )
            ).all()
        assert [(r.actor, r.detail["findings"]) for r in refused] == [
            ("op-a", [{"rule": "queue_full"}])
        ]
    finally:
        settle_everything(world, docker_client, time.monotonic() + 180)
    runtime = world.app.state.runtime
    ours = set(world.states("op-a")) | set(world.states("op-b"))
    deadline = time.monotonic() + 60
    while set(runtime.backend.sandboxes()) & ours:  # a killed job's cleanup may still run
        assert time.monotonic() < deadline, set(runtime.backend.sandboxes()) & ours
        time.sleep(0.5)
