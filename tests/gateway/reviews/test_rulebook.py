"""The review rulebook over HTTP, without Docker: one approval releases a held job, a
blocked one needs two different reviewers and never its submitter, a vote needs a
reason and each reviewer votes once, a deny ends it, and the reviewer sees the
files and evidence while the operator gets nothing before the release.

The jobs run through the real pipeline on the fake backend (the in-container code
as host subprocesses: ``tests.support.fakebackend``); what is under test is the
trusted side's rules, not the sandbox; the store runs on SQLite and PostgreSQL.
The ledger's last word on an approval runs in real containers
(``tests/gateway/test_reviews.py``).
"""

from __future__ import annotations

from tests.support.city import city_grant
from tests.support.gateway_jobs import PY_BLOCKED, PY_HELD, SQL_RELEASED, Gateway, vote


def test_held_python_job_is_released_on_one_approval(fake_gw: Gateway) -> None:
    gw = fake_gw
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
    assert vote(gw, "rev-1", job["id"], "approve", "  ").status_code == 422  # a reason
    approved = vote(gw, "rev-1", job["id"], "approve", "district counts, k met")
    assert approved.status_code == 201, approved.text
    assert approved.json()["job_state"] == "released"
    assert vote(gw, "rev-2", job["id"], "deny", "too late now").status_code == 409
    (recorded,) = gw.events("review.vote")
    assert recorded["reason"] == "district counts, k met" and recorded["decision"] == "approve"
    got = gw.client.get(f"/v1/jobs/{job['id']}/outputs/districts.csv", headers=gw.h("op-1"))
    assert got.status_code == 200 and got.content.decode() == file["content"]
    assert gw.client.get("/v1/reviews", headers=gw.h("rev-1")).json() == []


def test_blocked_job_needs_two_different_reviewers_and_never_its_submitter(
    fake_gw: Gateway,
) -> None:
    gw = fake_gw
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


def test_a_deny_ends_the_review(fake_gw: Gateway) -> None:
    gw = fake_gw
    gw.grant(city_grant("g-city", "op-1"))
    job = gw.submit("op-1", "g-city", "python", PY_BLOCKED)
    assert gw.wait("op-1", job["id"])["state"] == "blocked"
    assert vote(gw, "rev-1", job["id"], "approve").status_code == 201
    denied = vote(gw, "rev-2", job["id"], "deny", "raw rows of residents")
    assert denied.status_code == 201 and denied.json()["job_state"] == "denied"
    assert vote(gw, "op-2", job["id"], "approve").status_code == 403  # not a reviewer
    assert gw.client.get(f"/v1/jobs/{job['id']}/outputs", headers=gw.h("op-1")).status_code == 409
    assert gw.client.get("/v1/reviews", headers=gw.h("rev-1")).json() == []


def test_a_released_job_never_enters_the_queue(fake_gw: Gateway) -> None:
    gw = fake_gw
    gw.grant(city_grant("g-city", "op-1"))
    job = gw.submit("op-1", "g-city", "sql", SQL_RELEASED)
    assert gw.wait("op-1", job["id"])["state"] == "released"
    assert gw.client.get("/v1/reviews", headers=gw.h("rev-1")).json() == []
    assert vote(gw, "rev-1", job["id"], "approve").status_code == 409
