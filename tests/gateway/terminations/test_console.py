"""The console shows terminations with their notice period (the deadline, working days
left) and incidents, each to whom the REST API would show them, in Chinese by default."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.console import Console
from tests.support.termination_world import World, issue, make_world

NOW = datetime(2025, 9, 23, 2, 0, tzinfo=UTC)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(f"sqlite:///{tmp_path / 'gateway.sqlite'}", tmp_path, NOW)


def test_terminations_page_shows_the_deadline_to_those_concerned(world: World) -> None:
    g = issue(world)
    r = world.post("provider-1", f"/v1/grants/{g.id}/terminations",
                   {"reason": "resold <b>", "legal_basis": "002 art. 26"})  # fmt: skip
    t = r.json()
    console = Console(world.client, world.tokens)
    console.login("operator-1")
    page = world.client.get("/console/terminations")
    assert page.status_code == 200
    assert f'data-id="{t["id"]}"' in page.text and "2025-10-13 16:00" in page.text
    assert "待审核" in page.text and "剩余工作日" in page.text
    assert "resold &lt;b&gt;" in page.text
    console.login("operator-2")
    assert t["id"] not in world.client.get("/console/terminations").text
    console.login("auditor-1")
    assert world.client.get("/console/terminations").status_code == 403


def test_incidents_page_lists_what_the_viewer_may_see(world: World) -> None:
    made = world.post("provider-1", "/v1/incidents", {"kind": "data_leak", "severity": "high",
                      "summary": "copied out", "datasets": ["people"]})  # fmt: skip
    i = made.json()["id"]
    console = Console(world.client, world.tokens)
    console.login("auditor-1")
    page = world.client.get("/console/incidents")
    assert page.status_code == 200 and f'data-id="{i}"' in page.text and "处置中" in page.text
    console.login("provider-2")
    assert i not in world.client.get("/console/incidents").text
