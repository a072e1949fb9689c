"""Prometheus metrics over the seeded year (for the operations team, not public): the
jobs by state and outcome are the year's jobs, the encrypted calls are counted, the
audit chain's length is the chain's, every run and refusal was observed; no token 401,
a provider 403."""

from __future__ import annotations

from collections import Counter

from prometheus_client.parser import text_string_to_metric_families

from tests.support.seeded_year import SeededYear


def scrape(y: SeededYear) -> dict[str, list[tuple[dict[str, str], float]]]:
    got = y.client.get("/metrics", headers=y.h("admin-1"))
    assert got.status_code == 200, got.text
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(got.text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def test_jobs_by_state_are_the_years_jobs(year: SeededYear) -> None:
    e = year.expected
    samples = scrape(year)
    assert all(name.startswith("dsr_") for name in samples)
    states: Counter[str] = Counter()
    for labels, value in samples["dsr_jobs"]:
        states[labels["state"]] += int(value)
    assert +states == e.jobs_by("state")
    denied = [v for labels, v in samples["dsr_jobs"] if labels["outcome"] == "review_denied"]
    assert sum(denied) == e.jobs_by("reviewed")["deny"]
    calls = samples["dsr_he_calls_total"]
    answered = sum(v for labels, v in calls if labels["outcome"] == "answered")
    assert answered == len(e.he_calls)
    runs = sum(v for _, v in samples["dsr_job_run_seconds_count"])
    assert runs == len(e.jobs)
    (chain,) = samples["dsr_audit_chain_length"]
    assert chain[1] > 300
    refused = {labels["status"]: v for labels, v in samples["dsr_refusals_total"]}
    assert refused.get("403", 0) >= len(e.refusals)
    assert refused.get("401", 0) >= e.failed_signins


def test_only_administrators_and_auditors_scrape(year: SeededYear) -> None:
    assert year.client.get("/metrics").status_code == 401
    assert year.client.get("/metrics", headers=year.h("auditor-1")).status_code == 200
    for who in ("op-1", "civil-1", "rev-1", "bank-1"):
        assert year.client.get("/metrics", headers=year.h(who)).status_code == 403, who
