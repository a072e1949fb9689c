"""Jobs over HTTP: submission under a grant with its scope check, the worker pool
running the real pipeline in real containers (runc), outcomes, dummy-run logs,
downloads, cancellation, start-up reconciliation, products and the access matrix.

The store runs on SQLite and PostgreSQL; the grant comes from a resolver over
``Grant`` objects the tests build (the seam the grants package fills in). The
gateway and its fixtures (``plain``, ``gw``, ``city``, ``runc``) are
``tests.support.gateway_jobs`` and ``tests/gateway/conftest.py``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from gateway.identity import Role
from gateway.jobs.errors import Conflict, InvalidTransition
from gateway.jobs.findings import (
    GENERIC,
    MESSAGES,
    SHOWN,
    STORED,
    StoredFindings,
    for_operator,
)
from gateway.jobs.model import JOB, Outcome, State, transition
from gateway.jobs.service import cancel_queued_for_grant
from gateway.jobs.worker import JobWorker
from gateway.reviews import service as review_service
from gateway.reviews.model import Vote
from gateway.store import make_engine, migrate
from gateway.store.lifecycle import Clock
from gateway.store.migrations import CONNECTION, alembic_config
from gateway.store.tables import accounts, jobs, reviews
from sandbox.judge.rules import RULES
from sandbox.run.backends.base import Backend, RunHandle, RunSpec
from sandbox.views.build import DatasetScope
from tests.support.access import JOBS as ACCESS
from tests.support.access import PRICING
from tests.support.city import RESIDENT_COLUMNS, City, city_grant
from tests.support.gateway_jobs import (
    PY_DUMMY,
    PY_HELD,
    SQL_RELEASED,
    Gateway,
    open_gateway,
    residents_grant,
    runtime_for,
)
from tests.support.product_registration import finish_in_store

ROLES = [r.value for r in Role]

PREFIXES = ("/v1/jobs", "/v1/reviews", "/v1/products")
SAMPLE_PATH = {"{job_id}": "job-0000", "{name}": "result.csv", "{product_id}": "prd-0000"}
SAMPLE_PATH |= {"{registration_id}": "reg-0000", "{objection_id}": "obj-0000"}
SAMPLE_BODY = {
    ("POST", "/v1/jobs"): {"grant": "g-none", "kind": "python", "code": "print(1)"},
    ("POST", "/v1/reviews/{job_id}/votes"): {"decision": "approve", "reason": "fine by me"},
    ("POST", "/v1/products/registrations"): {
        "type": "first",
        "job": "job-0000",
        "name": "xy",
        "description": "y",
        "category": "public_governance",
    },
}


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
    assert routes - set(PRICING) == set(ACCESS)  # a product's price and charges: PRICING


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


def _move(g: Gateway, job_id: str, *steps: tuple[State, Outcome], clock: Clock) -> None:
    with g.app.state.engine.begin() as conn:
        for state, outcome in steps:
            transition(conn, job_id, state, actor="system", outcome=outcome, clock=clock)


def test_a_job_refused_at_release_is_final_and_never_in_the_review_queue(plain: Gateway) -> None:
    """``blocked`` waits for reviewers; ``refused`` (the ledger or the scope at release)
    is final: out of the queue, no vote, no move, the reason in its outcome."""
    at = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
    plain.grant(residents_grant("g-1", "op-1"))
    blocked, refused, scoped = (plain.submit("op-1", "g-1", "python", PY_HELD)["id"]
                                for _ in range(3))  # fmt: skip
    ran = [(State.RUNNING, Outcome.STARTED), (State.CHECKING, Outcome.RAN)]
    _move(plain, blocked, *ran, (State.BLOCKED, Outcome.CHECKS_FAILED), clock=lambda: at)
    _move(plain, refused, *ran, (State.HELD, Outcome.CHECKS_REVIEW),
          (State.REFUSED, Outcome.LEDGER_REFUSED), clock=lambda: at)  # fmt: skip
    _move(plain, scoped, *ran, (State.REFUSED, Outcome.SCOPE_DENIED), clock=lambda: at)
    queue = plain.client.get("/v1/reviews", headers=plain.h("rev-1")).json()
    assert [(q["job"], q["state"], q["required"]) for q in queue] == [(blocked, "blocked", 2)]
    for job_id, why in ((refused, "ledger_refused"), (scoped, "scope_denied_at_release")):
        shown = plain.client.get(f"/v1/jobs/{job_id}", headers=plain.h("op-1")).json()
        assert (shown["state"], shown["outcome"]) == ("refused", why)
        assert shown["finished_at"].startswith("2026-03-02T10:30")  # the clock given
        with plain.app.state.engine.begin() as conn, pytest.raises(Conflict):  # no sandbox needed
            review_service.vote(conn, None, None, job_id, "rev-1", Vote.APPROVE, "looks fine")  # type: ignore[arg-type]
        with plain.app.state.engine.begin() as conn, pytest.raises(InvalidTransition):
            transition(conn, job_id, State.RELEASED, actor="x", outcome=Outcome.REVIEW_APPROVED)
    assert JOB.terminal >= {State.REFUSED} and not JOB.allows(State.BLOCKED, State.BLOCKED)
    moved = [(e["from"], e["to"], e["outcome"]) for e in plain.events("job.state")
             if e["job"] == refused]  # fmt: skip
    assert moved[-1] == ("held", "refused", "ledger_refused")


def test_migration_0011_moves_jobs_refused_at_release_to_refused(store_url: str) -> None:
    """Jobs the ledger or the scope refused at release were ``blocked`` (or ``failed``,
    the worker's scope refusal): they become ``refused``, and back on downgrade."""
    engine = make_engine(store_url)
    config = alembic_config()
    try:
        with engine.begin() as conn:
            config.attributes[CONNECTION] = conn
            command.upgrade(config, "0010")
        at = datetime(2026, 3, 2, 10, tzinfo=UTC)
        old = {
            "j-ledger": ("blocked", "ledger_refused"),
            "j-scope-reviewed": ("blocked", "scope_denied_at_release"),
            "j-scope-worker": ("failed", "scope_denied_at_release"),
            "j-blocked": ("blocked", "checks_failed"),
            "j-held": ("held", "checks_review"),
        }
        with engine.begin() as conn:
            conn.execute(accounts.insert().values(
                name="op", display_name="op", roles=["operator"], created_at=at))  # fmt: skip
            for job_id, (state, outcome) in old.items():
                conn.execute(jobs.insert().values(
                    id=job_id, operator="op", grant_id="g", kind="sql", dummy=False, code="x",
                    code_sha256="0" * 64, state=state, outcome=outcome, attempts=1,
                    datasets=["residents"], submitted_at=at, updated_at=at))  # fmt: skip
            conn.execute(reviews.insert().values(
                job_id="j-scope-reviewed", state="refused", required=1, opened_at=at))  # fmt: skip

        def states() -> dict[str, str]:
            with engine.connect() as conn:
                return {r.id: r.state for r in conn.execute(sa.select(jobs.c.id, jobs.c.state))}

        migrate(engine)
        assert states() == {
            "j-ledger": "refused",
            "j-scope-reviewed": "refused",
            "j-scope-worker": "refused",
            "j-blocked": "blocked",
            "j-held": "held",
        }
        with engine.begin() as conn:
            config.attributes[CONNECTION] = conn
            command.downgrade(config, "0010")
        assert states() == {job_id: state for job_id, (state, _) in old.items()}
    finally:
        engine.dispose()


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

    # The released job is applied for as a product, once, and registered with its lineage.
    body = {
        "type": "first",
        "job": job["id"],
        "name": "Residents by district",
        "description": "Counts of residents per district.",
        "category": "public_governance",
    }
    other = gw.client.post("/v1/products/registrations", headers=gw.h("op-2"), json=body)
    assert other.status_code == 403
    made = gw.client.post("/v1/products/registrations", headers=gw.h("op-1"), json=body)
    assert made.status_code == 201, made.text
    again = gw.client.post("/v1/products/registrations", headers=gw.h("op-1"), json=body)
    assert again.status_code == 409
    product_id = finish_in_store(gw.app, made.json()["id"])
    product = gw.client.get(f"/v1/products/{product_id}", headers=gw.h("op-1")).json()
    assert product["registration_code"].startswith("CQGSJ-")
    assert product["code_sha256"] == done["code_sha256"]
    assert set(product["dataset_versions"]) == set(product["policy_versions"]) >= {"residents"}
    assert product["manifest"] == outputs["files"]
    assert product["manifest_sha256"] == outputs["manifest_sha256"]
    term = datetime.fromisoformat(product["valid_until"]) - datetime.fromisoformat(
        product["registered_at"]
    )
    assert timedelta(days=3 * 365) <= term <= timedelta(days=3 * 366)
    registered_again = gw.client.post("/v1/products/registrations", headers=gw.h("op-1"), json=body)
    assert registered_again.status_code == 409
    listed = gw.client.get("/v1/products", headers=gw.h("auditor-1")).json()
    assert [p["id"] for p in listed] == [product["id"]]
    renew = f"/v1/products/{product['id']}/renew"
    assert gw.client.post(renew, headers=gw.h("op-2")).status_code == 403
    early = gw.client.post(renew, headers=gw.h("op-1"))  # years before the renewal window
    assert early.status_code == 409 and "60 days" in early.json()["detail"]
    assert [e["action"] for e in gw.events("product.registered")] == ["registered"]


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
