"""Rectification deadlines (Chengdu implementation rules 004 art. 33): a stop may carry one
in working days; when it passes with that party's stop still placed, the sweep proposes
ending the grant once and tells the administrators; a stop lifted in time raises none."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.terminations.sweep import rectification_missed, terminations_due
from tests.support.termination_world import World, issue, make_world, sweep

# Monday 5 January 2026, 09:00 in Beijing; 5 working days later is the end of Monday
# 12 January (CST), 16:00 UTC.
STOPPED = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
DUE = datetime(2026, 1, 12, 16, 0, tzinfo=UTC)


@pytest.fixture
def world(store_url: str, tmp_path: Path) -> Iterator[World]:
    yield from make_world(store_url, tmp_path, STOPPED)


def stop(w: World, grant_id: str, days: int | None = 5) -> dict:  # type: ignore[type-arg]
    body: dict[str, object] = {"reason": "breach of the agreement: rectify"}
    if days is not None:
        body["rectify_days"] = days
    r = w.post("provider-1", f"/v1/grants/{grant_id}/suspend", body)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_a_missed_deadline_raises_one_proposal_and_tells_the_administrators(
    world: World,
) -> None:
    g = issue(world)
    held = stop(world, g.id)
    assert held["state"] == "suspended"
    assert datetime.fromisoformat(held["holds"][0]["rectify_by"]) == DUE
    world.clock.now = DUE - timedelta(seconds=1)
    assert sweep(world, rectification_missed) == []
    world.clock.now = DUE + timedelta(days=1)
    results: list[list[str]] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        results.append(sweep(world, rectification_missed))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sum(len(lines) for lines in results) == 1
    assert sweep(world, rectification_missed) == []  # and again later: still one
    found = world.get("admin-1", "/v1/terminations").json()
    assert len(found) == 1
    t = found[0]
    assert t["kind"] == "rectification" and t["state"] == "proposed"
    assert t["proposed_by"] == "system" and "第三十三条" in t["legal_basis"]
    assert f"termination:{t['id']}:proposed" in world.notice_keys("admin-1")
    # The proposal goes the ordinary way: an administrator may withdraw the system's.
    r = world.post("admin-1", f"/v1/terminations/{t['id']}/withdraw", {"reason": "rectified"})
    assert r.status_code == 200 and r.json()["state"] == "withdrawn"
    assert sweep(world, rectification_missed) == []


def test_a_stop_lifted_in_time_raises_none(world: World) -> None:
    g = issue(world)
    stop(world, g.id)
    world.clock.now = DUE - timedelta(days=2)
    r = world.post("provider-1", f"/v1/grants/{g.id}/resume", {"reason": "rectified"})
    assert r.status_code == 200 and r.json()["state"] == "active"
    world.clock.now = DUE + timedelta(days=10)
    assert sweep(world, rectification_missed) == []
    assert world.get("admin-1", "/v1/terminations").json() == []


def test_a_stop_without_a_deadline_raises_none(world: World) -> None:
    g = issue(world)
    assert stop(world, g.id, days=None)["holds"][0]["rectify_by"] is None
    world.clock.now = DUE + timedelta(days=400)
    assert sweep(world, rectification_missed) == []


def test_the_deadline_is_working_days(world: World) -> None:
    g = issue(world)
    r = world.post("provider-1", f"/v1/grants/{g.id}/suspend",
                   {"reason": "rectify", "rectify_days": 0})  # fmt: skip
    assert r.status_code == 422


def test_a_missed_deadline_approved_ends_the_suspended_grant(world: World) -> None:
    g = issue(world)
    stop(world, g.id)
    world.clock.now = DUE + timedelta(hours=1)
    sweep(world, rectification_missed)
    t = world.get("admin-1", "/v1/terminations").json()[0]
    world.post("admin-1", f"/v1/terminations/{t['id']}/approve", {"reason": "not rectified"})
    world.clock.now = datetime.fromisoformat(t["effective_after"])
    assert sweep(world, terminations_due) == [f"termination {t['id']} took effect"]
    grant = world.get("admin-1", f"/v1/grants/{g.id}").json()
    assert grant["state"] == "revoked" and grant["holds"] == []
