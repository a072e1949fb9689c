"""The gateway's main flow without Docker: a data request becomes a grant, an SQL job
is released and downloaded with its SHA-256, a Python job is held and released by a
reviewer, a column outside the grant is refused, a suspended grant refuses the next
submission, and the audit chain verifies.

The app is the deployed one (``create_app`` with ``build_runtime``) and only the
backend is the fake (``tests.support.fakebackend``: the in-container code as host
subprocesses). ``tests/gateway/test_flow.py`` runs the flow in real containers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.identity import create_account, issue_token
from gateway.runtime import build_runtime
from gateway.settings import GatewaySettings
from sandbox.intake.policy import PolicyStore
from sandbox.intake.registry import Registry
from sandbox.synthetic import demo
from tests.support.city import ENTITY, POLICIES
from tests.support.fakebackend import FakeBackend
from tests.support.gateway_jobs import PY_HELD, wait_for_job

PROVIDER = "city-bureau"
ROLES = {"op-1": "operator", PROVIDER: "provider", "admin-1": "admin",
         "auditor-1": "auditor", "rev-1": "reviewer"}  # fmt: skip


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    data = tmp_path / "var"
    paths = demo.generate_city(tmp_path / "src", residents=3000, enterprises=300, seed=2)
    registry, policies = Registry(data), PolicyStore(data)
    for name, path in paths.items():
        version = registry.register(path, name=name, entity_column=ENTITY[name], provider=PROVIDER)
        text = (POLICIES / f"{name}.yaml").read_text()
        columns = {c.name: c.type for c in version.columns}
        policies.apply(text, columns, dataset=name, author=PROVIDER)
    settings = GatewaySettings(data_dir=data, database_url="")
    app = create_app(settings, build_runtime(settings, FakeBackend(tmp_path / "sandboxes")))
    headers = {}
    with app.state.engine.begin() as conn:
        for name, role in ROLES.items():
            create_account(conn, name, {role}, actor="test")
            headers[role] = {"Authorization": f"Bearer {issue_token(conn, name, actor='test')}"}
    with TestClient(app) as client:
        yield client, headers
    app.state.engine.dispose()


def test_request_to_grant_to_released_and_reviewed_products(deployed) -> None:  # type: ignore[no-untyped-def]
    client, h = deployed
    op, provider = h["operator"], h["provider"]
    made = client.post(
        "/v1/requests",
        headers=op,
        json={
            "scenario": "district-population",
            "purpose": "population by district for service planning",
            "content": "resident counts",
            "use": "aggregate statistics",
            "datasets": [
                {"dataset": "residents", "columns": ["person_id", "district_code", "gender"]}
            ],
        },
    )
    assert made.status_code == 201, made.text
    rid = made.json()["id"]
    formal = client.post(f"/v1/requests/{rid}/formal-review", headers=h["admin"],
                         json={"decision": "pass"})  # fmt: skip
    assert formal.status_code == 200, formal.text
    review = client.post(f"/v1/requests/{rid}/provider-review", headers=provider,
                         json={"decision": "approve"})  # fmt: skip
    assert review.status_code == 200, review.text
    until = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    supplied = client.post(f"/v1/requests/{rid}/supply", headers=provider,
                           json={"valid_until": until})  # fmt: skip
    assert supplied.status_code == 201, supplied.text
    grant = supplied.json()["grant_id"]

    def submit(kind: str, code: str) -> Any:
        return client.post(
            "/v1/jobs", headers=op, json={"grant": grant, "kind": kind, "code": code}
        )

    job = submit("sql", "SELECT district_code, count(*) AS n FROM residents GROUP BY 1")
    assert job.status_code == 201, job.text
    done = wait_for_job(client, op, job.json()["id"])
    assert done["state"] == "released", done
    (file,) = client.get(f"/v1/jobs/{done['id']}/outputs", headers=op).json()["files"]
    body = client.get(f"/v1/jobs/{done['id']}/outputs/{file['file']}", headers=op)
    assert body.status_code == 200 and hashlib.sha256(body.content).hexdigest() == file["sha256"]
    assert body.content.startswith(b'"district_code","n"')

    held = wait_for_job(client, op, submit("python", PY_HELD).json()["id"])
    assert held["state"] == "held", held
    assert client.get(f"/v1/jobs/{held['id']}/outputs", headers=op).status_code == 409
    vote = client.post(f"/v1/reviews/{held['id']}/votes", headers=h["reviewer"],
                       json={"decision": "approve", "reason": "district counts"})  # fmt: skip
    assert vote.status_code == 201 and vote.json()["job_state"] == "released", vote.text
    got = client.get(f"/v1/jobs/{held['id']}/outputs/districts.csv", headers=op)
    assert got.status_code == 200 and got.text.startswith("district_code")

    outside = submit("sql", "SELECT birth_date, count(*) AS n FROM residents GROUP BY 1")
    assert outside.status_code in (403, 422), outside.text
    stopped = client.post(f"/v1/grants/{grant}/suspend", headers=provider,
                          json={"reason": "rectification ordered"})  # fmt: skip
    assert stopped.status_code == 200 and stopped.json()["state"] == "suspended"
    refused = submit("sql", "SELECT gender, count(*) AS n FROM residents GROUP BY 1")
    assert refused.status_code == 409, refused.text
    verified = client.get("/v1/audit/verify", headers=h["auditor"]).json()
    assert verified["ok"] and verified["checked"] > 10
