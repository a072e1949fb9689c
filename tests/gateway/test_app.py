"""The gateway over HTTP: identity, the access matrix, audit endpoints (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.identity import Role, create_account, issue_token
from gateway.settings import GatewaySettings
from gateway.store.tables import audit_events

ROLES = [r.value for r in Role]

# Every route, and who may use it: "public", "any" (any signed-in account) or roles.
# The web console's HTML pages (/console) are left out of the OpenAPI document on
# purpose; tests/gateway/console/test_pages.py holds their role matrix.
ACCESS: dict[tuple[str, str], str | frozenset[str]] = {
    ("GET", "/v1/health"): "public",
    ("GET", "/v1/me"): "any",
    ("GET", "/v1/accounts"): frozenset({"admin"}),
    ("POST", "/v1/accounts"): frozenset({"admin"}),
    ("POST", "/v1/accounts/{name}/tokens"): frozenset({"admin"}),
    ("DELETE", "/v1/tokens/{token_id}"): frozenset({"admin"}),
    ("GET", "/v1/audit/verify"): frozenset({"auditor"}),
    ("GET", "/v1/audit/events"): frozenset({"auditor", "provider"}),
    ("POST", "/v1/audit/verify"): frozenset({"auditor"}),
    ("GET", "/v1/audit/checkpoints"): frozenset({"auditor", "provider"}),
    ("POST", "/v1/audit/checkpoints"): frozenset({"admin", "auditor"}),
    ("GET", "/v1/audit/public-key"): frozenset({"admin", "auditor", "provider"}),
}
SAMPLE_PATH = {"{name}": "someone", "{token_id}": "000000000000"}
SAMPLE_CHECKPOINT = {  # well-formed, signed by nobody: refused, not an error
    "version": 1,
    "event_id": 1,
    "hash": "0" * 64,
    "at": "2026-12-01T00:00:00+00:00",
    "key_id": "0" * 64,
    "signature": "A" * 86 + "==",
}
SAMPLE_BODY = {
    ("POST", "/v1/accounts"): {"name": "new-account", "roles": ["operator"]},
    ("POST", "/v1/accounts/{name}/tokens"): {"label": "x"},
    ("POST", "/v1/audit/verify"): {"checkpoints": [SAMPLE_CHECKPOINT]},
}


@pytest.fixture
def gateway(store_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = GatewaySettings(data_dir=tmp_path / "var", database_url=store_url)
    app = create_app(settings)
    tokens = {}
    with app.state.engine.begin() as conn:
        for role in ROLES:
            create_account(conn, f"{role}-1", {role}, actor="test")
            tokens[role] = issue_token(conn, f"{role}-1", actor="test")
        create_account(conn, "someone", {"operator"}, actor="test")
    with TestClient(app) as client:
        yield client, tokens
    app.state.engine.dispose()


def call(client: TestClient, method: str, path: str, token: str | None):  # type: ignore[no-untyped-def]
    url = path
    for key, value in SAMPLE_PATH.items():
        url = url.replace(key, value)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = SAMPLE_BODY.get((method, path))
    return client.request(method, url, headers=headers, json=body)


def all_access() -> dict[tuple[str, str], str | frozenset[str]]:
    """Every route's roles: this file's ACCESS and the ACCESS of each router's test file."""
    import importlib

    from tests.gateway.test_grants import ACCESS as GRANTS
    from tests.gateway.test_requests import ACCESS as REQUESTS

    union = {**ACCESS, **GRANTS, **REQUESTS}
    union |= importlib.import_module("tests.gateway.test_providers").ACCESS
    union |= importlib.import_module("tests.gateway.test_he_products").ACCESS
    union |= importlib.import_module("tests.gateway.test_catalog").ACCESS
    try:
        union |= importlib.import_module("tests.gateway.test_jobs").ACCESS
    except ModuleNotFoundError as e:
        if e.name != "tests.gateway.test_jobs":
            raise
    return union


def test_every_route_is_in_the_access_matrix(gateway) -> None:  # type: ignore[no-untyped-def]
    client, _ = gateway
    # Every operation the gateway serves, as its OpenAPI document lists them.
    paths = client.get("/openapi.json").json()["paths"]
    routes = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    assert routes == set(all_access())


