"""Security review over HTTP: the queue, the evidence with the values, votes with a
reason, one approval for held jobs, two different reviewers to override a blocked
one, no self-review, deny ends it, and the ledger's last word on approval (a job it
refuses ends ``refused``, out of the queue).

Jobs run through the real pipeline in real containers (runc); the store runs on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import duckdb
import pytest

from tests.support.city import City, city_grant
from tests.support.gateway_jobs import PY_BLOCKED, PY_HELD, Gateway, vote

pytestmark = pytest.mark.docker

# The fixtures ``runc``, ``city`` (one per module) and ``gw`` (a gateway with its
# worker per test) come from tests/gateway/conftest.py.


def test_held_python_job_is_released_on_one_approval(gw: Gateway) -> None:
    gw.grant(city_grant("g-city", "op-1"))
    job = gw.submit("op-1", "g-city", "python", PY_HELD)
    done = gw.wait("op-1", job["id"])
    assert done["state"] == "held" and done["verdict"] == "REVIEW", done
    assert "auto_release" in {f["rule"] for f in done["findings"]}
    # The operator is told the rule, never given the file.
    assert gw.client.get(f"/v1/jobs/{job['id']}/outputs", headers=gw.h("op-1")).status_code == 409
    queue = gw.client.get("/v1/reviews", headers=gw.h("rev-1")).json()
    assert [(q["job"], q["state"], q["required"]) for q in queue] == [(job["id"], "held", 1)]
    seen = gw.client.get(f"/v1/reviews/{job['id']}", headers=gw.h("rev-1"))
    assert seen.status_code == 200
    review = seen.json()
    (file,) = review["files"]
    assert file["file"] == "districts.csv" and file["content"].startswith("district_code")
    assert review["code"] == PY_HELD and review["evidence"]["decision"] == "held"
    (viewed,) = gw.events("review.viewed")
    assert viewed["actor"] == "rev-1" and viewed["files"] == [
        {"output": 1, "sha256": file["sha256"]}  # by position: no name the job chose
    ]
    # A vote needs a written reason.
    assert vote(gw, "rev-1", job["id"], "approve", "  ").status_code == 422
    approved = vote(gw, "rev-1", job["id"], "approve", "district counts, k met")
    assert approved.status_code == 201, approved.text
    assert approved.json()["job_state"] == "released"
    assert vote(gw, "rev-2", job["id"], "deny", "too late now").status_code == 409
    (recorded,) = gw.events("review.vote")
    assert recorded["reason"] == "district counts, k met" and recorded["decision"] == "approve"
    got = gw.client.get(f"/v1/jobs/{job['id']}/outputs/districts.csv", headers=gw.h("op-1"))
    assert got.status_code == 200 and got.content.decode() == file["content"]
    assert gw.client.get("/v1/reviews", headers=gw.h("rev-1")).json() == []


def test_blocked_job_needs_two_different_reviewers_and_never_its_submitter(gw: Gateway) -> None:
    gw.grant(city_grant("g-or", "op-rev"))
    job = gw.submit("op-rev", "g-or", "python", PY_BLOCKED)
    done = gw.wait("op-rev", job["id"])
    assert done["state"] == "blocked" and done["verdict"] == "FAIL", done
    # The submitter holds the reviewer role too, and still cannot review it.
    assert gw.client.get("/v1/reviews", headers=gw.h("op-rev")).json() == []
    assert gw.client.get(f"/v1/reviews/{job['id']}", headers=gw.h("op-rev")).status_code == 403
    assert vote(gw, "op-rev", job["id"], "approve").status_code == 403
    first = vote(gw, "rev-1", job["id"], "approve", "small cells acceptable here")
    assert first.status_code == 201
    assert first.json()["job_state"] == "blocked"
    assert (first.json()["approvals"], first.json()["required"]) == (1, 2)
    assert vote(gw, "rev-1", job["id"], "approve").status_code == 409  # one vote each
    second = vote(gw, "rev-2", job["id"], "approve", "agree with rev-1")
    assert second.status_code == 201 and second.json()["job_state"] == "released", second.text
    final = gw.client.get(f"/v1/jobs/{job['id']}", headers=gw.h("op-rev")).json()
    assert final["state"] == "released" and final["outcome"] == "review_approved"
    states = [(e["to"], e.get("review")) for e in gw.events("job.state")]
    assert states[-1] == ("released", "approved")


def test_a_deny_ends_the_review(gw: Gateway) -> None:
    gw.grant(city_grant("g-city", "op-1"))
    job = gw.submit("op-1", "g-city", "python", PY_BLOCKED)
    assert gw.wait("op-1", job["id"])["state"] == "blocked"
    assert vote(gw, "rev-1", job["id"], "approve").status_code == 201
    denied = vote(gw, "rev-2", job["id"], "deny", "raw rows of residents")
    assert denied.status_code == 201 and denied.json()["job_state"] == "denied"
    assert vote(gw, "op-2", job["id"], "approve").status_code == 403  # not a reviewer
    assert gw.client.get(f"/v1/jobs/{job['id']}/outputs", headers=gw.h("op-1")).status_code == 409
    assert gw.client.get("/v1/reviews", headers=gw.h("rev-1")).json() == []


def test_approval_the_ledger_now_refuses_ends_the_job_refused(gw: Gateway, city: City) -> None:
    gw.grant(city_grant("g-city", "op-1"))
    path = city.registry.get("residents").path
    oldest = duckdb.sql(f"SELECT min(year(birth_date)) FROM read_parquet('{path}')").fetchall()[0]
    base = gw.submit(
        "op-1", "g-city", "sql", "SELECT gender, count(*) AS n FROM residents GROUP BY 1"
    )
    assert gw.wait("op-1", base["id"])["state"] == "released"
    # The same totals without the oldest birth year: a few residents, differenced out.
    diff = gw.submit(
        "op-1",
        "g-city",
        "sql",
        "SELECT gender, count(*) AS n FROM residents "
        f"WHERE birth_date > DATE '{oldest[0]}-12-31' GROUP BY 1",
    )
    done = gw.wait("op-1", diff["id"])
    assert done["state"] == "blocked" and "differencing" in {f["rule"] for f in done["findings"]}
    assert vote(gw, "rev-1", diff["id"], "approve").status_code == 201
    last = vote(gw, "rev-2", diff["id"], "approve")
    assert last.status_code == 201, last.text
    assert last.json()["job_state"] == "refused" and last.json()["review_state"] == "refused"
    after = gw.client.get(f"/v1/jobs/{diff['id']}", headers=gw.h("op-1")).json()
    assert after["state"] == "refused" and after["outcome"] == "ledger_refused"
    assert "differs from a released cell" in after["findings"][-1]["message"]
    assert gw.client.get("/v1/reviews", headers=gw.h("rev-1")).json() == []
    assert gw.client.get(f"/v1/reviews/{diff['id']}", headers=gw.h("rev-1")).status_code == 409
    assert vote(gw, "op-rev", diff["id"], "approve").status_code == 409  # nothing to decide
    (ended,) = gw.events("review.state")
    assert (ended["job"], ended["from"], ended["to"]) == (diff["id"], "open", "refused")
    moved = [(e["from"], e["to"], e["outcome"]) for e in gw.events("job.state")
             if e["job"] == diff["id"]]  # fmt: skip
    assert moved[-1] == ("blocked", "refused", "ledger_refused")
