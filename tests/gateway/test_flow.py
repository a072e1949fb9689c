"""The whole gateway as deployed: a data request becomes a grant, a job runs under it.

Real pieces only: the app from ``create_app`` with the runtime from
``build_runtime`` (registry, views, ledger, fingerprints, the Docker engine
on runc), real accounts and tokens, the synthetic city registered by its
provider. A request goes through formal review, provider review and
supply; the operator's SQL product is released and downloaded with its
SHA-256; the provider suspends the grant and the next submission is refused;
the audit chain verifies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
from tests.support.engine import require_engine
from tests.support.gateway_jobs import wait_for_job

pytestmark = [pytest.mark.docker]

PROVIDER = "city-bureau"


@pytest.fixture
def deployed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    require_engine()
    monkeypatch.setenv("DSR_RUNTIME", "runc")
    data = tmp_path / "var"
    paths = demo.generate_city(tmp_path / "src", residents=3000, enterprises=300, seed=2)
    registry, policies = Registry(data), PolicyStore(data)
    for name, path in paths.items():
        version = registry.register(path, name=name, entity_column=ENTITY[name], provider=PROVIDER)
        text = (POLICIES / f"{name}.yaml").read_text()
        policies.apply(
            text, {c.name: c.type for c in version.columns}, dataset=name, author=PROVIDER
        )
    for path in (tmp_path, data):
        path.chmod(0o755)
    settings = GatewaySettings(data_dir=data, database_url="")
    app = create_app(settings, build_runtime(settings))
    tokens = {}
    with app.state.engine.begin() as conn:
        for name, role in (
            ("op-1", "operator"),
            (PROVIDER, "provider"),
            ("admin-1", "admin"),
            ("auditor-1", "auditor"),
        ):
            create_account(conn, name, {role}, actor="test")
            tokens[role] = issue_token(conn, name, actor="test")
    with TestClient(app) as client:
        yield client, tokens


def auth(tokens: dict[str, str], role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[role]}"}


def test_request_to_grant_to_released_product(deployed) -> None:  # type: ignore[no-untyped-def]
    client, tokens = deployed
    op, provider, admin = auth(tokens, "operator"), auth(tokens, "provider"), auth(tokens, "admin")
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
    assert (
        client.post(
            f"/v1/requests/{rid}/formal-review", headers=admin, json={"decision": "pass"}
        ).status_code
        == 200
    )
    assert (
        client.post(
            f"/v1/requests/{rid}/provider-review", headers=provider, json={"decision": "approve"}
        ).status_code
        == 200
    )
    until = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    supplied = client.post(
        f"/v1/requests/{rid}/supply", headers=provider, json={"valid_until": until}
    )
    assert supplied.status_code == 201, supplied.text
    grant = supplied.json()["grant_id"]

    job = client.post(
        "/v1/jobs",
        headers=op,
        json={
            "grant": grant,
            "kind": "sql",
            "code": "SELECT district_code, count(*) AS n FROM residents GROUP BY 1",
        },
    )
    assert job.status_code == 201, job.text
    done = wait_for_job(client, op, job.json()["id"])
    assert done["state"] == "released", done
    outputs = client.get(f"/v1/jobs/{done['id']}/outputs", headers=op).json()
    (file,) = outputs["files"]
    body = client.get(f"/v1/jobs/{done['id']}/outputs/{file['file']}", headers=op)
    assert body.status_code == 200
    assert hashlib.sha256(body.content).hexdigest() == file["sha256"]
    assert body.content.startswith(b'"district_code","n"')

    # A column outside the grant is refused before anything runs.
    outside = client.post(
        "/v1/jobs",
        headers=op,
        json={
            "grant": grant,
            "kind": "sql",
            "code": "SELECT birth_date, count(*) AS n FROM residents GROUP BY 1",
        },
    )
    assert outside.status_code in (403, 422), outside.text

    stopped = client.post(
        f"/v1/grants/{grant}/suspend", headers=provider, json={"reason": "rectification ordered"}
    )
    assert stopped.status_code == 200 and stopped.json()["state"] == "suspended"
    refused = client.post(
        "/v1/jobs",
        headers=op,
        json={
            "grant": grant,
            "kind": "sql",
            "code": "SELECT gender, count(*) AS n FROM residents GROUP BY 1",
        },
    )
    assert refused.status_code == 409, refused.text

    verified = client.get("/v1/audit/verify", headers=auth(tokens, "auditor")).json()
    assert verified["ok"] and verified["checked"] > 10
