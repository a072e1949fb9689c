"""Who may use the pricing and cost routes (``tests.support.access.PRICING``), role by
role: a 403 for a role not allowed, never a 401 or 403 for one that is; no token, 401."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.access import PRICING
from tests.support.he_world import World
from tests.support.organisations import check_access
from tests.support.pricing_world import INDUSTRY, metered_job, open_world, registered
from tests.support.product_registration import MovableClock

# The he_world account that plays each role.
PLAYERS = {
    "operator": "op-1",
    "provider": "provider-1",
    "reviewer": "rev-1",
    "admin": "admin-1",
    "auditor": "auditor-1",
    "consumer": "bank-1",
}


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(datetime(2026, 3, 2, 2, tzinfo=UTC))


@pytest.fixture
def world(store_url: str, tmp_path: Path, clock: MovableClock) -> Iterator[World]:
    yield from open_world(store_url, tmp_path, clock)


def test_pricing_access_matrix(world: World, clock: MovableClock) -> None:
    w = world
    product = registered(w, job=metered_job(w, clock, cpu_seconds=1), **INDUSTRY,
                         price_class="free")  # fmt: skip
    headers = {role: w.h(name) for role, name in PLAYERS.items()}
    check_access(w.client, headers, PRICING, {"product_id": product["id"], "operator": "op-1"})