@pytest.mark.parametrize(("method", "path"), sorted(ACCESS))
def test_access_matrix(gateway, method: str, path: str) -> None:  # type: ignore[no-untyped-def]
    client, tokens = gateway
    allowed = ACCESS[(method, path)]
    for role in ROLES:
        response = call(client, method, path, tokens[role])
        ok = allowed in ("public", "any") or role in allowed
        if ok:
            assert response.status_code not in (401, 403), (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
            assert "needs the role" in response.json()["detail"]
    anonymous = call(client, method, path, None)
    bad = call(client, method, path, "dsr_000000000000_" + "A" * 43)
    if allowed == "public":
        assert anonymous.status_code == 200
    else:
        assert anonymous.status_code == 401 and bad.status_code == 401


def test_authentication_failures_are_audited_without_the_secret(gateway) -> None:  # type: ignore[no-untyped-def]
    client, tokens = gateway
    forged = tokens["admin"][:-4] + "AAAA"
    assert client.get("/v1/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    assert client.get("/v1/me").status_code == 401
    with client.app.state.engine.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(
            sa.select(audit_events.c.detail).where(audit_events.c.type == "auth.failed")
        ).all()
    details = [r[0] for r in rows]
    assert len(details) == 2
    assert details[0]["token"] == forged.split("_")[1]
    assert forged.split("_", 2)[2] not in json.dumps(details)


def test_accounts_and_tokens_through_the_api(gateway) -> None:  # type: ignore[no-untyped-def]
    client, tokens = gateway
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    made = client.post(
        "/v1/accounts", headers=admin, json={"name": "li-ming", "roles": ["reviewer"]}
    )
    assert made.status_code == 201 and made.json()["roles"] == ["reviewer"]
    again = client.post(
        "/v1/accounts", headers=admin, json={"name": "li-ming", "roles": ["reviewer"]}
    )
    assert again.status_code == 409
    bad_role = client.post("/v1/accounts", headers=admin, json={"name": "x-y", "roles": ["root"]})
    assert bad_role.status_code == 422
    issued = client.post("/v1/accounts/li-ming/tokens", headers=admin, json={})
    token = issued.json()["token"]
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json() == {"name": "li-ming", "roles": ["reviewer"]}
    token_id = token.split("_")[1]
    assert client.delete(f"/v1/tokens/{token_id}", headers=admin).status_code == 204
    assert client.get("/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert client.post("/v1/accounts/nobody/tokens", headers=admin, json={}).status_code == 404


def test_auditor_verifies_and_tampering_is_named(gateway, store_url: str) -> None:  # type: ignore[no-untyped-def]
    client, tokens = gateway
    auditor = {"Authorization": f"Bearer {tokens['auditor']}"}
    first = client.get("/v1/audit/verify", headers=auditor).json()
    assert first["ok"] and first["checked"] >= 10
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:  # a privileged attacker drops the guard and edits a row
        if store_url.startswith("sqlite"):
            conn.exec_driver_sql("DROP TRIGGER audit_events_no_update")
        else:
            conn.exec_driver_sql("ALTER TABLE audit_events DISABLE TRIGGER USER")
        conn.execute(audit_events.update().where(audit_events.c.id == 3).values(actor="nobody"))
    broken = client.get("/v1/audit/verify", headers=auditor).json()
    assert broken["ok"] is False and broken["first_broken"] == 3


def test_providers_export_only_their_datasets_events(gateway) -> None:  # type: ignore[no-untyped-def]
    client, tokens = gateway
    from gateway.audit import append

    app = client.app  # type: ignore[attr-defined]
    with app.state.engine.begin() as conn:
        append(conn, "view.built", "system", datasets=["residents"], detail={"n": 1})
        append(conn, "view.built", "system", datasets=["tax_payments"], detail={"n": 2})
    # The registry names provider-1 as the provider of residents only.
    src = Path(app.state.settings.data_dir) / "residents.csv"
    src.write_text("person_id,district\n1,a\n2,b\n", encoding="utf-8")
    app.state.registry.register(
        src, name="residents", entity_column="person_id", provider="provider-1"
    )
    provider = {"Authorization": f"Bearer {tokens['provider']}"}
    lines = client.get("/v1/audit/events", headers=provider).text.splitlines()
    events = [json.loads(line) for line in lines]
    assert events and all("residents" in e["datasets"] for e in events)
    auditor = {"Authorization": f"Bearer {tokens['auditor']}"}
    everything = client.get("/v1/audit/events", headers=auditor).text.splitlines()
    assert len(everything) > len(events)
