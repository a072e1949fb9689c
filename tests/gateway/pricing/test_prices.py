"""Price classes and bases over REST (001 authorized-operation art. 26; 004 art. 23; 002
art. 24), on SQLite and PostgreSQL.

A public-governance product is free or conditionally free, at registration and ever
after (a chargeable class is a 422 at application and when set); an industry product
names its class; a guided price comes from the tariff in settings; a cost-plus margin
is capped and its unit price is reproducible from the stored basis alone; every price
set is audited ``product.price`` with what it was, what it became and who set it; a
product no longer registered keeps its price (409).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.he_world import World
from tests.support.pricing_world import (
    GOVERNANCE,
    INDUSTRY,
    apply,
    fen,
    grant_registration,
    metered_job,
    open_world,
    price,
    registered,
)
from tests.support.product_registration import MovableClock

START = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # a Monday, 10:00 CST


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(START)


@pytest.fixture
def world(store_url: str, tmp_path: Path, clock: MovableClock) -> Iterator[World]:
    yield from open_world(store_url, tmp_path, clock)


def test_a_public_governance_product_is_never_chargeable(world: World, clock: MovableClock) -> None:
    w = world
    job = metered_job(w, clock, cpu_seconds=10)
    guided = {"price_class": "guided", "price_basis": {"tariff_item": "credit-check"}}
    refused = apply(w, job=job, **GOVERNANCE, **guided)
    assert refused.status_code == 422
    assert "public-governance product is free or conditionally free" in refused.text

    product = registered(w, job=job, **GOVERNANCE)  # no class named: free
    assert product["price_class"] == "free" and product["price_basis"] == {}
    assert product["unit_price_fen"] is None
    pid = product["id"]
    for cls, basis in (("guided", {"tariff_item": "credit-check"}),
                       ("cost_plus", {"margin": 0.1, "expected_units": 10})):  # fmt: skip
        answer = price(w, "op-1", pid, cls, **basis)
        assert answer.status_code == 422, answer.text
    assert price(w, "op-1", pid, "conditionally_free").status_code == 422  # no condition
    condition = "registered public-interest bodies, for non-commercial use"
    done = price(w, "op-1", pid, "conditionally_free", condition=condition)
    assert done.status_code == 200, done.text
    assert done.json()["price_basis"] == {"condition": condition}

    prices = w.events("product.price")
    assert [e["actor"] for e in prices] == ["admin-1", "op-1"]
    assert prices[0]["from"] is None  # set with the first registration
    assert prices[0]["to"] == {"class": "free", "basis": {}}
    assert prices[1]["from"] == {"class": "free", "basis": {}}
    assert prices[1]["to"] == {"class": "conditionally_free", "basis": {"condition": condition}}
    assert prices[1]["by"] == "op-1" and prices[1]["product"] == pid


def test_an_industry_product_names_its_class_and_a_guided_price_comes_from_the_tariff(
    world: World, clock: MovableClock
) -> None:
    w = world
    job = metered_job(w, clock, cpu_seconds=10)
    unnamed = apply(w, job=job, **INDUSTRY)
    assert unnamed.status_code == 422 and "names its price class" in unnamed.text
    unknown = apply(w, job=job, **INDUSTRY, price_class="guided",
                    price_basis={"tariff_item": "gold-plated"})  # fmt: skip
    assert unknown.status_code == 422 and "credit-check, district-report" in unknown.text
    forged = apply(w, job=job, **INDUSTRY, price_class="guided",
                   price_basis={"tariff_item": "district-report", "price_fen": 1})  # fmt: skip
    assert forged.status_code == 422  # the price is the tariff's, never the caller's

    product = registered(w, job=job, **INDUSTRY, price_class="guided",
                         price_basis={"tariff_item": "district-report"})  # fmt: skip
    assert product["price_class"] == "guided"
    assert product["price_basis"] == {
        "tariff_item": "district-report", "unit": "copy", "price_fen": 80_000,
    }  # fmt: skip
    assert product["unit_price_fen"] == 80_000
    event = w.events("product.price")[-1]
    assert event["actor"] == "admin-1" and event["registration"]
    assert event["to"]["class"] == "guided"


def test_the_margin_is_capped_and_a_cost_plus_price_is_reproducible(
    world: World, clock: MovableClock
) -> None:
    w = world
    # 1,000 CPU seconds at 1 fen and 5 GB scanned at 100 fen: 1,500 fen to date.
    job = metered_job(w, clock, cpu_seconds=1000, bytes_scanned=5 * 10**9,
                      output_bytes=2 * 10**9)  # fmt: skip
    over = apply(w, job=job, **INDUSTRY, price_class="cost_plus",
                 price_basis={"margin": 0.2, "expected_units": 100})  # fmt: skip
    assert over.status_code == 422 and "cap of 0.15" in over.text
    product = registered(w, job=job, **INDUSTRY, price_class="cost_plus",
                         price_basis={"margin": 0.15, "expected_units": 100})  # fmt: skip
    basis = product["price_basis"]
    assert basis["cost_to_date_fen"] == 1500 and basis["unit_cost_fen"] == 15
    assert basis["unit"] == "copy" and basis["margin"] == 0.15
    assert product["unit_price_fen"] == 17  # 15 x 1.15 = 17.25
    assert product["unit_price_fen"] == int(basis["unit_cost_fen"] * (1 + basis["margin"]) + 0.5)

    # Ten days on, 2 GB of released outputs kept at 2 fen a GB-day add 40 fen to the cost.
    clock.advance(days=10)
    again = price(w, "op-1", product["id"], "cost_plus", margin=0.1, expected_units=31)
    assert again.status_code == 200, again.text
    basis = again.json()["price_basis"]
    assert basis["cost_to_date_fen"] == 1500 + fen(2 * 10, 2)
    assert basis["unit_cost_fen"] == 50  # 1,540 / 31 = 49.68
    assert again.json()["unit_price_fen"] == 55
    assert w.events("product.price")[-1]["from"]["basis"]["unit_cost_fen"] == 15

    over = price(w, "op-1", product["id"], "cost_plus", margin=0.3, expected_units=1)
    assert over.status_code == 422 and "cap" in over.text


def test_who_may_set_a_price_and_when(world: World, clock: MovableClock) -> None:
    w = world
    job = metered_job(w, clock, cpu_seconds=10)
    product = registered(w, job=job, **INDUSTRY, price_class="free")
    pid = product["id"]
    assert price(w, "op-2", pid, "guided", tariff_item="credit-check").status_code == 403
    assert price(w, "admin-1", pid, "guided", tariff_item="credit-check").status_code == 200
    assert w.events("product.price")[-1]["by"] == "admin-1"
    assert price(w, "op-1", "prd-nothing", "free").status_code == 404
    revoke = {"reason": "false material", "legal_basis": "registration measures (001) art. 21"}
    revoked = w.client.post(f"/v1/products/{pid}/revoke", headers=w.h("admin-1"), json=revoke)
    assert revoked.status_code == 200
    late = price(w, "op-1", pid, "free")
    assert late.status_code == 409 and "revoked" in late.text


def test_a_change_registration_carries_a_price(world: World, clock: MovableClock) -> None:
    w = world
    job = metered_job(w, clock, cpu_seconds=10)
    product = registered(w, job=job, **INDUSTRY, price_class="guided",
                         price_basis={"tariff_item": "credit-check"})  # fmt: skip
    change = {"type": "change", "product": product["id"], "statement": "now for public use"}
    unpriced = w.client.post("/v1/products/registrations", headers=w.h("op-1"),
                             json=change | GOVERNANCE)  # fmt: skip
    assert unpriced.status_code == 422 and "free or conditionally_free" in unpriced.text
    made = w.client.post("/v1/products/registrations", headers=w.h("op-1"),
                         json=change | GOVERNANCE | {"price_class": "free"})  # fmt: skip
    assert made.status_code == 201, made.text
    assert made.json()["price_class"] == "free"
    changed = grant_registration(w, made.json()["id"])
    assert changed["category"] == "public_governance" and changed["price_class"] == "free"
    event = w.events("product.price")[-1]
    assert event["from"]["class"] == "guided" and event["to"]["class"] == "free"
