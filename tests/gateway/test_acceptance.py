"""The gateway issue's acceptance flow, end to end over HTTP against a real server.

``dsr gateway serve`` runs in its own process (uvicorn, the job worker,
real containers on runc); accounts and tokens come from the ``dsr``
bootstrap commands. Then, only through the HTTP API: a provider uploads the
synthetic city's residents and their exposure policy; an operator's data
request goes through the administrator's formal review and the provider's
substantive review to a grant; the operator's SQL product is released and
a Python job is held; a reviewer (who sees the values) approves it; the
operator downloads both with their SHA-256s; an auditor verifies the chain;
the provider lists the events about their dataset (and another provider
sees none of them). No sandbox container is left at the end.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from sandbox.synthetic import demo
from tests.support.engine import require_engine, sandbox_objects
from tests.support.live import (
    LiveGateway,
    apply_policy,
    request_grant,
    submit,
    upload_dataset,
    wait,
)

pytestmark = pytest.mark.docker

SQL = "SELECT district_code, count(*) AS residents FROM residents GROUP BY 1"
PYTHON = (
    "from sandbox.sdk import connect, publish_table\n"
    "con = connect()\n"
    'q = "SELECT district_code, gender, count(*) AS n FROM residents GROUP BY 1, 2"\n'
    "df = con.sql(q).df()\n"
    'publish_table("pyramid.csv", df, group_by=["district_code", "gender"], count="n",\n'
    "              measures=[])\n"
)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[LiveGateway]:
    require_engine()
    tmp_path.chmod(0o755)
    gw = LiveGateway(tmp_path / "var")
    for name, role in (
        ("city-bureau", "provider"),
        ("other-bureau", "provider"),
        ("op-1", "operator"),
        ("admin-1", "admin"),
        ("rev-1", "reviewer"),
        ("auditor-1", "auditor"),
    ):
        gw.account(name, role)
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()


def _download(client, job: str) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    listing = client.get(f"/v1/jobs/{job}/outputs")
    assert listing.status_code == 200, listing.text
    got = {}
    for entry in listing.json()["files"]:
        body = client.get(f"/v1/jobs/{job}/outputs/{entry['file']}")
        assert body.status_code == 200, body.text
        assert hashlib.sha256(body.content).hexdigest() == entry["sha256"]
        got[entry["file"]] = body.content
    return got


def test_provider_to_auditor_over_http(
    gateway: LiveGateway, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    provider, other = gateway.client("city-bureau"), gateway.client("other-bureau")
    operator, admin = gateway.client("op-1"), gateway.client("admin-1")
    reviewer, auditor = gateway.client("rev-1"), gateway.client("auditor-1")

    # The provider registers the city's residents and their policy.
    paths = demo.generate_city(tmp_path / "src", residents=3000, enterprises=300, seed=3)
    registered = upload_dataset(provider, paths["residents"], "residents")
    assert registered["created"] and registered["version"]["rows"] == 3000, registered
    policy = apply_policy(provider, "residents")
    assert policy["dataset"] == "residents", policy

    # A data request becomes a grant (formal review, substantive review, supply).
    grant = request_grant(
        operator, admin, provider, [("residents", ["person_id", "district_code", "gender"])]
    )

    # A SQL product is released; a Python job is held for review.
    sql_job, py_job = submit(operator, grant, "sql", SQL), submit(operator, grant, "python", PYTHON)
    sql_done, py_done = wait(operator, sql_job), wait(operator, py_job)
    assert sql_done["state"] == "released" and sql_done["verdict"] == "PASS", sql_done
    assert py_done["state"] == "held" and py_done["verdict"] == "REVIEW", py_done
    assert "auto_release" in {f["rule"] for f in py_done["findings"]}
    assert operator.get(f"/v1/jobs/{py_job}/outputs").status_code == 409

    # The reviewer sees the values and approves with a reason.
    queue = reviewer.get("/v1/reviews").json()
    assert [q["job"] for q in queue] == [py_job]
    evidence = reviewer.get(f"/v1/reviews/{py_job}").json()
    (held_file,) = evidence["files"]
    assert held_file["content"].startswith("district_code")
    vote = reviewer.post(
        f"/v1/reviews/{py_job}/votes",
        json={"decision": "approve", "reason": "district by gender counts, every cell over k"},
    )
    assert vote.status_code == 201 and vote.json()["job_state"] == "released", vote.text

    # The operator downloads both, each file checked against its SHA-256.
    sql_files = _download(operator, sql_job)
    assert sql_files["result.csv"].startswith(b'"district_code","residents"')
    assert _download(operator, py_job)["pyramid.csv"].decode() == held_file["content"]

    # The auditor verifies the chain.
    verified = auditor.get("/v1/audit/verify").json()
    assert verified["ok"] and verified["first_broken"] is None, verified

    # The provider lists the events about their dataset; another provider sees none.
    listed = provider.get("/v1/audit/events")
    assert listed.status_code == 200
    events = [json.loads(line) for line in listed.text.splitlines()]
    assert events and all("residents" in e["datasets"] for e in events)
    kinds = {e["type"] for e in events}
    expected = {"dataset.registered", "policy.applied", "grant.state", "job.run", "verdict"}
    assert expected <= kinds, kinds
    assert {"review.vote", "download"} <= kinds, kinds
    ran = {e["detail"]["job"] for e in events if e["type"] == "job.run"}
    assert ran == {sql_job, py_job}
    others = [json.loads(line) for line in other.get("/v1/audit/events").text.splitlines()]
    assert not [e for e in others if "residents" in e["datasets"]]

    gateway.stop()
    assert not [job for job, _ in sandbox_objects(docker_client) if job in (sql_job, py_job)]
