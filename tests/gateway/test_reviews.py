"""Security review in real containers: the ledger's last word on an approval (a job
it refuses ends ``refused``, out of the queue).

The review rulebook itself (the queue, the evidence, votes with a reason, one
approval for held jobs, two different reviewers for blocked ones, no self-review,
deny ends it) runs without Docker in ``tests/gateway/reviews/test_rulebook.py``.
Jobs here run through the real pipeline on runc; the store runs on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import duckdb
import pytest

from tests.support.city import City, city_grant
from tests.support.gateway_jobs import Gateway, vote

pytestmark = pytest.mark.docker

# The fixtures ``runc``, ``city`` (one per module) and ``gw`` (a gateway with its
# worker per test) come from tests/gateway/conftest.py.


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
