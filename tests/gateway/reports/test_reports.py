"""The reports over REST on a small history (``tests.support.reports_world``): what each
report counts, who may read which (403 for another subject's, 404 for no such subject,
422 for a bad period), every generation audited with the digest of the bytes served,
and every number of the operator's and the provider's report recounted from the audit
export alone by a counter of the test's own."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.support.access import REPORTS, SAMPLE_PATH
from tests.support.reports_world import History

ROLES = {"operator": "operator-1", "provider": "provider-1", "admin": "admin-1",
         "auditor": "auditor-1", "reviewer": "reviewer-1", "consumer": "consumer-1"}  # fmt: skip
OPERATOR, PROVIDER = "/v1/reports/operator/{}", "/v1/reports/provider/{}"


def report(h: History, url: str, who: str = "auditor-1", **params: Any) -> dict[str, Any]:
    answer = h.get(who, url, period=params.pop("period", h.period), **params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def rows(body: dict[str, Any], section: str, *columns: str) -> list[tuple[Any, ...]]:
    return [tuple(r[c] for c in columns) for r in body["sections"][section]]


def test_the_operator_report_counts_what_the_operator_did(history: History) -> None:
    h = history
    mine = report(h, OPERATOR.format("operator-1"))
    assert mine["summary"] | {"refusals": 0} == {
        "jobs": 4, "dummy_runs": 1, "released": 3, "datasets": 1, "reviews_held": 2,
        "products_registered": 1, "products_changed": 0, "products_ended": 0,
        "incidents": 1, "refusals": 0,
    }  # fmt: skip
    assert mine["summary"]["refusals"] >= 2  # the job outside the grant, the job peeked at
    assert rows(mine, "jobs_by_outcome", "kind", "state", "jobs") == [
        ("python", "denied", 1), ("python", "released", 1), ("sql", "released", 2),
    ]  # fmt: skip
    assert rows(mine, "datasets", "dataset", "jobs", "released") == [("residents", 4, 3)]
    reviews = dict(rows(mine, "reviews", "item", "value"))
    assert {k: reviews[k] for k in ("held", "approved", "denied", "refused", "votes")} == {
        "held": 2, "approved": 1, "denied": 1, "refused": 0, "votes": 2,
    }  # fmt: skip
    assert reviews["review_hours_max"] >= reviews["review_hours_median"] >= 0
    assert rows(mine, "products", "product", "name", "change") == [
        (h.expected["product"], h.expected["product_name"], "first_registration")
    ]
    assert rows(mine, "incidents", "incident", "kind", "severity", "change") == [
        (h.expected["incident"], "major_risk", "high", "open")
    ]
    security = dict(rows(mine, "security", "item", "value"))
    assert security["stops_placed"] == security["stops_lifted"] == 2  # provider's, emergency
    assert security["blocked_outputs"] == 0
    theirs = report(h, OPERATOR.format("operator-2"))
    assert theirs["summary"]["jobs"] == 1 and theirs["summary"]["products_registered"] == 0
    assert theirs["summary"]["incidents"] == 1
    assert rows(theirs, "security", "item", "value")[3] == ("stops_placed", 1)


def test_a_period_without_the_history_counts_nothing(history: History) -> None:
    empty = report(history, OPERATOR.format("operator-1"), period="2025")
    assert set(empty["summary"].values()) == {0}
    assert all(not rows for name, rows in empty["sections"].items() if name not in (
        "reviews", "security"))  # fmt: skip


def test_the_provider_report_says_who_used_its_data(history: History) -> None:
    h = history
    usage = report(h, PROVIDER.format("provider-1"), who="provider-1")
    assert rows(usage, "usage", "dataset", "operator", "grant", "jobs", "released", "products") == [
        ("residents", "operator-1", h.grants["operator-1"], 4, 3, h.expected["product_name"]),
        ("residents", "operator-2", h.grants["operator-2"], 1, 1, ""),
    ]  # fmt: skip
    assert sum(n for *_, n in rows(usage, "usage_by_month", "month", "dataset", "jobs")) == 5
    unused = report(h, PROVIDER.format("provider-2"), who="provider-2")
    assert unused["summary"]["datasets"] == 1 and unused["summary"]["jobs"] == 0
    assert unused["sections"]["usage"] == []


def test_the_disclosure_lists_grantees_products_and_usage(history: History) -> None:
    h = history
    body = report(h, "/v1/reports/disclosure", who="admin-1")
    grants = {r["grant"]: r for r in body["sections"]["grantees"]}
    assert set(grants) == set(h.grants.values())
    assert grants[h.grants["operator-1"]]["scope"].startswith("residents: ")
    assert [r["name"] for r in body["sections"]["product_list"]] == [h.expected["product_name"]]
    assert body["summary"]["products_public_governance"] == 1


def _events(h: History) -> list[dict[str, Any]]:
    answer = h.client.get("/v1/audit/events", headers=h.h("auditor-1"))
    assert answer.status_code == 200
    return [json.loads(line) for line in answer.text.splitlines()]


def test_every_number_is_recounted_from_the_audit_export(history: History) -> None:
    """An independent count over ``GET /v1/audit/events`` gives the reports' numbers."""
    h = history
    mine = report(h, OPERATOR.format("operator-1"))
    usage = report(h, PROVIDER.format("provider-1"))
    start = datetime.fromisoformat(mine["period"]["start"])
    end = datetime.fromisoformat(mine["period"]["end"])
    everything = _events(h)
    submitted = {e["detail"]["job"]: e for e in everything if e["type"] == "job.submitted"}
    period = [e for e in everything if start <= datetime.fromisoformat(e["at"]) < end]

    def job(e: dict[str, Any]) -> dict[str, Any] | None:
        return submitted.get(e["detail"].get("job"))

    def of(e: dict[str, Any], operator: str = "operator-1") -> bool:
        j = job(e)
        return j is not None and j["actor"] == operator and not j["detail"]["dummy"]

    cst = ZoneInfo("Asia/Shanghai")
    by_month = Counter(
        (datetime.fromisoformat(e["at"]).astimezone(cst).strftime("%Y-%m"), e["detail"]["kind"])
        for e in period if e["type"] == "job.submitted" and of(e)
    )  # fmt: skip
    assert rows(mine, "jobs_by_month", "month", "kind", "jobs") == sorted(
        (m, k, n) for (m, k), n in by_month.items()
    )
    ended = Counter(
        (job(e)["detail"]["kind"], e["detail"]["to"])  # type: ignore[index]
        for e in period
        if e["type"] == "job.state" and of(e) and e["detail"]["to"] not in
        ("queued", "running", "checking", "held", "blocked")
    )  # fmt: skip
    assert rows(mine, "jobs_by_outcome", "kind", "state", "jobs") == sorted(
        (k, s, n) for (k, s), n in ended.items()
    )
    moved = [e for e in period if e["type"] == "job.state" and of(e)]
    reviews = dict(rows(mine, "reviews", "item", "value"))
    assert reviews["held"] == sum(e["detail"]["to"] in ("held", "blocked") for e in moved)
    ends = Counter(e["detail"]["to"] for e in period if e["type"] == "review.state" and of(e))
    assert (reviews["approved"], reviews["denied"]) == (ends["approved"], ends["denied"])
    assert reviews["votes"] == sum(e["type"] == "review.vote" and of(e) for e in period)
    denied = [e for e in period if e["type"] == "access.denied" and e["actor"] == "operator-1"]
    security = dict(rows(mine, "security", "item", "value"))
    assert security["access_denied"] == sum(
        e["detail"]["count"] - (0 if e["detail"]["first"] else 1) for e in denied
    )
    assert security["static_refusals"] == sum(
        e["type"] == "job.refused" and e["actor"] == "operator-1" for e in period
    )
    holds = [e for e in period
             if e["type"] == "grant.hold" and e["grant_id"] == h.grants["operator-1"]]  # fmt: skip
    assert security["stops_placed"] == sum(e["detail"]["action"] == "placed" for e in holds)
    registered = [e for e in period if e["type"] == "product.registration"
                  and e["detail"]["to"] == "registered"
                  and e["grant_id"] == h.grants["operator-1"]]  # fmt: skip
    assert mine["summary"]["products_registered"] == len(registered) == 1
    # The provider's usage, per dataset, operator and grant.
    used, released = Counter[tuple[str, str, str]](), Counter[tuple[str, str, str]]()
    for e in period:
        j = job(e)
        if j is None or j["detail"]["dummy"] or "residents" not in j["datasets"]:
            continue
        key = ("residents", j["actor"], j["grant_id"])
        used[key] += e["type"] == "job.submitted"
        released[key] += e["type"] == "job.state" and e["detail"]["to"] == "released"
    assert rows(usage, "usage", "dataset", "operator", "grant", "jobs", "released") == [
        (*k, used[k], released[k]) for k in sorted(used)
    ]


