"""``GET /metrics``: who may scrape, what the store's gauges and the refusal counter say,
and that two apps in one process keep their metrics apart (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from gateway.app import create_app
from gateway.audit import append
from gateway.audit.checkpointer import Checkpointer
from gateway.he.limits import Limits, settle, take
from gateway.identity import Role, create_account, issue_token
from gateway.settings import GatewaySettings
from gateway.store.tables import audit_events, grants, he_products
from tests.support.access import METRICS
from tests.support.gateway_jobs import PY_HELD, Gateway, residents_grant
from tests.support.metrics import scrape, value

ROLES = [r.value for r in Role]
METRICS_TOKEN = "m" * 40
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class World:
    app: FastAPI
    client: TestClient
    tokens: dict[str, str]
    now: list[datetime]

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def head(self) -> int:
        with self.app.state.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(audit_events.c.id))).scalar_one())

    def failed_logins(self) -> int:
        with self.app.state.engine.connect() as conn:
            query = sa.select(sa.func.count()).where(audit_events.c.type == "auth.failed")
            return int(conn.execute(query).scalar_one())


def open_world(store_url: str, data_dir: Path) -> World:
    now = [START]
    settings = GatewaySettings(
        data_dir=data_dir, database_url=store_url, metrics_token=SecretStr(METRICS_TOKEN)
    )
    app = create_app(settings, clock=lambda: now[0])
    # The checkpointer on the app's clock too: a checkpoint's age is then exact.
    app.state.checkpointer = Checkpointer.from_settings(
        app.state.engine, settings, clock=lambda: now[0]
    )
    tokens = {}
    with app.state.engine.begin() as conn:
        for role in ROLES:
            create_account(conn, role, {role}, actor="test")
            tokens[role] = issue_token(conn, role, actor="test")
    return World(app, TestClient(app), tokens, now)


@pytest.fixture
def world(store_url: str, tmp_path: Path) -> Iterator[World]:
    w = open_world(store_url, tmp_path / "var")
    with w.client:
        yield w
    w.app.state.engine.dispose()


def test_metrics_is_in_the_openapi_document_under_meta(world: World) -> None:
    operation = world.client.get("/openapi.json").json()["paths"]["/metrics"]["get"]
    assert operation["tags"] == ["meta"]
    assert any(p["name"] == "authorization" for p in operation["parameters"])


@pytest.mark.parametrize(("method", "path"), sorted(METRICS))
def test_access_matrix(world: World, method: str, path: str) -> None:
    allowed = METRICS[(method, path)]
    assert allowed not in ("public", "any")
    for role in ROLES:
        answer = world.client.request(method, path, headers=world.h(role))
        if role in allowed:
            assert answer.status_code == 200, (role, answer.text)
        else:
            assert answer.status_code == 403, (role, answer.text)
            assert "needs the role admin or auditor" in answer.json()["detail"]
    assert world.client.request(method, path).status_code == 401


def test_the_metrics_token_scrapes_and_a_wrong_one_is_a_bad_token(world: World) -> None:
    failed = world.failed_logins()
    families = scrape(world.client, {"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert "dsr_jobs" in families and "dsr_audit_chain_length" in families
    assert world.failed_logins() == failed  # a scrape writes nothing
    for wrong in (METRICS_TOKEN[:-1] + "n", METRICS_TOKEN + "m", "", METRICS_TOKEN[:8]):
        answer = world.client.get("/metrics", headers={"Authorization": f"Bearer {wrong}"})
        assert answer.status_code == 401, wrong
    assert world.failed_logins() == failed + 4  # each audited as a failed sign-in
    # The token is no account: it opens /metrics and nothing else.
    other = world.client.get("/v1/me", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert other.status_code == 401


def test_without_a_metrics_token_only_accounts_scrape(tmp_path: Path) -> None:
    app = create_app(GatewaySettings(data_dir=tmp_path / "var"))
    with TestClient(app) as client:
        for token in ("", "Bearer ", "Bearer  "):
            assert client.get("/metrics", headers={"Authorization": token}).status_code == 401
    app.state.engine.dispose()
    with pytest.raises(ValueError, match="at least 32 characters"):
        GatewaySettings(data_dir=tmp_path / "var", metrics_token=SecretStr("short"))


def test_each_refusal_is_counted_by_status_and_error_class(world: World) -> None:
    admin = world.h("admin")
    before = scrape(world.client, admin)
    assert world.client.get("/v1/accounts", headers=world.h("operator")).status_code == 403
    assert world.client.get("/v1/accounts", headers=world.h("operator")).status_code == 403
    assert world.client.get("/v1/grants/g-0000000000000000", headers=admin).status_code == 404
    assert world.client.get("/v1/me").status_code == 401
    assert world.client.post("/v1/accounts", headers=admin, json={}).status_code == 422
    after = scrape(world.client, admin)

    def grew(status: str, reason: str) -> float:
        sample = "dsr_refusals_total"
        return (value(after, sample, status=status, reason=reason) or 0) - (
            value(before, sample, status=status, reason=reason) or 0
        )

    assert grew("403", "HTTPException") == 2
    assert grew("404", "UnknownGrant") == 1
    assert grew("401", "HTTPException") == 1
    assert grew("422", "RequestValidationError") == 1
    # Labels name statuses and error classes only: never the path or an id asked for.
    labels = {v for s in after["dsr_refusals"].samples for v in s.labels.values()}
    assert not any("/" in v or "g-0" in v for v in labels), labels


def test_the_audit_chain_and_its_newest_checkpoint(world: World) -> None:
    admin = world.h("admin")
    families = scrape(world.client, admin)
    assert value(families, "dsr_audit_chain_length") == world.head()
    assert value(families, "dsr_audit_checkpoint_age_seconds") is None  # none signed yet
    assert value(families, "dsr_audit_checkpoint_lag_events") == world.head()

    made = world.client.post("/v1/audit/checkpoints", headers=admin).json()
    signed = made["checkpoint"]["event_id"]
    world.now[0] = START + timedelta(minutes=7)
    with world.app.state.engine.begin() as conn:
        for n in range(3):
            append(conn, "view.built", "system", detail={"n": n})
    families = scrape(world.client, admin)
    assert value(families, "dsr_audit_chain_length") == world.head() == signed + 3
    assert value(families, "dsr_audit_checkpoint_age_seconds") == 420.0
    assert value(families, "dsr_audit_checkpoint_lag_events") == 3


def test_encrypted_calls_by_outcome(world: World) -> None:
    """Calls counted as the HE routes count them (``gateway.he.limits``), by outcome."""
    engine = world.app.state.engine
    with engine.begin() as conn:  # a product's rows, as the HE routes leave them
        conn.execute(
            sa.insert(grants).values(
                id="g-he", operator="operator", scenario="credit", purpose="tax bands",
                scopes=[], state="active", valid_from=START, valid_until=START,
                pseudonym_key="0" * 64, key_id="k1", created_by="admin", created_at=START,
                state_changed_at=START, state_reason="",
            )
        )  # fmt: skip
        conn.execute(
            sa.insert(he_products).values(
                id="he-1", kind="verify", name="tax band", operator="operator",
                grant_id="g-he", datasets=[], spec={}, consumers=["consumer"],
                state="active", created_at=START, state_changed_at=START, state_reason="",
            )
        )  # fmt: skip
    outcomes = ["answered", "answered", "BadCiphertext", "answered"]
    limits = Limits(per_hour=100, per_day=100)
    with engine.begin() as conn:
        for outcome in outcomes:
            settle(conn, take(conn, limits, "he-1", "consumer", START), outcome)
        take(conn, limits, "he-1", "consumer", START)  # still evaluating
    families = scrape(world.client, world.h("auditor"))
    expected = Counter(outcomes) + Counter({"evaluating": 1})
    for outcome, n in expected.items():
        assert value(families, "dsr_he_calls_total", outcome=outcome) == n


def test_jobs_by_state_and_outcome_and_the_queue_per_operator(plain: Gateway) -> None:
    plain.grant(residents_grant("g-1", "op-1"))
    plain.grant(residents_grant("g-2", "op-2"))
    mine = [plain.submit("op-1", "g-1", "python", PY_HELD)["id"] for _ in range(3)]
    plain.submit("op-2", "g-2", "python", PY_HELD)
    cancel = plain.client.post(f"/v1/jobs/{mine[0]}/cancel", headers=plain.h("op-1"))
    assert cancel.status_code == 200, cancel.text
    listed = [
        job
        for who in ("op-1", "op-2")
        for job in plain.client.get("/v1/jobs", headers=plain.h(who)).json()
    ]
    families = scrape(plain.client, plain.h("admin-1"))
    states = Counter((j["state"], j["outcome"]) for j in listed)
    shown = {
        (s.labels["state"], s.labels["outcome"]): s.value for s in families["dsr_jobs"].samples
    }
    assert shown == states
    assert value(families, "dsr_jobs_queued", operator="op-1") == 2
    assert value(families, "dsr_jobs_queued", operator="op-2") == 1


def test_two_apps_in_one_process_keep_their_metrics_apart(tmp_path: Path) -> None:
    a, b = (open_world("", tmp_path / name) for name in ("a", "b"))
    try:
        assert a.app.state.metrics.registry is not b.app.state.metrics.registry
        assert a.app.state.metrics.stages is not b.app.state.metrics.stages
        with a.client, b.client:
            for _ in range(3):
                a.client.get("/v1/accounts", headers=a.h("consumer"))
            in_a = scrape(a.client, a.h("admin"))
            in_b = scrape(b.client, b.h("admin"))
            heads = a.head(), b.head()  # before the apps stop (a writes its refusals' summary)
        assert value(in_a, "dsr_refusals_total", status="403") == 3
        assert value(in_b, "dsr_refusals_total", status="403") is None
        assert value(in_a, "dsr_audit_chain_length") == heads[0]
        assert value(in_b, "dsr_audit_chain_length") == heads[1]
    finally:
        a.app.state.engine.dispose()
        b.app.state.engine.dispose()
