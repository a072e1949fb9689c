"""The gateway over HTTP: identity, the access matrix, audit endpoints (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.identity import Role, create_account, issue_token
from gateway.runtime import build_runtime
from gateway.settings import GatewaySettings
from gateway.store.tables import audit_events
from tests.support.access import ALL
from tests.support.access import IDENTITY_AND_AUDIT as ACCESS
from tests.support.hostbackend import HostBackend

ROLES = [r.value for r in Role]

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


def test_every_route_is_in_the_access_matrix(gateway) -> None:  # type: ignore[no-untyped-def]
    client, _ = gateway
    # Every operation the gateway serves, as its OpenAPI document lists them.
    paths = client.get("/openapi.json").json()["paths"]
    routes = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    assert routes == set(ALL)


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


# -- one app's dependencies are its own -------------------------------------------------------


def test_two_apps_in_one_process_share_no_services_hooks_or_checkers(tmp_path: Path) -> None:
    """create_app builds every shared service and create_app's runtime its checker pool:
    closing one app (its lifespan's end) closes its checkers only."""
    apps, runtimes = [], []
    for name in ("a", "b"):
        settings = GatewaySettings(data_dir=tmp_path / name)
        runtime = build_runtime(settings, backend=HostBackend(lambda _: {}))
        app = create_app(settings, runtime)
        app.state.worker_autostart = False  # no job runs here
        apps.append(app)
        runtimes.append(runtime)
    a, b = apps
    try:
        for service in ("grants", "scope", "catalog", "provider_service", "console_sessions"):
            assert getattr(a.state, service) is not getattr(b.state, service), service
        assert a.state.scope is a.state.grants.scope
        # The suspension hooks belong to each app's grant service alone.
        assert a.state.grants.on_suspend == b.state.grants.on_suspend
        a.state.grants.on_suspend = ()
        assert len(b.state.grants.on_suspend) == 2
        checkers = [r.checkers for r in runtimes]
        assert checkers[0] is not None and checkers[1] is not None
        assert checkers[0] is not checkers[1]
        with TestClient(a):  # the app's lifespan: started, then shut down
            assert checkers[0].call(os.getpid) != os.getpid()
        assert checkers[0].closed and not checkers[1].closed
        assert checkers[1].call(os.getpid) != os.getpid()  # b's checkers still serve b
    finally:
        for runtime, app in zip(runtimes, apps, strict=True):
            assert runtime.checkers is not None
            runtime.checkers.close()
            app.state.engine.dispose()
