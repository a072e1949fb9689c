"""Providers over HTTP: register datasets, apply and read exposure policies (both backends)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.identity import Role, create_account, issue_token
from gateway.settings import GatewaySettings
from gateway.store.tables import audit_events
from sandbox.synthetic.demo import generate_city
from tests.support.access import PROVIDERS as ACCESS

ROLES = [r.value for r in Role]
POLICIES = Path(__file__).parents[2] / "policies" / "exposure"
ENTITY = {
    "residents": "person_id",
    "social_insurance": "person_id",
    "enterprises": "credit_code",
    "tax_payments": "credit_code",
}
YAML = {"Content-Type": "application/yaml"}


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return generate_city(tmp_path_factory.mktemp("city"), residents=300, enterprises=40)


class Gateway:
    def __init__(self, app: FastAPI, client: TestClient, tokens: dict[str, str]) -> None:
        self.app, self.client, self.tokens = app, client, tokens

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def upload(self, who: str, path: Path, name: str, entity_column: str, **extra: str):  # type: ignore[no-untyped-def]
        with path.open("rb") as f:
            return self.client.post(
                "/v1/datasets",
                headers=self.auth(who),
                files={"file": (path.name, f, "application/octet-stream")},
                data={"name": name, "entity_column": entity_column, **extra},
            )

    def put_policy(self, who: str, name: str, text: str):  # type: ignore[no-untyped-def]
        return self.client.put(
            f"/v1/datasets/{name}/policy",
            headers={**self.auth(who), **YAML},
            content=text.encode(),
        )

    def events(self, kind: str) -> list[dict[str, object]]:
        with self.app.state.engine.connect() as conn:
            rows = conn.execute(
                sa.select(audit_events.c.actor, audit_events.c.datasets, audit_events.c.detail)
                .where(audit_events.c.type == kind)
                .order_by(audit_events.c.id)
            ).all()
        return [{"actor": r[0], "datasets": r[1], "detail": r[2]} for r in rows]


@pytest.fixture
def gw(store_url: str, tmp_path: Path) -> Iterator[Gateway]:
    app = create_app(GatewaySettings(data_dir=tmp_path / "var", database_url=store_url))
    tokens = {}
    with app.state.engine.begin() as conn:
        for who, role in [*((f"{r}-1", r) for r in ROLES), ("provider-2", "provider")]:
            create_account(conn, who, {role}, actor="test")
            tokens[who.removesuffix("-1")] = issue_token(conn, who, actor="test")
    with TestClient(app) as client:
        yield Gateway(app, client, tokens)
    app.state.engine.dispose()


def register_city(gw: Gateway, city: dict[str, Path]) -> None:
    for name, path in city.items():
        made = gw.upload("provider", path, name, ENTITY[name])
        assert made.status_code == 201, made.text
        text = (POLICIES / f"{name}.yaml").read_text(encoding="utf-8")
        applied = gw.put_policy("provider", name, text)
        assert applied.status_code == 200, applied.text


def test_the_synthetic_city_is_registered_and_governed_over_http(
    gw: Gateway, city: dict[str, Path]
) -> None:
    register_city(gw, city)
    mine = gw.client.get("/v1/datasets", headers=gw.auth("provider")).json()
    assert sorted(d["name"] for d in mine) == sorted(city)
    assert gw.client.get("/v1/datasets", headers=gw.auth("provider-2")).json() == []
    for who in ("admin", "auditor"):
        seen = gw.client.get("/v1/datasets", headers=gw.auth(who)).json()
        assert sorted(d["name"] for d in seen) == sorted(city)
    residents = gw.client.get("/v1/datasets/residents", headers=gw.auth("auditor")).json()
    assert residents["provider"] == "provider-1" and len(residents["versions"]) == 1
    newest = residents["versions"][0]
    assert newest["rows"] == 300 and newest["entity_column"] == "person_id"
    assert {"name": "person_id", "type": "VARCHAR"} in newest["columns"]
    policy = gw.client.get("/v1/datasets/residents/policy", headers=gw.auth("operator")).json()
    assert policy["author"] == "provider-1" and policy["policy"]["k"] == 10
    # Audited with names, versions, counts and hashes; the same bytes again change nothing.
    registered = gw.events("dataset.registered")
    assert [e["datasets"] for e in registered] == [[n] for n in city]
    detail = registered[0]["detail"]
    assert isinstance(detail, dict)
    assert {"name", "version", "rows", "columns", "sha256"} <= set(detail)
    applied = gw.events("policy.applied")
    assert [e["actor"] for e in applied] == ["provider-1"] * 4
    again = gw.upload("provider", city["residents"], "residents", "person_id")
    assert again.status_code == 201 and again.json()["created"] is False


def test_another_provider_cannot_take_or_govern_a_dataset(
    gw: Gateway, city: dict[str, Path]
) -> None:
    register_city(gw, city)
    taken = gw.upload("provider-2", city["residents"], "residents", "person_id")
    assert taken.status_code == 403, taken.text
    text = (POLICIES / "residents.yaml").read_text(encoding="utf-8")
    assert gw.put_policy("provider-2", "residents", text).status_code == 403
    assert gw.client.get("/v1/datasets/residents", headers=gw.auth("provider-2")).status_code == 403
    assert gw.put_policy("provider", "nowhere", text).status_code == 404
    assert len(gw.events("dataset.registered")) == 4


def test_an_invalid_policy_is_refused_with_every_problem_and_stores_nothing(
    gw: Gateway, city: dict[str, Path]
) -> None:
    assert gw.upload("provider", city["residents"], "residents", "person_id").status_code == 201
    bad = "dataset: residents\nentity_column: person_id\nk: 1\ncolumns:\n  nope:\n    class: x\n"
    refused = gw.put_policy("provider", "residents", bad)
    assert refused.status_code == 422, refused.text
    problems = refused.json()["detail"]["problems"]
    assert problems and all("line" in p for p in problems)
    assert any(p.startswith("k (line 3)") for p in problems)
    # Valid YAML that does not fit the dataset's columns: named per column.
    text = (POLICIES / "residents.yaml").read_text(encoding="utf-8")
    unfit = gw.put_policy(
        "provider",
        "residents",
        text + "  extra:\n    class: attribute\n    level: 1\n    visibility: plain\n",
    )
    assert unfit.status_code == 422
    assert any("extra" in p for p in unfit.json()["detail"]["problems"])
    versions = gw.client.get("/v1/datasets/residents/policy/versions", headers=gw.auth("admin"))
    assert versions.json() == []
    assert (
        gw.client.get("/v1/datasets/residents/policy", headers=gw.auth("admin")).status_code == 404
    )
    assert gw.events("policy.applied") == []


def test_policy_versions_and_their_diff(gw: Gateway, city: dict[str, Path]) -> None:
    register_city(gw, city)
    text = (POLICIES / "residents.yaml").read_text(encoding="utf-8")
    stricter = text.replace("\nk: 10 ", "\nk: 20 ")
    assert gw.put_policy("provider", "residents", stricter).status_code == 200
    versions = gw.client.get(
        "/v1/datasets/residents/policy/versions", headers=gw.auth("operator")
    ).json()
    assert len(versions) == 2
    old, new = versions[0]["version"], versions[1]["version"]
    diff = gw.client.get(
        f"/v1/datasets/residents/policy/diff?from={old}&to={new}", headers=gw.auth("auditor")
    )
    assert diff.status_code == 200
    lines = diff.json()["diff"].splitlines()
    assert any(line.startswith("-k: 10") for line in lines)
    assert any(line.startswith("+k: 20") for line in lines)
    unknown = gw.client.get(
        f"/v1/datasets/residents/policy/diff?from={old}&to=../../x", headers=gw.auth("admin")
    )
    assert unknown.status_code == 404
    assert len(gw.events("policy.applied")) == 5


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_garbage_is_refused_not_an_error(gw: Gateway, tmp_path: Path, suffix: str) -> None:
    garbage = tmp_path / f"garbage{suffix}"
    garbage.write_bytes(os.urandom(10 * 1024 * 1024 + 17))
    refused = gw.upload("provider", garbage, "garbage", "person_id")
    assert refused.status_code == 422, refused.text
    assert gw.client.get("/v1/datasets", headers=gw.auth("admin")).json() == []
    assert list((gw.app.state.registry.root / "uploads").iterdir()) == []
    assert gw.events("dataset.registered") == []


def test_an_upload_beyond_the_cap_is_413(gw: Gateway, city: dict[str, Path]) -> None:
    gw.app.state.upload_limit = 1000
    refused = gw.upload("provider", city["residents"], "residents", "person_id")
    assert refused.status_code == 413
    assert list((gw.app.state.registry.root / "uploads").iterdir()) == []
    gw.app.state.upload_limit = 10**6
    missing = gw.client.post(
        "/v1/datasets", headers=gw.auth("provider"), data={"name": "residents"}
    )
    assert missing.status_code == 422 and "file" in missing.json()["detail"]


@pytest.mark.parametrize(("method", "path"), sorted(ACCESS))
def test_access_matrix(gw: Gateway, method: str, path: str) -> None:
    allowed = ACCESS[(method, path)]
    url = path.replace("{name}", "someone")
    for role in ROLES:
        response = gw.client.request(method, url, headers=gw.auth(role))
        if role in allowed:
            assert response.status_code not in (401, 403), (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
            assert "needs the role" in response.json()["detail"]
    assert gw.client.request(method, url).status_code == 401
    forged = {"Authorization": "Bearer dsr_000000000000_" + "A" * 43}
    assert gw.client.request(method, url, headers=forged).status_code == 401
