"""Validity, renewal and revocation of a registration (registration measures 001 art. 15,
16, 21).

A registration is valid until its grant's term ends when that is sooner than three
years. Renewal is refused 61 days before expiry and accepted 60 days before, for
three years from the old expiry (not from the renewal), never past the grant's
term and never under a revoked grant; nor is anything registered under one. A revoked
registration stays revoked.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.grants.terms import years_after
from gateway.products.codes import validity_end
from gateway.store.tables import grants
from tests.support.he_world import World, released_model_job
from tests.support.product_registration import MovableClock, first, make_world, post, to_publicity

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(START)


@pytest.fixture
def world(store_url: str, tmp_path: Path, clock: MovableClock) -> Iterator[World]:
    yield from make_world(store_url, tmp_path, clock, grant_days=400)


def _product(w: World, clock: MovableClock) -> dict[str, Any]:
    rid = post(w, "op-1", "/registrations", first(job=released_model_job(w, {"c": 1.0})))
    shown = to_publicity(w, rid.json()["id"])
    clock.now = datetime.fromisoformat(shown["publicity_ends_at"])
    done = post(w, "admin-1", f"/registrations/{shown['id']}/register").json()
    product: dict[str, Any] = w.client.get(
        f"/v1/products/{done['product']}", headers=w.h("op-1")
    ).json()
    return product


def _grant_until(w: World, until: datetime) -> None:
    """The operating agreement renewed (续约): the grant's term now ends at ``until``."""
    with w.app.state.engine.begin() as conn:
        conn.execute(sa.update(grants).where(grants.c.id == w.grant_id).values(valid_until=until))


def test_validity_is_three_years_or_the_grant_term() -> None:
    code_day = datetime(2028, 2, 29, 3, tzinfo=UTC)
    assert validity_end(code_day, datetime(2040, 1, 1, tzinfo=UTC)) == datetime(
        2031, 2, 28, 3, tzinfo=UTC
    )
    assert validity_end(code_day, datetime(2029, 1, 1, tzinfo=UTC)) == datetime(
        2029, 1, 1, tzinfo=UTC
    )


def test_renewal_window_edges_and_the_grant_term(world: World, clock: MovableClock) -> None:
    w = world
    product = _product(w, clock)
    expiry = datetime.fromisoformat(product["valid_until"])
    assert expiry == START + timedelta(days=400)  # the grant's end, sooner than three years
    renew = f"/v1/products/{product['id']}/renew"

    clock.now = expiry - timedelta(days=61)
    early = w.client.post(renew, headers=w.h("op-1"))
    assert early.status_code == 409 and "60 days before it expires" in early.json()["detail"]
    clock.now = expiry - timedelta(days=60)
    # In the window, but the grant ends with the registration: nothing past its term.
    capped = w.client.post(renew, headers=w.h("op-1"))
    assert capped.status_code == 409 and "operating term" in capped.json()["detail"]

    _grant_until(w, expiry + timedelta(days=5 * 365))
    assert w.client.post(renew, headers=w.h("op-2")).status_code == 403
    renewed = w.client.post(renew, headers=w.h("op-1"))
    assert renewed.status_code == 200, renewed.text
    # Three years counted from the old expiry (the day after it), not from today.
    assert datetime.fromisoformat(renewed.json()["valid_until"]) == years_after(expiry)
    assert w.client.post(renew, headers=w.h("op-1")).status_code == 409  # window far away

    # Renewal never past the grant's term: the cap, once the grant ends sooner.
    new_expiry = years_after(expiry)
    _grant_until(w, new_expiry + timedelta(days=100))
    clock.now = new_expiry - timedelta(days=1)
    again = w.client.post(renew, headers=w.h("op-1")).json()
    assert datetime.fromisoformat(again["valid_until"]) == new_expiry + timedelta(days=100)
    actions = [e["action"] for e in w.events("product.registered")]
    assert actions == ["registered", "renewed", "renewed"]


def test_no_registration_or_renewal_under_a_revoked_grant(
    world: World, clock: MovableClock
) -> None:
    w = world
    product = _product(w, clock)
    expiry = datetime.fromisoformat(product["valid_until"])
    _grant_until(w, expiry + timedelta(days=365))
    clock.now = expiry - timedelta(days=60)
    waiting = post(w, "op-1", "/registrations", first(job=released_model_job(w, {"c": 2.0})))
    publicised = to_publicity(w, waiting.json()["id"])
    clock.now = datetime.fromisoformat(publicised["publicity_ends_at"])
    revoked = w.client.post(
        f"/v1/grants/{w.grant_id}/revoke", headers=w.h("provider-1"), json={"reason": "ended"}
    )
    assert revoked.status_code == 200, revoked.text
    refused = w.client.post(f"/v1/products/{product['id']}/renew", headers=w.h("op-1"))
    assert refused.status_code == 409
    denied = w.events("scope.decision")[-1]
    assert denied["action"] == "product.renew" and denied["allowed"] is False
    unregistered = post(w, "admin-1", f"/registrations/{publicised['id']}/register")
    assert unregistered.status_code == 409 and "revoked" in unregistered.json()["detail"]
    denied = w.events("scope.decision")[-1]
    assert denied["action"] == "product.register" and denied["registration"] == publicised["id"]
    assert w.client.get("/v1/products", headers=w.h("op-1")).json()[0]["id"] == product["id"]


def test_revocation_by_the_registration_body(world: World, clock: MovableClock) -> None:
    w = world
    product = _product(w, clock)
    revoke = f"/v1/products/{product['id']}/revoke"
    body = {"reason": "the application concealed the data's source",
            "legal_basis": "registration measures (001) art. 21 (1)"}  # fmt: skip
    assert w.client.post(revoke, headers=w.h("op-1"), json=body).status_code == 403
    assert w.client.post(revoke, headers=w.h("admin-1"), json={"reason": "x"}).status_code == 422
    done = w.client.post(revoke, headers=w.h("admin-1"), json=body)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "revoked"
    assert "art. 21" in done.json()["status_reason"]
    assert w.client.post(revoke, headers=w.h("admin-1"), json=body).status_code == 409
    clock.now = datetime.fromisoformat(product["valid_until"]) - timedelta(days=30)
    assert (
        w.client.post(f"/v1/products/{product['id']}/renew", headers=w.h("op-1")).status_code == 409
    )
    (status,) = w.events("product.status")
    assert (status["from"], status["to"], status["actor"]) == ("registered", "revoked", "admin-1")
    assert status["legal_basis"] == body["legal_basis"]
