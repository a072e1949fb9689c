"""The reports over the seeded year (001 authorized-operation art. 24-25, 35-36; 004 art.
29-30; 003): the operator's annual operating report, each provider's usage report and
the implementing agency's disclosure say what the year did (the seed's own record);
their PDFs render to pages (PNGs under var/test-artifacts/year/); each generation is
audited."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.support.pdf_pages import pdf_to_pngs
from tests.support.seeded_year import ORG_NAME, SeededYear, csv_rows


def report(y: SeededYear, path: str, fmt: str = "json", who: str = "auditor-1", **more: str) -> Any:
    got = y.get(who, f"/v1/reports/{path}", period=y.period, format=fmt, **more)
    assert got.status_code == 200, (path, fmt, got.text[:300])
    return got


def test_the_operators_annual_report(year: SeededYear) -> None:
    e = year.expected
    own = [j for j in e.jobs if j.operator == "op-1"]
    body = report(year, "operator/op-1").json()
    assert (body["kind"], body["subject"], body["period"]["label"]) == ("operator", "op-1", "2025")
    summary, sections = body["summary"], body["sections"]
    assert summary["jobs"] == len(own) and summary["dummy_runs"] == 0
    assert summary["released"] == sum(j.state == "released" for j in own)
    assert summary["products_registered"] == len(e.products)
    by_month = Counter((f"{e.year}-{j.month:02d}", j.kind) for j in own)
    assert {(r["month"], r["kind"]): r["jobs"] for r in sections["jobs_by_month"]} == by_month
    ended = Counter((j.kind, j.state) for j in own)
    assert {(r["kind"], r["state"]): r["jobs"] for r in sections["jobs_by_outcome"]} == ended
    used = Counter(j.dataset for j in own)
    released = Counter(j.dataset for j in own if j.state == "released")
    assert {r["dataset"]: (r["jobs"], r["released"]) for r in sections["datasets"]} == {
        d: (n, released[d]) for d, n in used.items()
    }
    reviews = {r["item"]: r["value"] for r in sections["reviews"]}
    decided = Counter(j.reviewed for j in own if j.reviewed)
    assert (reviews["held"], reviews["approved"], reviews["denied"], reviews["votes"]) == (
        sum(decided.values()), decided["approve"], decided["deny"], sum(decided.values()),
    )  # fmt: skip
    assert reviews["review_hours_median"] == 48  # held on the 10th, decided on the 12th
    security = {r["item"]: r["value"] for r in sections["security"]}
    assert security["access_denied"] == sum(r.operator == "op-1" for r in e.refusals)
    assert (security["stops_placed"], security["stops_lifted"]) == (1, 1)  # the emergency stop
    assert e.incidents[1] in {r["incident"] for r in sections["incidents"]}
    assert {r["product"] for r in sections["products"]} == {p.id for p in e.products.values()}
    rows = csv_rows(report(year, "operator/op-1", "csv").content.decode("utf-8-sig"))
    assert sum(int(r["jobs"]) for r in rows if r["section"] == "jobs_by_month") == len(own)
    html = report(year, "operator/op-1", "html", lang="en").text
    assert 'lang="en"' in html and "<svg" in html and "<caption" in html
    pdf_to_pngs(report(year, "operator/op-1", "pdf").content, "operator-op-1")
    assert report(year, "operator/op-1", who="op-1").json()["summary"] == summary
    assert year.get("op-2", "/v1/reports/operator/op-1", period=year.period).status_code == 403


def test_each_providers_usage_report(year: SeededYear) -> None:
    e = year.expected
    body = report(year, "provider/civil-1").json()
    usage = {(r["dataset"], r["operator"], r["grant"]): r for r in body["sections"]["usage"]}
    mine = [j for j in e.jobs if e.datasets[j.dataset] == "civil-1"]
    jobs = Counter((j.dataset, j.operator, e.grants[j.grant].id) for j in mine)
    assert {k: r["jobs"] for k, r in usage.items()} == jobs
    released = Counter((j.dataset, j.operator, e.grants[j.grant].id) for j in mine
                       if j.state == "released")  # fmt: skip
    assert {k: r["released"] for k, r in usage.items()} == released
    residents = usage[("residents", "op-1", e.grants["residents"].id)]
    made = {p.name for p in e.products.values() if p.dataset == "residents"}
    assert set(residents["products"].split("; ")) == made
    assert body["summary"]["operators"] == 2 and body["summary"]["jobs"] == len(mine)
    tax = report(year, "provider/tax-1", who="tax-1").json()
    assert tax["summary"]["jobs"] == sum(e.datasets[j.dataset] == "tax-1" for j in e.jobs)
    assert year.get("tax-1", "/v1/reports/provider/civil-1", period=year.period).status_code == 403
    pdf_to_pngs(report(year, "provider/civil-1", "pdf", lang="en").content, "provider-civil-1")


def test_the_implementing_agencys_disclosure(year: SeededYear) -> None:
    e = year.expected
    body = report(year, "disclosure").json()
    classes = Counter(p.category for p in e.products.values())
    assert body["summary"]["products"] == len(e.products)
    assert body["summary"]["products_public_governance"] == classes["public_governance"]
    assert body["summary"]["products_industry_development"] == classes["industry_development"]
    assert body["summary"]["grants"] == len(e.grants)
    assert body["summary"]["grantees"] == len({ORG_NAME[g.operator] for g in e.grants.values()})
    assert body["summary"]["jobs"] == len(e.jobs)
    assert body["summary"]["released"] == sum(j.state == "released" for j in e.jobs)
    listed = {r["name"]: r["price_class"] for r in body["sections"]["product_list"]}
    assert listed == {p.name: p.price_class for p in e.products.values()}
    pages = pdf_to_pngs(report(year, "disclosure", "pdf").content, "disclosure")
    assert len(pages) >= 2


def test_every_generation_is_audited(year: SeededYear) -> None:
    before = year.get("auditor-1", "/v1/audit/events").text.count('"type":"report.generated"')
    report(year, "disclosure", "csv")
    report(year, "operator/op-1", "json", who="op-1")
    after = year.get("auditor-1", "/v1/audit/events").text
    assert after.count('"type":"report.generated"') == before + 2
    assert '"subject":"op-1"' in after


def test_no_report_names_a_data_subject(year: SeededYear) -> None:
    e = year.expected
    bodies = [
        report(year, path, fmt).text
        for path in ("operator/op-1", "operator/op-2", "provider/civil-1", "provider/tax-1",
                     "disclosure")
        for fmt in ("json", "csv", "html")
    ]  # fmt: skip
    for value in e.identifying:
        assert not any(value in body for body in bodies), value
