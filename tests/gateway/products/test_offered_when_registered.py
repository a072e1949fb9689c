"""A product is offered only once registered (authorized-operation measures 001 art. 9).

An approved privacy-computing product is neither shown to the consumer it lists
nor answers its calls until its registration is granted (409 naming the missing
registration, audited as the call's outcome); registered, it answers; revoked, it
stops again. The registration names the HE product (``he_product``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sandbox.he.client import VerificationKeys
from tests.support.he_products import approve, ask, band, define, register
from tests.support.he_world import World, code
from tests.support.product_registration import MovableClock, first, make_world, post, to_publicity

START = datetime(2026, 4, 1, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def vkeys() -> VerificationKeys:
    return VerificationKeys.make()


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(START)


@pytest.fixture
def world(store_url: str, tmp_path: Path, clock: MovableClock) -> Iterator[World]:
    yield from make_world(store_url, tmp_path, clock)


def test_an_he_product_answers_consumers_only_once_registered(
    world: World, clock: MovableClock, vkeys: VerificationKeys
) -> None:
    w = world
    product = define(w).json()
    assert approve(w, product["id"]).json()["state"] == "approved"
    context = register(w, vkeys.public_context()).json()["id"]

    def offered() -> list[str]:
        shown = w.client.get("/v1/he/products", headers=w.h("bank-1")).json()
        return [p["id"] for p in shown]

    assert offered() == []
    one = w.client.get(f"/v1/he/products/{product['id']}", headers=w.h("bank-1"))
    assert one.status_code == 404
    refused = ask(w, vkeys, product, context, code(5), band(5))
    assert refused.status_code == 409
    assert "no valid registration" in refused.json()["detail"]
    assert w.events("he.call")[-1]["outcome"] == "NotRegistered"

    made = post(w, "op-1", "/registrations", first(he_product=product["id"]))
    assert made.status_code == 201, made.text
    shown = to_publicity(w, made.json()["id"])
    assert ask(w, vkeys, product, context, code(5), band(5)).status_code == 409  # in publicity
    clock.now = datetime.fromisoformat(shown["publicity_ends_at"])
    done = post(w, "admin-1", f"/registrations/{shown['id']}/register")
    assert done.status_code == 200, done.text

    assert offered() == [product["id"]]
    answered = ask(w, vkeys, product, context, code(5), band(5))
    assert answered.status_code == 200, answered.text
    assert vkeys.read_answer(answered.content) is True
    registered = w.client.get(f"/v1/products/{done.json()['product']}", headers=w.h("op-1"))
    assert registered.json()["he_product"] == product["id"]

    revoke = {"reason": "false material", "legal_basis": "registration measures (001) art. 21"}
    path = f"/v1/products/{done.json()['product']}/revoke"
    assert w.client.post(path, headers=w.h("admin-1"), json=revoke).status_code == 200
    assert ask(w, vkeys, product, context, code(5), band(5)).status_code == 409
    assert offered() == []
