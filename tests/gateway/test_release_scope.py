"""The scope is checked again at release: a grant's lines narrowed or removed while a
job waits, runs or sits in review release nothing.

Real jobs in real containers (runc), the store on SQLite and PostgreSQL. The
test grants' resolver keeps resolving the grant, so what refuses the release
is the scope check alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.jobs.worker import JobWorker
from sandbox.run.backends.base import Backend
from sandbox.views.build import DatasetScope
from tests.support.city import RESIDENT_COLUMNS, City
from tests.support.gateway_jobs import (
    PY_HELD,
    SQL_RELEASED,
    Gateway,
    open_gateway,
    residents_grant,
    runtime_for,
    vote,
)

pytestmark = pytest.mark.docker


def test_a_grant_narrowed_while_the_job_waits_releases_nothing(
    store_url: str, tmp_path: Path, city: City, runc: Backend
) -> None:
    runtime = runtime_for(city, runc)
    g = open_gateway(store_url, tmp_path / "var", runtime, autostart=False)
    scope = g.app.state.scope
    try:
        with g.client:
            g.grant(residents_grant("g-narrow", "op-1"))
            job = g.submit("op-1", "g-narrow", "sql", SQL_RELEASED)  # district_code: allowed
            narrower = tuple(c for c in RESIDENT_COLUMNS if c != "district_code")
            scope.grant_rules(
                "g-narrow", "op-1", [DatasetScope("residents", narrower)], ("read", "aggregate")
            )
            worker = JobWorker(g.app.state.engine, runtime, g.grants, scope=lambda: scope)
            done = worker.run_one()
            assert done is not None and done.id == job["id"]
            assert done.state.value == "refused" and done.outcome == "scope_denied_at_release"
            shown = g.client.get(f"/v1/jobs/{job['id']}", headers=g.h("op-1")).json()
            assert (shown["state"], shown["outcome"]) == ("refused", "scope_denied_at_release")
            assert g.client.get("/v1/reviews", headers=g.h("rev-1")).json() == []
            at_release = [e for e in g.events("scope.decision") if e.get("stage") == "release"]
            assert len(at_release) == 1 and not at_release[0]["allowed"], at_release
            denied = at_release[0]["denied"]
            assert [d["object"] for d in denied] == ["dataset:residents/column:district_code"]
            assert g.client.get(
                f"/v1/jobs/{job['id']}/outputs", headers=g.h("op-1")
            ).status_code in (404, 409)

            # Within the grant again: the same code is released, its decision audited too.
            g.grant(residents_grant("g-narrow", "op-1"))
            again = g.submit("op-1", "g-narrow", "sql", SQL_RELEASED)
            ended = worker.run_one()
            assert ended is not None and ended.id == again["id"]
            assert ended.state.value == "released", ended
            stages = [e.get("stage") for e in g.events("scope.decision")]
            assert stages.count("release") == 2
    finally:
        runtime.ledger.close()
        g.app.state.engine.dispose()


def test_an_approval_after_the_grant_lost_its_lines_releases_nothing(gw: Gateway) -> None:
    gw.grant(residents_grant("g-review", "op-1"))
    job = gw.submit("op-1", "g-review", "python", PY_HELD)
    assert gw.wait("op-1", job["id"])["state"] == "held"
    gw.app.state.scope.revoke_rules("g-review")
    approved = vote(gw, "rev-1", job["id"], "approve", "district counts, k met")
    assert approved.status_code == 201, approved.text
    body = approved.json()
    assert body["job_state"] == "refused" and body["outcome"] == "scope_denied_at_release", body
    assert body["review_state"] == "refused"
    assert gw.client.get("/v1/reviews", headers=gw.h("rev-2")).json() == []
    after = gw.client.get(f"/v1/jobs/{job['id']}", headers=gw.h("op-1")).json()
    assert "scope" in {f["rule"] for f in after["findings"]}
    assert gw.client.get(
        f"/v1/jobs/{job['id']}/outputs/districts.csv", headers=gw.h("op-1")
    ).status_code in (404, 409)
