"""Charges over REST (001 authorized-operation art. 26, 34; 004 art. 23, 28), on SQLite
and PostgreSQL.

The platform computes every amount from the product's stored basis (quantity x unit
price); a free or public-governance product is never charged (422); a reference used
twice charges once (409); each charge is audited ``charge.recorded``; an answered call
of a chargeable encrypted product is charged one unit in the call's transaction, a
refused call and a free product's call never; the charges are read by the roles that
may (the operator its products', a consumer what it paid, auditors everything).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.store.tables import charges, he_calls
from sandbox.he.client import VerificationKeys
from tests.support.he_products import approve, ask, band, define, register
from tests.support.he_world import World, code
from tests.support.pricing_world import (
    GOVERNANCE,
    INDUSTRY,
    charge,
    get,
    metered_job,
    open_world,
    price,
    registered,
)
from tests.support.product_registration import MovableClock

START = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # a Monday, 10:00 CST
CREDIT_CHECK = {"price_class": "guided", "price_basis": {"tariff_item": "credit-check"}}


@pytest.fixture(scope="module")
def vkeys() -> VerificationKeys:
    return VerificationKeys.make()


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(START)


@pytest.fixture
def world(store_url: str, tmp_path: Path, clock: MovableClock) -> Iterator[World]:
    yield from open_world(store_url, tmp_path, clock)


def test_amounts_are_the_platforms_and_a_reference_charges_once(
    world: World, clock: MovableClock
) -> None:
    w = world
    product = registered(w, job=metered_job(w, clock, cpu_seconds=5), **INDUSTRY,
                         price_class="guided",
                         price_basis={"tariff_item": "district-report"})  # fmt: skip
    pid = product["id"]
    made = charge(w, "op-1", pid, quantity=3, reference="INV-2026-001")
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["amount_fen"] == 3 * 80_000 and body["unit"] == "copy"
    assert body["price_class"] == "guided" and body["payer"] == "bank-1"
    assert body["source"] == f"sale:{pid}:INV-2026-001"
    assert body["basis"] == product["price_basis"]

    again = charge(w, "op-1", pid, quantity=1, reference="INV-2026-001")
    assert again.status_code == 409 and "charged already" in again.text
    assert charge(w, "op-1", pid, amount_fen=1).status_code == 422  # never the caller's amount
    assert charge(w, "op-1", pid, payer="nobody-here", reference="X").status_code == 422
    assert charge(w, "op-2", pid, reference="X").status_code == 403
    assert charge(w, "op-1", pid, quantity=0, reference="X").status_code == 422

    events = w.events("charge.recorded")
    assert len(events) == 1
    assert events[0]["actor"] == "op-1" and events[0]["amount_fen"] == 240_000
    assert events[0]["unit_price_fen"] == 80_000 and events[0]["product"] == pid

    # A new price applies to new charges only: the recorded one keeps its basis.
    assert price(w, "op-1", pid, "guided", tariff_item="credit-check").status_code == 200
    later = charge(w, "op-1", pid, quantity=2, reference="INV-2026-002").json()
    assert later["amount_fen"] == 500
    with w.app.state.engine.connect() as conn:
        amounts = conn.execute(sa.select(charges.c.amount_fen).order_by(charges.c.at)).scalars()
        assert list(amounts) == [240_000, 500]


def test_free_and_public_governance_products_carry_no_charge(
    world: World, clock: MovableClock
) -> None:
    w = world
    governance = registered(w, job=metered_job(w, clock, cpu_seconds=5), **GOVERNANCE)
    refused = charge(w, "op-1", governance["id"])
    assert refused.status_code == 422 and "carries no charge" in refused.text
    free = registered(w, job=metered_job(w, clock, cpu_seconds=5), **INDUSTRY,
                      price_class="conditionally_free",
                      price_basis={"condition": "for research"})  # fmt: skip
    assert charge(w, "op-1", free["id"]).status_code == 422
    assert w.events("charge.recorded") == []


def test_who_reads_which_charges(world: World, clock: MovableClock) -> None:
    w = world
    product = registered(w, job=metered_job(w, clock, cpu_seconds=5), **INDUSTRY,
                         **CREDIT_CHECK)  # fmt: skip
    pid = product["id"]
    assert charge(w, "op-1", pid, payer="bank-1", quantity=2, reference="A").status_code == 201
    clock.advance(minutes=1)
    assert charge(w, "op-1", pid, payer="bank-2", quantity=5, reference="B").status_code == 201
    clock.advance(days=40)  # April
    assert charge(w, "op-1", pid, payer="bank-1", quantity=1, reference="C").status_code == 201

    def seen(who: str, **params: str) -> tuple[list[str], int]:
        answer = get(w, who, "/v1/charges", **params)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        return [c["source"].rsplit(":", 1)[1] for c in body["charges"]], body["total_fen"]

    assert seen("op-1", period="2026") == (["A", "B", "C"], 8 * 250)
    assert seen("op-1", period="2026-03") == (["A", "B"], 7 * 250)
    assert seen("auditor-1", period="2026-Q2") == (["C"], 250)
    assert seen("admin-1", period="2026", product=pid) == (["A", "B", "C"], 2000)
    assert seen("bank-1", period="2026") == (["A", "C"], 750)  # what it was charged
    assert seen("op-2", period="2026") == ([], 0)
    assert get(w, "op-2", "/v1/charges", period="2026", operator="op-1").status_code == 403
    assert get(w, "provider-1", "/v1/charges", period="2026").status_code == 403
    bad = get(w, "op-1", "/v1/charges", period="2026-13")
    assert bad.status_code == 422 and "not a valid period" in bad.text


def test_an_answered_call_of_a_chargeable_encrypted_product_is_charged_once(
    world: World, vkeys: VerificationKeys
) -> None:
    w = world
    product = define(w).json()
    assert approve(w, product["id"]).json()["state"] == "approved"
    made = registered(w, he_product=product["id"], **INDUSTRY, **CREDIT_CHECK)
    assert made["unit_price_fen"] == 250 and made["price_basis"]["unit"] == "call"
    context = register(w, vkeys.public_context()).json()["id"]

    for i in (5, 6):
        answered = ask(w, vkeys, product, context, code(i), band(i))
        assert answered.status_code == 200, answered.text
    refused = ask(w, vkeys, product, "ctx-nothing", code(7), band(7))
    assert refused.status_code == 404

    with w.app.state.engine.connect() as conn:
        calls = conn.execute(
            sa.select(he_calls.c.id).where(he_calls.c.outcome == "answered").order_by(he_calls.c.id)
        ).scalars()
        sources = [f"he-call:{i}" for i in calls]
    body = get(w, "bank-1", "/v1/charges", period="2026").json()
    assert sorted(c["source"] for c in body["charges"]) == sorted(sources)
    assert len(sources) == 2  # one charge per answered call, at the same (frozen) time
    assert all(c["amount_fen"] == 250 and c["product_id"] == made["id"] for c in body["charges"])
    events = w.events("charge.recorded")
    assert [e["actor"] for e in events] == ["system", "system"]
    assert [e["payer"] for e in events] == ["bank-1", "bank-1"]

    # Made free, the product answers without a charge.
    assert price(w, "op-1", made["id"], "free").status_code == 200
    assert ask(w, vkeys, product, context, code(8), band(8)).status_code == 200
    assert len(w.events("charge.recorded")) == 2
