"""Metering over the seeded year (001 authorized-operation art. 34; 004 art. 28): the
totals per operator, grant, product and job count the jobs the year ran, in the months
they ran, the encrypted calls and the review time; an operator reads only its own."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.support.seeded_year import REVIEW_MINUTES, SeededYear

KEYS = ("jobs", "cpu_seconds", "memory_peak_bytes", "rows_scanned", "bytes_scanned",
        "output_bytes", "sandbox_seconds", "review_minutes", "he_calls", "he_eval_ms")  # fmt: skip


def metering(y: SeededYear, who: str, by: str, period: str | None = None, **more: str) -> Any:
    params = {"period": period or y.period, "by": by, **more}
    got = y.get(who, "/v1/metering", **params)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["by"] == by and set(KEYS) <= set(body["totals"])
    return body


def rows(body: Any) -> dict[str, dict[str, Any]]:
    return {r["key"]: r for r in body["rows"]}


def test_totals_per_operator_count_the_years_jobs_calls_and_reviews(year: SeededYear) -> None:
    e = year.expected
    body = metering(year, "auditor-1", "operator")
    per = rows(body)
    assert {k: r["jobs"] for k, r in per.items()} == dict(e.jobs_by("operator"))
    assert body["totals"]["jobs"] == len(e.jobs)
    assert per["op-1"]["he_calls"] == len(e.he_calls) and per["op-2"]["he_calls"] == 0
    assert per["op-1"]["he_eval_ms"] > 0
    reviewed = sum(j.reviewed is not None for j in e.jobs)
    assert per["op-1"]["review_minutes"] == REVIEW_MINUTES * reviewed
    for r in per.values():
        assert r["sandbox_seconds"] > 0 and r["output_bytes"] > 0 and r["rows_scanned"] > 0
    for key in KEYS:
        if key != "memory_peak_bytes":  # a maximum, the others sums (rounded to 0.001)
            total = sum(r[key] for r in per.values())
            assert body["totals"][key] == pytest.approx(total, abs=0.001 * len(per)), key


def test_totals_per_grant_job_and_product(year: SeededYear) -> None:
    e = year.expected
    by_grant = {k: r["jobs"] for k, r in rows(metering(year, "admin-1", "grant")).items()}
    expected = {e.grants[k].id: n for k, n in e.jobs_by("grant").items()}
    assert {k: n for k, n in by_grant.items() if n} == expected
    by_job = rows(metering(year, "admin-1", "job"))
    assert sorted(by_job) == sorted(j.id for j in e.jobs)
    assert all(r["jobs"] == 1 for r in by_job.values())
    by_product = rows(metering(year, "admin-1", "product"))
    for p in e.products.values():
        r = by_product[p.id]
        if p.source.startswith("job-"):
            assert (r["jobs"], r["he_calls"]) == (1, 0), (p.name, r)
        else:
            assert (r["jobs"], r["he_calls"]) == (0, len(e.he_calls)), (p.name, r)


def test_a_month_counts_the_jobs_that_finished_in_it(year: SeededYear) -> None:
    e = year.expected
    for month in (1, 3, 7, 12):
        per = rows(metering(year, "auditor-1", "operator", f"{e.year}-{month:02d}"))
        want = Counter(j.operator for j in e.jobs if j.month == month)
        assert {k: r["jobs"] for k, r in per.items() if r["jobs"]} == dict(want), month
    q3 = metering(year, "auditor-1", "operator", f"{e.year}-Q3")["totals"]
    assert q3["jobs"] == sum(j.month in (7, 8, 9) for j in e.jobs)
    assert q3["he_calls"] == sum(m in (7, 8, 9) for m in e.he_calls)


def test_an_operator_reads_only_its_own_usage(year: SeededYear) -> None:
    e = year.expected
    own = rows(metering(year, "op-2", "operator"))
    assert list(own) == ["op-2"] and own["op-2"]["jobs"] == e.jobs_by("operator")["op-2"]
    narrowed = year.get("op-2", "/v1/metering", period=year.period, by="job", operator="op-1")
    assert narrowed.status_code == 403 or not any(
        r["key"] in {j.id for j in e.jobs if j.operator == "op-1"} for r in narrowed.json()["rows"]
    )
    for who in ("civil-1", "rev-1", "bank-1"):
        refused = year.get(who, "/v1/metering", period=year.period, by="operator")
        assert refused.status_code == 403, who
    bad = year.get("auditor-1", "/v1/metering", period="2025-13", by="operator")
    assert bad.status_code == 422


def test_the_job_shows_what_it_used(year: SeededYear) -> None:
    job = next(j for j in year.expected.jobs if j.kind == "sql")
    shown = year.get(job.operator, f"/v1/jobs/{job.id}").json()
    assert shown["rows_scanned"] > 0 and shown["output_bytes"] > 0
    assert shown["cpu_seconds"] is not None and shown["cpu_seconds"] >= 0
