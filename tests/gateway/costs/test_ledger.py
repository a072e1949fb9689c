"""The cost ledger over REST (001 authorized-operation art. 34; 004 art. 28; 003: costs
and revenue per product, separately), on SQLite and PostgreSQL.

Each line is the metering's figure (``GET /v1/metering``) times the settings' unit rate;
storage is the product's released bytes for the days of the period it was registered;
usage of the grant that made no product is listed per grant, not lost; revenue is the
period's charges; an operator reads its own ledger only.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.periods import Period
from tests.support.he_world import World
from tests.support.pricing_world import (
    INDUSTRY,
    RATES,
    charge,
    fen,
    get,
    metered_job,
    open_world,
    registered,
)
from tests.support.product_registration import MovableClock

START = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # a Monday, 10:00 CST
GB = 10**9


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(START)


@pytest.fixture
def world(store_url: str, tmp_path: Path, clock: MovableClock) -> Iterator[World]:
    yield from open_world(store_url, tmp_path, clock)


def month(w: World, clock: MovableClock) -> str:
    """March 2026: a product of one job, a job that made no product, two sales."""
    sold = metered_job(w, clock, cpu_seconds=1234.5, bytes_scanned=3 * GB + 1,
                       output_bytes=2 * GB)  # fmt: skip
    product = registered(w, job=sold, **INDUSTRY, price_class="guided",
                         price_basis={"tariff_item": "district-report"})  # fmt: skip
    clock.advance(days=3)
    metered_job(w, clock, cpu_seconds=300.25, bytes_scanned=GB // 2)  # never registered
    assert charge(w, "op-1", product["id"], quantity=2, reference="M1").status_code == 201
    assert charge(w, "op-1", product["id"], payer="bank-2", reference="M2").status_code == 201
    clock.now = datetime(2026, 4, 15, 2, 0, tzinfo=UTC)  # the books of March, read in April
    return str(product["id"])


def lines(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {x["item"]: x for x in entry["lines"]}


def test_ledger_lines_are_the_metering_times_the_rates(world: World, clock: MovableClock) -> None:
    w = world
    pid = month(w, clock)
    ledger = get(w, "op-1", "/v1/costs", period="2026-03")
    assert ledger.status_code == 200, ledger.text
    body = ledger.json()
    assert body["period"] == "2026-03" and body["rates"] == RATES

    metered = get(w, "op-1", "/v1/metering", period="2026-03", by="product").json()["rows"]
    use = next(r for r in metered if r["key"] == pid)
    (product,) = body["products"]
    got = lines(product)
    assert got["cpu"]["quantity"] == pytest.approx(use["cpu_seconds"])
    assert got["cpu"]["amount_fen"] == fen(use["cpu_seconds"], RATES["cpu_second_fen"]) == 1235
    assert got["scan"]["quantity"] == pytest.approx(use["bytes_scanned"] / GB)
    assert got["scan"]["amount_fen"] == fen(use["bytes_scanned"] / GB, 100) == 300
    assert got["review"]["amount_fen"] == fen(use["review_minutes"] / 60, 15_000)
    assert got["he_eval"]["amount_fen"] == fen(use["he_eval_ms"] / 1000, 1)
    march = Period.parse("2026-03")
    days = (march.end - START).total_seconds() / 86_400  # registered at START, to March's end
    assert got["storage"]["quantity"] == pytest.approx(2 * days)
    assert got["storage"]["amount_fen"] == fen(2 * days, RATES["storage_gb_day_fen"])
    assert product["cost_fen"] == sum(x["amount_fen"] for x in product["lines"])
    assert product["revenue_fen"] == 3 * 80_000
    assert product["operator"] == "op-1" and product["category"] == "industry_development"

    grants = get(w, "op-1", "/v1/metering", period="2026-03", by="grant").json()["rows"]
    (grant_use,) = grants
    (left,) = body["unattributed"]
    assert left["grant_id"] == w.grant_id == grant_use["key"]
    rest = lines(left)
    cpu_left = grant_use["cpu_seconds"] - use["cpu_seconds"]
    assert rest["cpu"]["quantity"] == pytest.approx(cpu_left) and cpu_left == pytest.approx(300.25)
    assert rest["cpu"]["amount_fen"] == fen(cpu_left, 1) == 300
    assert rest["scan"]["amount_fen"] == fen(0.5, 100) == 50
    assert left["cost_fen"] == sum(x["amount_fen"] for x in left["lines"])

    charged = get(w, "op-1", "/v1/charges", period="2026-03").json()["total_fen"]
    assert body["totals"] == {
        "cost_fen": product["cost_fen"] + left["cost_fen"], "revenue_fen": charged,
    }  # fmt: skip


def test_a_period_without_the_product_has_no_usage_but_storage(
    world: World, clock: MovableClock
) -> None:
    w = world
    pid = month(w, clock)
    april = get(w, "admin-1", "/v1/costs", period="2026-04").json()
    (product,) = april["products"]
    got = lines(product)
    assert product["product_id"] == pid and product["revenue_fen"] == 0
    assert got["cpu"]["amount_fen"] == 0 and april["unattributed"] == []
    # 1 April 00:00 CST to now (15 April 10:00 CST): 14 days and 10 hours, 2 GB.
    assert got["storage"]["quantity"] == pytest.approx(2 * (14 + 10 / 24))


def test_an_operator_reads_its_own_ledger_only(world: World, clock: MovableClock) -> None:
    w = world
    pid = month(w, clock)
    assert get(w, "op-2", "/v1/costs", period="2026-03", operator="op-1").status_code == 403
    assert get(w, "op-2", "/v1/costs", period="2026-03", product=pid).status_code == 403
    own = get(w, "op-2", "/v1/costs", period="2026-03").json()
    assert own["products"] == [] and own["unattributed"] == []
    one = get(w, "auditor-1", "/v1/costs", period="2026-03", product=pid).json()
    assert [p["product_id"] for p in one["products"]] == [pid] and one["unattributed"] == []
    assert get(w, "bank-1", "/v1/costs", period="2026-03").status_code == 403
    assert get(w, "op-1", "/v1/costs", period="2026-02-30..2026-03-01").status_code == 422


def test_usage_of_a_job_registered_after_the_period_stays_in_the_period(
    world: World, clock: MovableClock
) -> None:
    w = world
    job = metered_job(w, clock, cpu_seconds=700)  # ends in March
    clock.now = datetime(2026, 4, 3, 2, 0, tzinfo=UTC)
    product = registered(w, job=job, **INDUSTRY, price_class="free")  # registered in April
    march = get(w, "op-1", "/v1/costs", period="2026-03").json()
    (row,) = march["products"]
    assert row["product_id"] == product["id"]
    assert lines(row)["cpu"]["amount_fen"] == 700 and lines(row)["storage"]["quantity"] == 0
    assert march["unattributed"] == []  # carried by the product, not lost, not twice
    assert march["totals"]["cost_fen"] == 700
