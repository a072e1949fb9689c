"""SIGKILL the gateway while jobs run; restart it; nothing is lost or left behind.

The real server (``dsr gateway serve``) runs jobs in real containers on runc.
It is killed with SIGKILL while its two workers each have a job inside a
sandbox (the operator may run two at once here) and more jobs wait in the
queue: no shutdown hook runs, the containers stay behind. On restart the
worker reconciles: the interrupted jobs are re-queued (a second interruption
would fail them), the orphan sandboxes are removed, and everything runs to
its end. Afterwards every job has settled, no container or volume of these
jobs exists, and the audit chain verifies over HTTP and with ``dsr audit
verify``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from sandbox.synthetic import demo
from tests.support.engine import require_engine, sandbox_objects
from tests.support.live import (
    SETTLED,
    LiveGateway,
    apply_policy,
    request_grant,
    submit,
    upload_dataset,
    wait,
)

pytestmark = pytest.mark.docker

# Long enough to be caught inside its sandbox; then a table that needs review.
SLOW = (
    "import time\n"
    "from sandbox.sdk import connect, publish_table\n"
    "time.sleep(6)\n"
    "con = connect()\n"
    'df = con.sql("SELECT district_code, count(*) AS n FROM residents GROUP BY 1").df()\n'
    'publish_table("districts.csv", df, group_by=["district_code"], measures=[], count="n")\n'
)
SQL = "SELECT gender, count(*) AS residents FROM residents GROUP BY 1"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[LiveGateway]:
    require_engine()
    tmp_path.chmod(0o755)
    gw = LiveGateway(tmp_path / "var")
    # One operator fills both workers (fair scheduling would otherwise run one at a time).
    gw.env["DSR_GATEWAY_MAX_RUNNING_PER_OPERATOR"] = "2"
    for name, role in (
        ("city-bureau", "provider"),
        ("op-1", "operator"),
        ("admin-1", "admin"),
        ("auditor-1", "auditor"),
    ):
        gw.account(name, role)
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()


def _sandboxes(client: docker.DockerClient, jobs: set[str]) -> set[str]:
    """The jobs among ``jobs`` that still have a container or a volume (the engine is
    shared: only these jobs are ours to look at)."""
    return {j for j, _ in sandbox_objects(client) if j in jobs}


def test_sigkill_while_jobs_run(
    gateway: LiveGateway, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    provider, operator = gateway.client("city-bureau"), gateway.client("op-1")
    admin, auditor = gateway.client("admin-1"), gateway.client("auditor-1")
    paths = demo.generate_city(tmp_path / "src", residents=2000, enterprises=200, seed=4)
    upload_dataset(provider, paths["residents"], "residents")
    apply_policy(provider, "residents")
    grant = request_grant(operator, admin, provider, [("residents", ["district_code", "gender"])])

    jobs = [submit(operator, grant, "python", SLOW) for _ in range(3)]
    jobs.append(submit(operator, grant, "sql", SQL))

    # Wait until both workers are inside a sandbox, then kill without warning.
    deadline = time.monotonic() + 120
    while True:
        states = {j: operator.get(f"/v1/jobs/{j}").json()["state"] for j in jobs}
        running = {j for j, s in states.items() if s == "running"}
        if len(_sandboxes(docker_client, running)) >= 2:
            break
        assert time.monotonic() < deadline, f"never two jobs in sandboxes: {states}"
        time.sleep(0.2)
    gateway.kill()
    interrupted = _sandboxes(docker_client, set(jobs))
    assert len(interrupted) >= 2, "the killed gateway's sandboxes should still be there"

    gateway.start()
    ended = {j: wait(operator, j) for j in jobs}
    assert all(e["state"] in SETTLED for e in ended.values()), ended
    for job in interrupted:
        # Re-queued once and run again to its real end, not failed as interrupted.
        assert ended[job]["attempts"] == 2, ended[job]
        assert ended[job]["state"] == "held", ended[job]
    assert ended[jobs[-1]]["state"] == "released", ended[jobs[-1]]
    assert not _sandboxes(docker_client, set(jobs)), "orphan sandboxes were not removed"

    verified = auditor.get("/v1/audit/verify").json()
    assert verified["ok"], verified
    gateway.stop()
    assert "audit chain ok" in gateway.dsr("audit", "verify")
