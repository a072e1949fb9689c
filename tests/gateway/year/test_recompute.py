"""The operator's annual report recomputed from an audit export alone (issue 17: the
numbers in a report are reproducible from the audit log): the export
(``GET /v1/audit/events``, what ``dsr audit export`` writes) is read line by line and
the operator's jobs, how they ended, the data used and the reviews are counted with
nothing but the events; the counts equal the report's and the seed's record."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from typing import Any

from gateway.periods import Period
from gateway.workdays import CST
from tests.support.seeded_year import SeededYear

OPERATOR = "op-1"
FINAL = {"released", "failed", "cancelled", "rejected", "completed", "denied", "refused"}


def export(y: SeededYear) -> list[dict[str, Any]]:
    got = y.get("auditor-1", "/v1/audit/events")
    assert got.status_code == 200, got.text
    return [json.loads(line) for line in got.text.splitlines() if line.strip()]


def recount(events: list[dict[str, Any]], period: Period) -> dict[str, Counter[Any]]:
    """The operator's jobs and reviews in ``period``, from the events alone."""
    jobs: dict[str, tuple[str, str, tuple[str, ...]]] = {}  # id -> operator, kind, datasets
    for e in events:
        if e["type"] == "job.submitted" and not e["detail"].get("dummy"):
            jobs[e["detail"]["job"]] = (e["actor"], e["detail"]["kind"], tuple(e["datasets"]))
    out: dict[str, Counter[Any]] = {k: Counter() for k in ("month", "ended", "used", "review")}
    for e in events:
        at = datetime.fromisoformat(e["at"])
        job = jobs.get(str(e["detail"].get("job")))
        if not period.contains(at) or job is None or job[0] != OPERATOR:
            continue
        _, kind, datasets = job
        if e["type"] == "job.submitted":
            out["month"][(at.astimezone(CST).strftime("%Y-%m"), kind)] += 1
            out["used"].update((d, "jobs") for d in datasets)
        elif e["type"] == "job.state" and e["detail"]["to"] in FINAL:
            out["ended"][(kind, e["detail"]["to"])] += 1
            if e["detail"]["to"] == "released":
                out["used"].update((d, "released") for d in datasets)
        elif e["type"] == "job.state" and e["detail"]["to"] in ("held", "blocked"):
            out["review"]["held"] += 1
        elif e["type"] == "review.vote":
            out["review"]["votes"] += 1
            out["review"][{"approve": "approved", "deny": "denied"}[e["detail"]["decision"]]] += 1
    return out


def test_the_operator_report_recomputed_from_the_export(year: SeededYear) -> None:
    period = Period.parse(year.period)
    counted = recount(export(year), period)
    got = year.get("auditor-1", f"/v1/reports/operator/{OPERATOR}", period=year.period)
    assert got.status_code == 200, got.text
    sections = got.json()["sections"]
    assert counted["month"] == Counter(
        {(r["month"], r["kind"]): r["jobs"] for r in sections["jobs_by_month"]}
    )
    assert counted["ended"] == Counter(
        {(r["kind"], r["state"]): r["jobs"] for r in sections["jobs_by_outcome"]}
    )
    used = Counter({(r["dataset"], "jobs"): r["jobs"] for r in sections["datasets"]})
    used.update({(r["dataset"], "released"): r["released"] for r in sections["datasets"]})
    assert counted["used"] == +used
    reviews = {r["item"]: r["value"] for r in sections["reviews"]}
    for item in ("held", "approved", "denied", "votes"):
        assert counted["review"][item] == reviews[item], item
    # And the export agrees with what the seed did, month by month.
    own = [j for j in year.expected.jobs if j.operator == OPERATOR]
    assert counted["month"] == Counter((f"{period.first.year}-{j.month:02d}", j.kind) for j in own)


def test_a_quarter_recomputed_from_the_export(year: SeededYear) -> None:
    quarter = Period.parse(f"{year.period}-Q2")
    counted = recount(export(year), quarter)
    got = year.get("auditor-1", f"/v1/reports/operator/{OPERATOR}", period=quarter.label)
    assert got.status_code == 200, got.text
    summary = got.json()["summary"]
    assert summary["jobs"] == sum(counted["month"].values())
    assert (
        summary["released"]
        == counted["ended"][("sql", "released")] + counted["ended"][("python", "released")]
    )
    assert summary["jobs"] == sum(
        j.operator == OPERATOR and j.month in (4, 5, 6) for j in year.expected.jobs
    )
