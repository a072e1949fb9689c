"""Charges, the cost ledger and the operator's statement over the seeded year (001
authorized-operation art. 26, 34; 004 art. 23, 28; 002 art. 24): every charge the year
recorded and only those; revenue per product is what it charged and a free product
none; cost is the sum of its lines; the statement's CSV and PDF say what its JSON says."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.support.pdf_pages import pdf_to_pngs
from tests.support.seeded_year import VERIFY_CALL_FEN, SeededYear, csv_rows


@pytest.fixture(autouse=True)
def charging(year: SeededYear) -> None:
    assert year.expected.prices_applied, "the registrations refused the price fields"
    assert year.expected.charging, "POST /v1/products/{id}/charges did not exist"


def test_the_charges_are_the_ones_the_year_recorded(year: SeededYear) -> None:
    e = year.expected
    got = year.get("auditor-1", "/v1/charges", period=year.period)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["total_fen"] == e.charged_fen() > 0
    by_product = Counter(c["product_id"] for c in body["charges"])
    assert by_product == Counter(e.products[c.product].id for c in e.charges)
    calls = [c for c in body["charges"] if c["source"].startswith("he-call:")]
    assert len(calls) == len(e.he_calls)
    assert {c["amount_fen"] for c in calls} == {VERIFY_CALL_FEN}
    free = {p.id for p in e.products.values() if p.category == "public_governance"}
    assert not free & set(by_product)  # a public-governance product never carries a charge
    assert (("free", 422) in e.refused_charges) and (("guided", 409) in e.refused_charges)
    paid = year.get("bank-1", "/v1/charges", period=year.period).json()
    assert paid["total_fen"] == e.charged_fen()
    june = year.get("auditor-1", "/v1/charges", period=f"{e.year}-06").json()
    assert june["total_fen"] == sum(c.amount_fen for c in e.charges if c.month == 6)


def test_the_ledger_revenue_is_the_charges_and_cost_the_sum_of_its_lines(
    year: SeededYear,
) -> None:
    e = year.expected
    got = year.get("auditor-1", "/v1/costs", period=year.period)
    assert got.status_code == 200, got.text
    ledger = got.json()
    products = {p["product_id"]: p for p in ledger["products"]}
    for key, p in e.products.items():
        line = products[p.id]
        assert line["revenue_fen"] == e.charged_fen(key), p.name
        assert line["cost_fen"] == sum(x["amount_fen"] for x in line["lines"]) > 0, p.name
    assert ledger["totals"]["revenue_fen"] == e.charged_fen()
    costs = sum(p["cost_fen"] for p in ledger["products"])
    costs += sum(u["cost_fen"] for u in ledger["unattributed"])
    assert ledger["totals"]["cost_fen"] == costs
    own = year.get("op-2", "/v1/costs", period=year.period).json()
    assert not {p["product_id"] for p in own["products"]} & set(products)  # op-1's products


def statement(y: SeededYear, fmt: str, who: str = "auditor-1") -> Any:
    got = y.get(who, "/v1/statements/op-1", period=y.period, format=fmt)
    assert got.status_code == 200, (fmt, got.text[:300])
    return got


def test_the_statement_in_json_csv_and_pdf(year: SeededYear) -> None:
    e = year.expected
    body = statement(year, "json").json()
    assert body["operator"] == "op-1" and body["period"] == year.period
    assert body["totals"]["revenue_fen"] == e.charged_fen()
    for p in body["products"]:
        assert p["result_fen"] == p["revenue_fen"] - p["cost_fen"]
    rows = csv_rows(statement(year, "csv").content.decode("utf-8-sig"))
    (total,) = [r for r in rows if r["section"] == "total"]
    assert int(total["cost_fen"]) == body["totals"]["cost_fen"]
    assert int(total["revenue_fen"]) == body["totals"]["revenue_fen"]
    listed = {r["id"]: r for r in rows if r["section"] == "product"}
    assert sorted(listed) == sorted(p["product_id"] for p in body["products"])
    pdf_to_pngs(statement(year, "pdf").content, "statement-op-1")
    assert statement(year, "json", who="op-1").json()["totals"] == body["totals"]
    refused = year.get("op-2", "/v1/statements/op-1", period=year.period, format="json")
    assert refused.status_code == 403
    audited = year.get("auditor-1", "/v1/audit/events").text
    assert audited.count('"kind":"statement"') >= 3


def test_usage_no_product_carries_is_accounted_per_grant(year: SeededYear) -> None:
    e = year.expected
    body = statement_of(year, "op-2")
    assert body["products"] == [] and body["totals"]["revenue_fen"] == 0
    grants = {u["grant_id"]: u["cost_fen"] for u in body["unattributed"]}
    assert set(grants) == {g.id for g in e.grants.values() if g.operator == "op-2"}
    assert all(cost > 0 for cost in grants.values())
    assert body["totals"]["cost_fen"] == sum(grants.values())


def test_the_ledger_prices_the_metered_usage(year: SeededYear) -> None:
    e = year.expected
    ledger = year.get("auditor-1", "/v1/costs", period=year.period).json()
    metered = year.get("auditor-1", "/v1/metering", period=year.period, by="product").json()
    usage = {r["key"]: r for r in metered["rows"]}
    rates = ledger["rates"]
    for p in ledger["products"]:
        lines = {x["item"]: x for x in p["lines"]}
        assert lines["cpu"]["quantity"] == pytest.approx(usage[p["product_id"]]["cpu_seconds"],
                                                         abs=0.001)  # fmt: skip
        assert lines["cpu"]["rate_fen"] == rates["cpu_second_fen"]
        hours = usage[p["product_id"]]["review_minutes"] / 60
        assert lines["review"]["quantity"] == pytest.approx(hours)
    conditional = lines_of(ledger, e.products["conditional"].id)
    assert conditional["review"]["amount_fen"] == rates["review_hour_fen"]  # one hour's review


def statement_of(y: SeededYear, operator: str) -> Any:
    got = y.get("auditor-1", f"/v1/statements/{operator}", period=y.period, format="json")
    assert got.status_code == 200, got.text
    return got.json()


def lines_of(ledger: Any, product_id: str) -> dict[str, Any]:
    (product,) = [p for p in ledger["products"] if p["product_id"] == product_id]
    return {x["item"]: x for x in product["lines"]}
