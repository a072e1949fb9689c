"""A small history for the report tests, made through REST as users would make it.

``build_history`` runs the deployed gateway (``create_app`` with ``build_runtime``) on
the fake backend (``tests.support.fakebackend``): the city's ``residents`` registered by
``provider-1`` and ``enterprises`` by ``provider-2``; data requests of ``operator-1`` and
``operator-2`` on residents become grants; operator-1 runs two SQL jobs (released), a
dummy run, two Python jobs held for review (one approved, one denied), an SQL job
outside its grant (refused) and reads a job of another operator (403); operator-2 runs
one SQL job; operator-1's first SQL job is registered as a product; provider-1
suspends and resumes operator-1's grant; an administrator's emergency stop on residents
(an incident recorded) stops both grants, and the administrator resumes them.
``History.expected`` says what was done, written as it was done, never read back from
the gateway.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.identity import create_account, issue_token
from gateway.runtime import build_runtime
from gateway.settings import GatewaySettings
from gateway.workdays import CST
from sandbox.intake.policy import PolicyStore
from sandbox.intake.registry import Registry
from sandbox.synthetic import demo
from tests.support.city import ENTITY, POLICIES
from tests.support.fakebackend import FakeBackend
from tests.support.gateway_jobs import PY_HELD, wait_for_job
from tests.support.product_registration import finish_in_store

PROVIDERS = {"residents": "provider-1", "enterprises": "provider-2"}
ACCOUNTS = {
    "operator-1": "operator", "operator-2": "operator", "provider-1": "provider",
    "provider-2": "provider", "admin-1": "admin", "auditor-1": "auditor",
    "reviewer-1": "reviewer", "consumer-1": "consumer",
}  # fmt: skip
SQL = "SELECT district_code, count(*) AS n FROM residents GROUP BY 1"
SQL_GENDER = "SELECT gender, count(*) AS n FROM residents GROUP BY 1"
SQL_OUTSIDE = "SELECT birth_date, count(*) AS n FROM residents GROUP BY 1"


@dataclass
class History:
    app: FastAPI
    client: TestClient
    tokens: dict[str, str]
    grants: dict[str, str]  # operator -> its grant
    period: str  # a period holding the whole history (CST days around now)
    store: str  # sqlite or postgresql
    expected: dict[str, Any] = field(default_factory=dict)

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, who: str, url: str, **params: Any) -> Any:
        return self.client.get(url, headers=self.h(who), params=params)

    def post(self, who: str, url: str, body: dict[str, Any] | None = None) -> Any:
        answer = self.client.post(url, headers=self.h(who), json=body or {})
        assert answer.status_code < 300, (url, answer.text)
        return answer.json()


def _grant(h: History, operator: str) -> str:
    columns = ["person_id", "district_code", "gender"]
    made = h.post(operator, "/v1/requests", {
        "scenario": f"district-population-{operator}",
        "purpose": "population by district for service planning",
        "content": "resident counts", "use": "aggregate statistics",
        "datasets": [{"dataset": "residents", "columns": columns}],
    })  # fmt: skip
    rid = made["id"]
    h.post("admin-1", f"/v1/requests/{rid}/formal-review", {"decision": "pass"})
    h.post("provider-1", f"/v1/requests/{rid}/provider-review", {"decision": "approve"})
    until = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    grant: str = h.post("provider-1", f"/v1/requests/{rid}/supply", {"valid_until": until})[
        "grant_id"
    ]
    return grant


def _run(h: History, operator: str, kind: str, code: str, *, dummy: bool = False) -> dict[str, Any]:
    body = {"grant": h.grants[operator], "kind": kind, "code": code, "dummy": dummy}
    job = h.post(operator, "/v1/jobs", body)
    done: dict[str, Any] = wait_for_job(h.client, h.h(operator), job["id"])
    return done


def _history(h: History) -> None:
    e = h.expected
    h.grants = {op: _grant(h, op) for op in ("operator-1", "operator-2")}
    first = _run(h, "operator-1", "sql", SQL)
    second = _run(h, "operator-1", "sql", SQL_GENDER)
    dummy = _run(h, "operator-1", "python", PY_HELD, dummy=True)
    approved = _run(h, "operator-1", "python", PY_HELD)
    denied = _run(h, "operator-1", "python", PY_HELD)
    assert [first["state"], second["state"], dummy["state"]] == ["released", "released",
                                                                 "completed"]  # fmt: skip
    assert approved["state"] == denied["state"] == "held", (approved, denied)
    vote = {"decision": "approve", "reason": "district counts, checked"}
    h.post("reviewer-1", f"/v1/reviews/{approved['id']}/votes", vote)
    vote = {"decision": "deny", "reason": "not needed for the scenario"}
    h.post("reviewer-1", f"/v1/reviews/{denied['id']}/votes", vote)
    outside = h.client.post("/v1/jobs", headers=h.h("operator-1"),
                            json={"grant": h.grants["operator-1"], "kind": "sql",
                                  "code": SQL_OUTSIDE})  # fmt: skip
    assert outside.status_code in (403, 422), outside.text
    other = _run(h, "operator-2", "sql", SQL)
    assert other["state"] == "released", other
    peek = h.get("operator-1", f"/v1/jobs/{other['id']}")
    assert peek.status_code in (403, 404), peek.text
    applied = h.post("operator-1", "/v1/products/registrations", {
        "type": "first", "job": first["id"], "name": "Residents by district",
        "description": "Resident counts per district.", "category": "public_governance",
    })  # fmt: skip
    product = finish_in_store(h.app, applied["id"])
    grant = h.grants["operator-1"]
    h.post("provider-1", f"/v1/grants/{grant}/suspend", {"reason": "rectification ordered"})
    h.post("provider-1", f"/v1/grants/{grant}/resume", {"reason": "rectified"})
    stop = h.post("admin-1", "/v1/datasets/residents/emergency-stop", {"reason": "leak suspected"})
    assert sorted(stop["suspended"]) == sorted(h.grants.values()), stop
    for stopped in stop["suspended"]:
        h.post("admin-1", f"/v1/grants/{stopped}/resume", {"reason": "no leak found"})
    h.app.state.denials.flush(everything=True)  # the minute's refusal count, written now
    e |= {
        "jobs": {("sql",): 2, ("python",): 2},
        "dummy_runs": 1,
        "released_jobs": [first["id"], second["id"], approved["id"]],
        "denied_jobs": [denied["id"]],
        "operator-2 jobs": [other["id"]],
        "product": product,
        "product_name": "Residents by district",
        "incident": stop["incident"],
    }


@contextmanager
def build_history(store_url: str, root: Path) -> Iterator[History]:
    """The history (see the module docstring) on the store of ``store_url``."""
    data = root / "var"
    paths = demo.generate_city(root / "src", residents=400, enterprises=60, seed=3)
    registry, policies = Registry(data), PolicyStore(data)
    for name, provider in PROVIDERS.items():
        version = registry.register(
            paths[name], name=name, entity_column=ENTITY[name], provider=provider
        )
        text = (POLICIES / f"{name}.yaml").read_text()
        policies.apply(text, {c.name: c.type for c in version.columns}, dataset=name,
                       author=provider)  # fmt: skip
    settings = GatewaySettings(
        data_dir=data, database_url=store_url, product_publicity_working_days=0
    )
    app = create_app(settings, build_runtime(settings, FakeBackend(root / "sandboxes")))
    tokens = {}
    with app.state.engine.begin() as conn:
        for name, role in ACCOUNTS.items():
            create_account(conn, name, {role}, actor="test")
            tokens[name] = issue_token(conn, name, actor="test")
    today = datetime.now(CST).date()
    period = f"{today - timedelta(days=1)}..{today + timedelta(days=1)}"
    with TestClient(app) as client:
        store = "sqlite" if store_url.startswith("sqlite") else "postgresql"
        history = History(app, client, tokens, {}, period, store)
        _history(history)
        yield history
    app.state.engine.dispose()
