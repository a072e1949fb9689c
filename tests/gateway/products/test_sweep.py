"""The sweep's product tasks (registration measures 001 art. 16): a notice when the
renewal window opens, told once; an unrenewed registration expired and cancelled once,
however many sweeps run, at once or one after another."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.grants.service import grant_service
from gateway.sweep.tasks import SweepContext, tasks
from tests.support.he_world import World, released_model_job
from tests.support.product_registration import MovableClock, first, make_world, post, to_publicity

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(START)


@pytest.fixture
def world(store_url: str, tmp_path: Path, clock: MovableClock) -> Iterator[World]:
    yield from make_world(store_url, tmp_path, clock, grant_days=300)


def _run(w: World, name: str, now: datetime) -> list[str]:
    (task,) = [t for t in tasks() if t.name == name]
    state = w.app.state
    ctx = SweepContext(state.engine, state.settings, grant_service(w.app), state.calendar, now)
    return task.run(ctx)


def _product(w: World, clock: MovableClock) -> dict[str, Any]:
    rid = post(w, "op-1", "/registrations", first(job=released_model_job(w, {"c": 1.0})))
    shown = to_publicity(w, rid.json()["id"])
    clock.now = datetime.fromisoformat(shown["publicity_ends_at"])
    done = post(w, "admin-1", f"/registrations/{shown['id']}/register").json()
    found: dict[str, Any] = w.client.get(
        f"/v1/products/{done['product']}", headers=w.h("op-1")
    ).json()
    return found


def test_the_renewal_window_is_told_once(world: World, clock: MovableClock) -> None:
    w = world
    product = _product(w, clock)
    expiry = datetime.fromisoformat(product["valid_until"])
    assert _run(w, "products.renewal_window", expiry - timedelta(days=61)) == []
    assert len(_run(w, "products.renewal_window", expiry - timedelta(days=60))) == 1
    assert _run(w, "products.renewal_window", expiry - timedelta(days=59)) == []
    for who in ("op-1", "admin-1"):
        notices = w.client.get("/v1/notices", headers=w.h(who)).json()
        assert [n["kind"] for n in notices] == ["product.renewal_window"], who
    assert w.client.get("/v1/notices", headers=w.h("op-2")).json() == []
    assert len(w.events("notice.sent")) == 1


def test_an_unrenewed_registration_is_cancelled_once(world: World, clock: MovableClock) -> None:
    w = world
    product = _product(w, clock)
    expiry = datetime.fromisoformat(product["valid_until"])
    assert _run(w, "products.cancel_unrenewed", expiry - timedelta(seconds=1)) == []
    results: list[list[str]] = []
    barrier = threading.Barrier(2)

    def sweep() -> None:
        barrier.wait()
        results.append(_run(w, "products.cancel_unrenewed", expiry))

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(len(r) for r in results) == [0, 1]
    assert _run(w, "products.cancel_unrenewed", expiry + timedelta(days=1)) == []
    shown = w.client.get(f"/v1/products/{product['id']}", headers=w.h("op-1")).json()
    assert shown["status"] == "cancelled" and "not renewed" in shown["status_reason"]
    moves = [(e["from"], e["to"], e["actor"]) for e in w.events("product.status")]
    assert moves == [("registered", "expired", "system"), ("expired", "cancelled", "system")]
