"""Registration codes (registration measures 001 art. 15): by the configured scheme,
issued only at registration, a per-year sequence that concurrent registrations never
share; a scheme without ``{seq}`` is refused when the settings load."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.costs.ledger import Rates
from gateway.pricing.basis import PricingRules
from gateway.products.desk import Desk
from gateway.settings import GatewaySettings
from tests.support.he_world import World, released_model_job
from tests.support.product_registration import MovableClock, first, make_world, post, to_publicity

START = datetime(2026, 12, 30, 1, 0, tzinfo=UTC)
REGISTRATIONS = 6


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(START)


@pytest.fixture
def world(store_url: str, tmp_path: Path, clock: MovableClock) -> Iterator[World]:
    yield from make_world(store_url, tmp_path, clock, product_code_format="DSR/{year}/{seq:04d}")


def test_codes_are_unique_under_concurrent_registration(world: World, clock: MovableClock) -> None:
    w = world
    ids = []
    for _ in range(REGISTRATIONS):
        made = post(w, "op-1", "/registrations", first(job=released_model_job(w, {"c": 1.0})))
        assert made.json()["product"] is None  # no code before registration
        ids.append(to_publicity(w, made.json()["id"])["id"])
    shown = w.client.get(f"/v1/products/registrations/{ids[-1]}", headers=w.h("op-1")).json()
    clock.now = datetime.fromisoformat(shown["publicity_ends_at"])  # in 2027, CST
    state = w.app.state
    settings = state.settings
    desk = Desk(
        state.engine,
        state.grant_resolver,
        state.calendar,
        clock,
        10,
        "DSR/{year}/{seq:04d}",
        PricingRules.of(settings),
        Rates.of(settings),
    )
    barrier = threading.Barrier(REGISTRATIONS)
    failures: list[BaseException] = []

    def register(registration_id: str) -> None:
        barrier.wait()
        try:
            desk.register(registration_id, "admin-1")
        except BaseException as e:  # reported below
            failures.append(e)

    threads = [threading.Thread(target=register, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    codes = sorted(p["registration_code"] for p in w.client.get(
        "/v1/products", headers=w.h("op-1")).json())  # fmt: skip
    assert codes == [f"DSR/2027/{n:04d}" for n in range(1, REGISTRATIONS + 1)]


@pytest.mark.parametrize(
    "scheme", ["CQ-{year}", "CQ-{year}-{serial}", "{seq:d", "X" * 41 + "{seq}"]
)
def test_a_scheme_that_cannot_number_codes_is_refused(scheme: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="product_code_format"):
        GatewaySettings(data_dir=tmp_path, product_code_format=scheme)
