"""The job worker's stage histograms and the job gauges after jobs ran (fake backend).

Jobs run through the app's own worker (``start_worker``, as deployed) on the
fake backend: an SQL job released, a Python job held, and code the static
checks refuse at submission (a 422 counted as a refusal; nothing queued). The
histograms count one run and one check per job that reached the sandbox, one
release step per job the worker ended, each by kind or final state, and the
run histogram's sum is the run seconds the jobs' records show.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.support.gateway_jobs import PY_HELD, SQL_RELEASED, Gateway, residents_grant
from tests.support.metrics import scrape, value


def test_stage_histograms_and_job_gauges_match_what_ran(fake_gw: Gateway) -> None:
    g = fake_gw
    g.grant(residents_grant("g-1", "op-1"))
    released = g.submit("op-1", "g-1", "sql", SQL_RELEASED)
    held = g.submit("op-1", "g-1", "python", PY_HELD)
    refused = g.client.post(
        "/v1/jobs",
        headers=g.h("op-1"),
        json={"grant": "g-1", "kind": "sql", "code": "SELECT * FROM residents"},
    )
    assert refused.status_code == 422, refused.text
    ran = [g.wait("op-1", released["id"]), g.wait("op-1", held["id"])]
    assert [j["state"] for j in ran] == ["released", "held"]

    families = scrape(g.client, g.h("auditor-1"))
    for job in ran:
        kind, state = job["kind"], job["state"]
        assert value(families, "dsr_job_run_seconds_count", kind=kind) == 1
        assert value(families, "dsr_job_run_seconds_sum", kind=kind) == pytest.approx(
            job["run_seconds"]
        )
        assert value(families, "dsr_job_check_seconds_count", kind=kind) == 1
        assert value(families, "dsr_job_release_seconds_count", state=state) == 1
    ended = sum(s.value for s in families["dsr_job_release_seconds"].samples
                if s.name.endswith("_count"))  # fmt: skip
    assert ended == len(ran)

    jobs = g.client.get("/v1/jobs", headers=g.h("op-1")).json()
    shown = {(s.labels["state"], s.labels["outcome"]): s.value
             for s in families["dsr_jobs"].samples}  # fmt: skip
    assert shown == Counter((j["state"], j["outcome"]) for j in jobs)
    assert value(families, "dsr_jobs_queued", operator="op-1") == 0
    assert value(families, "dsr_refusals_total", status="422", reason="CodeRejected") == 1
    # The fake backend is no Docker engine: no container gauge rather than a wrong zero.
    assert "dsr_containers_running" not in families
