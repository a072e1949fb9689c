"""The console's registration page: administrators see the queue of undecided applications
with the end of publicity in working days; an operator sees their own applications and
products, in Chinese by default and in English on request; a provider gets a 403 page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.console import Console
from tests.support.he_world import World, released_model_job
from tests.support.product_registration import MovableClock, first, make_world, post, to_publicity

START = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)  # Monday


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[World, MovableClock]]:
    clock = MovableClock(START)
    yield from ((w, clock) for w in make_world(
        f"sqlite:///{tmp_path / 'gateway.sqlite'}", tmp_path, clock))  # fmt: skip


def test_the_queue_and_the_operators_own(world: tuple[World, MovableClock]) -> None:
    w, clock = world
    publicised = post(w, "op-1", "/registrations", first(job=released_model_job(w, {"c": 1.0})))
    to_publicity(w, publicised.json()["id"])
    applied = post(w, "op-1", "/registrations", first(job=released_model_job(w, {"c": 2.0})))
    console = Console(w.client, w.tokens)
    console.login("admin-1")
    page = console.client.get("/console/products")
    assert page.status_code == 200
    assert f'data-registration="{publicised.json()["id"]}"' in page.text
    assert f'data-registration="{applied.json()["id"]}"' in page.text
    assert "公示中" in page.text and "剩余 11 个工作日" in page.text  # today counts
    assert 'href="/console/products"' in page.text  # in the navigation
    clock.advance(days=1)
    english = console.client.get("/console/products?lang=en").text
    assert "In publicity" in english and "10 working days left" in english
    console.login("op-1")
    mine = console.client.get("/console/products").text
    assert "我的登记申请" in mine and f'data-registration="{applied.json()["id"]}"' in mine
    console.login("op-2")
    assert "暂无登记申请。" in console.client.get("/console/products").text
    console.login("provider-1")
    assert console.client.get("/console/products").status_code == 403