def test_every_generation_is_audited_with_the_digest_of_its_bytes(history: History) -> None:
    h = history
    made = []
    for fmt in ("json", "csv", "html"):
        answer = h.get("operator-1", OPERATOR.format("operator-1"), period=h.period, format=fmt)
        assert answer.status_code == 200
        made.append((fmt, hashlib.sha256(answer.content).hexdigest()))
    refused = h.get("operator-2", OPERATOR.format("operator-1"), period=h.period)
    assert refused.status_code == 403
    logged = [e for e in _events(h) if e["type"] == "report.generated"]
    mine = [e for e in logged if e["actor"] == "operator-1"][-3:]
    assert [(e["detail"]["format"], e["detail"]["sha256"]) for e in mine] == made
    assert {(e["detail"]["kind"], e["detail"]["subject"], e["detail"]["period"]) for e in mine} \
        == {("operator", "operator-1", h.period)}  # fmt: skip
    assert not any(e["actor"] == "operator-2" for e in logged)


@pytest.mark.parametrize(("method", "path"), sorted(REPORTS))
def test_access_matrix(history: History, method: str, path: str) -> None:
    h = history
    allowed = REPORTS[(method, path)]
    url = path.format_map(SAMPLE_PATH)
    for role, who in ROLES.items():
        answer = h.client.request(method, url, headers=h.h(who), params={"period": h.period})
        if role in allowed:
            assert answer.status_code == 200, (role, answer.text)
        else:
            assert answer.status_code == 403 and "needs the role" in answer.text, (
                role,
                answer.text,
            )
    assert h.client.request(method, url, params={"period": h.period}).status_code == 401


