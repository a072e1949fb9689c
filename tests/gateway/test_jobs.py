"""Jobs over HTTP: submission under a grant with its scope check, the worker pool
running the real pipeline in real containers (runc), outcomes, dummy-run logs,
downloads, cancellation, start-up reconciliation, products and the access matrix.

The store runs on SQLite and PostgreSQL; the grant comes from a resolver over
``Grant`` objects built here (the seam the grants package fills in).
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection

from gateway.app import create_app
from gateway.identity import Role, create_account, issue_token
from gateway.jobs.findings import (
    GENERIC,
    MESSAGES,
    SHOWN,
    STORED,
    StoredFindings,
    for_operator,
)
from gateway.jobs.model import State
from gateway.jobs.service import cancel_queued_for_grant
from gateway.jobs.worker import JobRuntime, JobWorker
from gateway.scope import ScopePolicy
from gateway.settings import GatewaySettings
from gateway.store.tables import audit_events, jobs
from sandbox.backends.base import Backend, Limits, RunHandle, RunSpec
from sandbox.checks import RULES
from sandbox.checks.fingerprints import FingerprintStore
from sandbox.entitymap import EntityMaps, ledger_secret
from sandbox.ledger import Ledger
from sandbox.pipeline import Pipeline
from sandbox.settings import SandboxSettings
from sandbox.views import DatasetScope, Grant
from tests.conftest import require_engine
from tests.sandbox.city import RESIDENT_COLUMNS, City, city_grant, make_city

ROLES = [r.value for r in Role]
WAITING = {"queued", "running", "checking"}

# Every route of jobs, reviews and products, and who may use it.
ACCESS: dict[tuple[str, str], str | frozenset[str]] = {
    ("POST", "/v1/jobs"): frozenset({"operator"}),
    ("GET", "/v1/jobs"): frozenset({"operator"}),
    ("GET", "/v1/jobs/{job_id}"): frozenset({"operator"}),
    ("GET", "/v1/jobs/{job_id}/logs"): frozenset({"operator"}),
    ("GET", "/v1/jobs/{job_id}/outputs"): frozenset({"operator"}),
    ("GET", "/v1/jobs/{job_id}/outputs/{name}"): frozenset({"operator"}),
    ("POST", "/v1/jobs/{job_id}/cancel"): frozenset({"operator"}),
    ("GET", "/v1/reviews"): frozenset({"reviewer"}),
    ("GET", "/v1/reviews/{job_id}"): frozenset({"reviewer"}),
    ("POST", "/v1/reviews/{job_id}/votes"): frozenset({"reviewer"}),
    ("POST", "/v1/products"): frozenset({"operator"}),
    ("GET", "/v1/products"): frozenset({"operator", "provider", "reviewer", "admin", "auditor"}),
    ("GET", "/v1/products/{product_id}"): frozenset(
        {"operator", "provider", "reviewer", "admin", "auditor"}
    ),
    ("POST", "/v1/products/{product_id}/renew"): frozenset({"operator"}),
}
PREFIXES = ("/v1/jobs", "/v1/reviews", "/v1/products")
SAMPLE_PATH = {"{job_id}": "job-0000", "{name}": "result.csv", "{product_id}": "prd-0000"}
SAMPLE_BODY = {
    ("POST", "/v1/jobs"): {"grant": "g-none", "kind": "python", "code": "print(1)"},
    ("POST", "/v1/reviews/{job_id}/votes"): {"decision": "approve", "reason": "fine by me"},
    ("POST", "/v1/products"): {
        "job": "job-0000",
        "name": "x",
        "description": "y",
        "category": "public_governance",
    },
}

SQL_RELEASED = "SELECT district_code, count(*) AS residents FROM residents GROUP BY 1"
PY_HEAD = "from sandbox.sdk import connect, publish_table\ncon = connect()\n"
PY_HELD = PY_HEAD + (
    'df = con.sql("SELECT district_code, count(*) AS n FROM residents GROUP BY 1").df()\n'
    'publish_table("districts.csv", df, group_by=["district_code"], measures=[], count="n")\n'
)
PY_DUMMY = PY_HEAD + 'print("rows:", con.sql("SELECT count(*) FROM residents").fetchall()[0][0])\n'


# -- plain helpers -----------------------------------------------------------------------


class Grants:
    """A grant resolver over ``Grant`` objects; inactive grants raise, as the real one does."""

    def __init__(self) -> None:
        self.grants: dict[str, Grant] = {}
        self.inactive: set[str] = set()

    def __call__(self, conn: Connection, grant_id: str) -> Grant:
        if grant_id not in self.grants or grant_id in self.inactive:
            raise LookupError(f"grant {grant_id} is not active")
        return self.grants[grant_id]


@dataclass
class Gateway:
    app: FastAPI
    client: TestClient
    tokens: dict[str, str]
    grants: Grants

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def grant(self, grant: Grant, actions: tuple[str, ...] = ("read", "aggregate", "join")) -> None:
        """Issue ``grant``: resolvable, with its scope lines."""
        self.grants.grants[grant.grant_id] = grant
        self.app.state.scope.grant_rules(grant.grant_id, grant.operator, grant.scopes, actions)

    def submit(self, who: str, grant: str, kind: str, code: str, **extra: Any) -> dict[str, Any]:
        body = {"grant": grant, "kind": kind, "code": code, **extra}
        response = self.client.post("/v1/jobs", headers=self.h(who), json=body)
        assert response.status_code == 201, response.text
        job: dict[str, Any] = response.json()
        return job

    def wait(self, who: str, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job: dict[str, Any] = self.client.get(f"/v1/jobs/{job_id}", headers=self.h(who)).json()
            if job["state"] not in WAITING:
                return job
            assert time.monotonic() < deadline, job
            time.sleep(0.2)

    def events(self, type_: str) -> list[dict[str, Any]]:
        with self.app.state.engine.connect() as conn:
            rows = conn.execute(
                sa.select(audit_events.c.actor, audit_events.c.detail)
                .where(audit_events.c.type == type_)
                .order_by(audit_events.c.id)
            ).all()
        return [{"actor": r.actor, **r.detail} for r in rows]


ACCOUNTS = {
    "op-1": {"operator"},
    "op-2": {"operator"},
    "op-rev": {"operator", "reviewer"},
    "rev-1": {"reviewer"},
    "rev-2": {"reviewer"},
    **{f"{r}-1": {r} for r in ("admin", "auditor", "provider", "consumer")},
}


def open_gateway(
    store_url: str, data_dir: Path, runtime: JobRuntime | None, *, autostart: bool = True
) -> Gateway:
    app = create_app(GatewaySettings(data_dir=data_dir, database_url=store_url))
    grants = Grants()
    app.state.grant_resolver = grants
    app.state.runtime = runtime
    app.state.worker_autostart = autostart
    app.state.scope = ScopePolicy.from_engine(app.state.engine)
    tokens = {}
    with app.state.engine.begin() as conn:
        for name, roles in ACCOUNTS.items():
            create_account(conn, name, roles, actor="test")
            tokens[name] = issue_token(conn, name, actor="test")
    return Gateway(app, TestClient(app), tokens, grants)


_runs = itertools.count()


@pytest.fixture(scope="module")
def runc() -> Backend:
    require_engine()
    from sandbox.backends.docker import DockerBackend

    return DockerBackend(SandboxSettings(runtime="runc"))


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory, runc: Backend) -> Iterator[City]:
    city = make_city(tmp_path_factory.mktemp("gwcity"), runc, residents=3000, enterprises=600)
    yield city
    city.ledger.close()


def runtime_for(city: City, backend: Backend) -> JobRuntime:
    """A pipeline over the city with a ledger and work directory of its own."""
    base = city.root / f"run-{next(_runs)}"
    base.mkdir(mode=0o755)
    data, cache = city.root / "data", city.root / "cache"
    ledger = Ledger(base / "ledger.sqlite")
    pipeline = Pipeline(
        views=city.views,
        dummy=city.dummy,
        backend=backend,
        ledger=ledger,
        fingerprints=FingerprintStore(data),
        entity_maps=EntityMaps(cache, ledger_secret(data)),
        work_dir=base / "work",
        limits=Limits(wall_seconds=120, memory_bytes=1024 * 1024 * 1024),
    )
    return JobRuntime(pipeline, city.views, ledger, backend, base / "work")


@pytest.fixture
def gw(store_url: str, tmp_path: Path, city: City, runc: Backend) -> Iterator[Gateway]:
    """A gateway with the worker running jobs against the city."""
    runtime = runtime_for(city, runc)
    g = open_gateway(store_url, tmp_path / "var", runtime)
    with g.client:
        yield g
    runtime.ledger.close()
    g.app.state.engine.dispose()


@pytest.fixture
def plain(store_url: str, tmp_path: Path) -> Iterator[Gateway]:
    """A gateway without a sandbox: submissions queue and nothing runs."""
    g = open_gateway(store_url, tmp_path / "var", None)
    with g.client:
        yield g
    g.app.state.engine.dispose()


def residents_grant(grant_id: str, operator: str) -> Grant:
    return Grant(
        grant_id=grant_id,
        operator=operator,
        scenario="population",
        scopes=(DatasetScope("residents", RESIDENT_COLUMNS),),
        key=(grant_id.encode() * 8)[:32].ljust(32, b"k"),
        key_id=f"{grant_id}-k1",
    )


# -- the access matrix ----------------------------------------------------------------


def call(g: Gateway, method: str, path: str, who: str | None):  # type: ignore[no-untyped-def]
    url = path
    for key, value in SAMPLE_PATH.items():
        url = url.replace(key, value)
    headers = g.h(who) if who else {}
    return g.client.request(method, url, headers=headers, json=SAMPLE_BODY.get((method, path)))


def test_every_job_review_and_product_route_is_in_the_access_matrix(plain: Gateway) -> None:
    paths = plain.client.get("/openapi.json").json()["paths"]
    routes = {(m.upper(), p) for p, ops in paths.items() for m in ops if p.startswith(PREFIXES)}
    assert routes == set(ACCESS)


def test_access_matrix(plain: Gateway) -> None:
    role_account = {r: f"{r}-1" for r in ("admin", "auditor", "provider", "consumer")}
    role_account |= {"operator": "op-1", "reviewer": "rev-1"}
    for (method, path), allowed in sorted(ACCESS.items()):
        for role in ROLES:
            response = call(plain, method, path, role_account[role])
            if allowed == "any" or role in allowed:
                assert response.status_code not in (401, 403), (method, path, role, response.text)
            else:
                assert response.status_code == 403, (method, path, role, response.text)
                assert "needs the role" in response.json()["detail"]
        assert call(plain, method, path, None).status_code == 401, (method, path)


# -- without a sandbox ----------------------------------------------------------------------


def test_queued_jobs_are_cancelled_by_their_operator_or_the_grant_hook(plain: Gateway) -> None:
    plain.grant(residents_grant("g-1", "op-1"))
    job = plain.submit("op-1", "g-1", "python", PY_HELD)
    assert (
        job["state"] == "queued"
        and job["code_sha256"] == hashlib.sha256(PY_HELD.encode()).hexdigest()
    )
    other = plain.client.post(f"/v1/jobs/{job['id']}/cancel", headers=plain.h("op-2"))
    assert other.status_code == 403
    done = plain.client.post(f"/v1/jobs/{job['id']}/cancel", headers=plain.h("op-1"))
    assert done.status_code == 200 and done.json()["state"] == "cancelled"
    again = plain.client.post(f"/v1/jobs/{job['id']}/cancel", headers=plain.h("op-1"))
    assert again.status_code == 409
    # Suspending a grant cancels what is still queued under it.
    queued = [plain.submit("op-1", "g-1", "python", PY_HELD)["id"] for _ in range(2)]
    with plain.app.state.engine.begin() as conn:
        assert sorted(cancel_queued_for_grant(conn, "g-1")) == sorted(queued)
    listed = plain.client.get("/v1/jobs", headers=plain.h("op-1")).json()
    assert {j["state"] for j in listed} == {"cancelled"} and len(listed) == 3
    assert plain.client.get("/v1/jobs", headers=plain.h("op-2")).json() == []
    states = [e for e in plain.events("job.state") if e["to"] == "cancelled"]
    assert [e["outcome"] for e in states] == [
        "cancelled_by_operator", "cancelled_grant_suspended", "cancelled_grant_suspended",
    ]  # fmt: skip


def test_scope_denial_is_refused_and_audited(plain: Gateway) -> None:
    grant = city_grant("g-wide", "op-1")  # the grant object covers four datasets ...
    plain.grants.grants[grant.grant_id] = grant
    # ... but the scope policy holds lines for residents only.
    plain.app.state.scope.grant_rules(
        "g-wide", "op-1", (DatasetScope("residents", RESIDENT_COLUMNS),), ("read",)
    )
    refused = plain.client.post(
        "/v1/jobs",
        headers=plain.h("op-1"),
        json={"grant": "g-wide", "kind": "python", "code": PY_HELD},
    )
    assert refused.status_code == 403 and "scope denied" in refused.json()["detail"]
    (decision,) = plain.events("scope.decision")
    assert decision["allowed"] is False and decision["action"] == "read"
    assert decision["actor"] == "op-1"
    denied = {d["object"] for d in decision["denied"]}
    assert "dataset:enterprises/column:industry" in denied
    assert all(d["reason"] == ["no rule matched: denied by default"] for d in decision["denied"])
    assert plain.events("job.submitted") == []
    # Another operator's grant, and an inactive one, are refused too.
    plain.grant(residents_grant("g-2", "op-2"))
    body = {"grant": "g-2", "kind": "python", "code": PY_HELD}
    assert plain.client.post("/v1/jobs", headers=plain.h("op-1"), json=body).status_code == 403
    plain.grants.inactive.add("g-2")
    assert plain.client.post("/v1/jobs", headers=plain.h("op-2"), json=body).status_code == 409


# -- through the sandbox ---------------------------------------------------------------------


@pytest.mark.docker
def test_sql_job_is_released_end_to_end_and_registered_as_a_product(gw: Gateway) -> None:
    gw.grant(city_grant("g-city", "op-1"))
    job = gw.submit("op-1", "g-city", "sql", SQL_RELEASED)
    done = gw.wait("op-1", job["id"])
    assert done["state"] == "released", done
    assert done["outcome"] == "checks_passed" and done["verdict"] == "PASS"
    assert done["exit_class"] == "succeeded" and done["runtime"] == "runc"
    assert done["run_seconds"] > 0 and done["sandbox_seconds"] >= done["run_seconds"]
    assert done["attempts"] == 1 and done["outputs"] == 1
    # Real-data logs are withheld.
    logs = gw.client.get(f"/v1/jobs/{job['id']}/logs", headers=gw.h("op-1"))
    assert logs.status_code == 403
    outputs = gw.client.get(f"/v1/jobs/{job['id']}/outputs", headers=gw.h("op-1")).json()
    (entry,) = outputs["files"]
    assert entry["file"] == "result.csv"
    url = f"/v1/jobs/{job['id']}/outputs/result.csv"
    got = gw.client.get(url, headers=gw.h("op-1"))
    assert got.status_code == 200
    assert hashlib.sha256(got.content).hexdigest() == entry["sha256"]
    assert next(csv.reader(io.StringIO(got.content.decode()))) == ["district_code", "residents"]
    # Nobody else downloads it.
    assert gw.client.get(url, headers=gw.h("op-2")).status_code == 403
    outputs_other = gw.client.get(f"/v1/jobs/{job['id']}/outputs", headers=gw.h("op-2"))
    assert outputs_other.status_code == 403
    (download,) = gw.events("download")
    assert download["actor"] == "op-1" and download["sha256"] == entry["sha256"]
    # Decided at submission and again at release, on the same lineage.
    submitted, released = gw.events("scope.decision")
    assert "stage" not in submitted and released["stage"] == "release"
    for decision in (submitted, released):
        assert decision["allowed"] and decision["action"] == "aggregate"
        assert "dataset:residents/column:district_code" in decision["objects"]
    (run,) = gw.events("job.run")
    assert run["exit_class"] == "succeeded" and run["logs_withheld"] is True
    (verdict,) = gw.events("verdict")
    assert verdict["verdict"] == "PASS" and verdict["outputs"][0]["sha256"] == entry["sha256"]
    moves = [(e["from"], e["to"]) for e in gw.events("job.state")]
    assert moves == [("queued", "running"), ("running", "checking"), ("checking", "released")]

    # The released job becomes a product, once.
    body = {
        "job": job["id"],
        "name": "Residents by district",
        "description": "Counts of residents per district.",
        "category": "public_governance",
    }
    other = gw.client.post("/v1/products", headers=gw.h("op-2"), json=body)
    assert other.status_code == 403
    made = gw.client.post("/v1/products", headers=gw.h("op-1"), json=body)
    assert made.status_code == 201, made.text
    product = made.json()
    assert product["registration_code"].startswith("DP-")
    assert product["code_sha256"] == done["code_sha256"]
    assert set(product["dataset_versions"]) == set(product["policy_versions"]) >= {"residents"}
    assert product["manifest"] == outputs["files"]
    assert product["manifest_sha256"] == outputs["manifest_sha256"]
    term = datetime.fromisoformat(product["valid_until"]) - datetime.fromisoformat(
        product["registered_at"]
    )
    assert timedelta(days=3 * 365) <= term <= timedelta(days=3 * 366)
    again = gw.client.post("/v1/products", headers=gw.h("op-1"), json=body)
    assert again.status_code == 409
    listed = gw.client.get("/v1/products", headers=gw.h("auditor-1")).json()
    assert [p["id"] for p in listed] == [product["id"]]
    renew = f"/v1/products/{product['id']}/renew"
    assert gw.client.post(renew, headers=gw.h("op-2")).status_code == 403
    renewed = gw.client.post(renew, headers=gw.h("op-1")).json()
    assert renewed["renewed_at"] is not None and renewed["valid_until"] >= product["valid_until"]
    assert [e["action"] for e in gw.events("product.registered")] == ["registered", "renewed"]


@pytest.mark.docker
def test_dummy_runs_show_their_logs(gw: Gateway) -> None:
    gw.grant(residents_grant("g-res", "op-1"))
    job = gw.submit("op-1", "g-res", "python", PY_DUMMY, dummy=True)
    done = gw.wait("op-1", job["id"])
    assert done["state"] == "completed" and done["outcome"] == "dummy_finished", done
    logs = gw.client.get(f"/v1/jobs/{job['id']}/logs", headers=gw.h("op-1"))
    assert logs.status_code == 200 and "rows: " in logs.json()["stdout"]
    assert gw.client.get(f"/v1/jobs/{job['id']}/logs", headers=gw.h("op-2")).status_code == 403
    # A dummy run's outputs are never released.
    assert gw.client.get(f"/v1/jobs/{job['id']}/outputs", headers=gw.h("op-1")).status_code == 409


@pytest.mark.docker
def test_startup_requeues_a_job_left_running_once_then_fails_it(
    store_url: str, tmp_path: Path, city: City, runc: Backend
) -> None:
    runtime = runtime_for(city, runc)
    g = open_gateway(store_url, tmp_path / "var", runtime, autostart=False)
    engine = g.app.state.engine
    try:
        with g.client:
            g.grant(residents_grant("g-res", "op-1"))
            job = g.submit("op-1", "g-res", "python", PY_DUMMY, dummy=True)
            crashed = JobWorker(engine, runtime, g.grants)
            assert crashed.claim() is not None  # ... and the process died here
            # The sandbox the dead process left behind, and one of another store.
            job_dir = runtime.work_dir / "orphan"
            job_dir.mkdir(parents=True)
            job_dir.chmod(0o755)
            runc.prepare(RunSpec(job_id=job["id"], job_dir=job_dir))
            runc.prepare(RunSpec(job_id="not-ours-1", job_dir=job_dir))

            worker = JobWorker(engine, runtime, g.grants, concurrency=1, poll_seconds=0.2)
            reconciled = worker.start()
            try:
                assert reconciled.requeued == (job["id"],)
                assert reconciled.removed_sandboxes == (job["id"],)
                done = g.wait("op-1", job["id"])
            finally:
                worker.stop()
            assert done["state"] == "completed" and done["attempts"] == 2, done
            assert "not-ours-1" in runc.sandboxes()
            runc.cleanup(RunHandle("not-ours-1", "dsr-job-not-ours-1", "runc"))
            assert "not-ours-1" not in runc.sandboxes()
            outcomes = [e["outcome"] for e in g.events("job.state")]
            assert outcomes[:3] == ["started", "requeued_after_restart", "started"]

            # Left running a second time: failed, not re-queued again.
            second = g.submit("op-1", "g-res", "python", PY_DUMMY, dummy=True)
            with engine.begin() as conn:
                conn.execute(
                    sa.update(jobs)
                    .where(jobs.c.id == second["id"])
                    .values(state=State.RUNNING.value, attempts=2)
                )
            assert JobWorker(engine, runtime, g.grants).reconcile().failed == (second["id"],)
            assert g.wait("op-1", second["id"])["outcome"] == "interrupted"
    finally:
        runtime.ledger.close()
        engine.dispose()


# -- findings as operators read them ----------------------------------------------------


def test_every_rule_has_a_fixed_sentence_without_numbers() -> None:
    assert set(RULES) <= set(MESSAGES), set(RULES) - set(MESSAGES)
    sandbox = Path(__file__).parents[2] / "sandbox"
    literal = re.compile(r'\bFinding\(\s*"([a-z_]+)"')  # rule ids written in place
    written = {m for p in sandbox.rglob("*.py") for m in literal.findall(p.read_text())}
    assert written <= set(MESSAGES), written - set(MESSAGES)
    for sentence in [*MESSAGES.values(), GENERIC]:
        assert sentence and not any(c.isdigit() or c in '{}"' for c in sentence), sentence


def test_operators_see_outputs_by_position_and_only_view_columns() -> None:
    outputs = [{"file": "secret-a.csv"}, {"file": "secret-b.csv"}]
    findings: list[dict[str, Any]] = [
        {"rule": "min_aggregation", "verdict": "FAIL", "file": "secret-b.csv", "row": 3,
         "column": "secret_col", "message": "the row aggregates 1 entities"},
        {"rule": "sensitive_value", "verdict": "REVIEW", "file": "secret-a.csv", "row": None,
         "column": "income", "message": "value 1234.5"},
        {"rule": "undeclared_file", "verdict": "PASS", "file": "secret-c.csv", "row": None,
         "column": None, "message": "secret-c.csv is not declared"},
        {"rule": "made_up", "verdict": "odd", "file": None, "row": True, "column": None,
         "message": "secret"},
    ]  # fmt: skip
    shown = for_operator(findings, outputs, {"income", "age"})
    assert "secret" not in repr(shown)
    assert [(f["rule"], f["output"], f["row"], f["column"]) for f in shown] == [
        ("min_aggregation", 2, 3, None),
        ("sensitive_value", 1, None, "income"),
        ("made_up", None, None, None),  # an unknown verdict reads as REVIEW
        ("undeclared_file", None, None, None),
    ]
    assert [f["message"] for f in shown] == [
        MESSAGES["min_aggregation"], MESSAGES["sensitive_value"], GENERIC,
        MESSAGES["undeclared_file"],
    ]  # fmt: skip
    assert len(for_operator(findings * 100, outputs, ())) == SHOWN


def test_the_outcome_row_keeps_the_worst_findings_and_counts_them_all() -> None:
    many = [{"rule": "suppressed", "verdict": "PASS"}] * 3_000 + [
        {"rule": "min_aggregation", "verdict": "FAIL"}
    ] * 2_000
    stored = StoredFindings.of(many, ["age"])
    assert len(stored.items) == STORED and stored.total == 5_000
    assert {f["verdict"] for f in stored.items} == {"FAIL"}
    assert stored.by_rule == {"min_aggregation": 2_000, "suppressed": 3_000}
    again = StoredFindings.from_json(stored.to_json())
    assert again == stored
    added = again.add({"rule": "scope", "verdict": "FAIL", "file": None})
    assert added.items[0]["rule"] == "scope" and added.total == 5_001
    assert added.by_rule["scope"] == 1 and len(added.items) == STORED
    old = StoredFindings.from_json([{"rule": "dominance", "verdict": "FAIL"}])  # a list row
    assert old.total == 1 and old.view_columns == frozenset()