@pytest.mark.parametrize(
    ("who", "url", "params", "status", "says"),
    [
        ("operator-2", OPERATOR.format("operator-1"), {}, 403, "only operator-1 itself"),
        ("provider-2", PROVIDER.format("provider-1"), {}, 403, "only provider-1 itself"),
        ("operator-1", OPERATOR.format("nobody-1"), {}, 403, "only nobody-1 itself"),
        ("admin-1", OPERATOR.format("nobody-1"), {}, 404, "no operator named 'nobody-1'"),
        ("auditor-1", OPERATOR.format("provider-1"), {}, 404, "no operator named"),
        ("auditor-1", PROVIDER.format("operator-1"), {}, 404, "no provider named"),
        ("admin-1", "/v1/reports/disclosure", {"period": "2025-13"}, 422, "not a valid period"),
        ("admin-1", "/v1/reports/disclosure", {"period": "last year"}, 422, "is not a period"),
        ("operator-1", OPERATOR.format("operator-1"), {"format": "docx"}, 422, "format"),
        ("operator-1", OPERATOR.format("operator-1"), {"lang": "fr"}, 422, "lang"),
    ],
)
def test_refusals(
    history: History, who: str, url: str, params: dict[str, str], status: int, says: str
) -> None:
    answer = history.get(who, url, **({"period": history.period} | params))
    assert answer.status_code == status and says in answer.text, answer.text
