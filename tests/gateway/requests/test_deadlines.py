"""Data request deadlines on the statutory calendar (Chengdu rules 004 art. 20), over REST.

Each step's deadline counts working days of ``gateway.workdays.Calendar``: public
holidays are off, the weekend days worked in their place count. National Day 2025 and
Spring Festival 2026 with their make-up Saturdays; every step of the request's life
(formal review 5, provider review 10, supply to the city platform 20, delivery 10);
a deadline counted through a year the calendar does not know is provisional, and
final once the year's days are written, since it is computed whenever read.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.workdays import Calendar
from tests.support.requests_world import BOTH, World, cst, make_world


@pytest.fixture
def world(store_url: str, tmp_path: Path) -> Iterator[World]:
    yield from make_world(store_url, tmp_path, cst(2026, 11, 2, 10))


def due(found: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(found["deadline"]["due"]).astimezone(UTC)


def test_national_day_2025_counts_the_make_up_saturday(world: World) -> None:
    world.at(2025, 9, 30, 10)  # Tuesday, the eve of the Golden Week
    rid = world.ask()
    deadline = world.request(rid)["deadline"]
    # 9 Oct (Thu), 10 Oct (Fri), 11 Oct (the make-up Saturday), 13 Oct, 14 Oct.
    assert due(world.request(rid)) == cst(2025, 10, 15)  # the end of 14 October
    assert deadline["step"] == "formal review" and deadline["working_days"] == 5
    assert deadline["provisional"] is False and deadline["overdue"] is False
    assert deadline["working_days_left"] == 6  # today (30 Sep) and the five
    world.at(2025, 10, 14, 23, 59)
    assert world.request(rid)["deadline"]["overdue"] is False
    world.at(2025, 10, 15, 0, 0)
    assert world.request(rid)["overdue"] is True


def test_spring_festival_2026_skips_the_holiday_and_counts_both_saturdays(world: World) -> None:
    calendar = Calendar()
    assert calendar.is_working_day(cst(2026, 2, 14).date())  # Saturday, worked
    assert calendar.is_working_day(cst(2026, 2, 28).date())  # Saturday, worked
    off = [cst(2026, 2, d).date() for d in range(15, 24)]
    assert not any(calendar.is_working_day(d) for d in off)  # 15 to 23 February

    world.at(2026, 2, 13, 10)  # Friday: formal review from here
    rid = world.ask()
    # 14 Feb (Sat, worked), 24, 25, 26, 27 Feb.
    assert due(world.request(rid)) == cst(2026, 2, 28)
    world.at(2026, 2, 12, 10)  # provider review begins on Thursday 12 February
    other = world.ask()
    world.pass_formal(other)
    found = world.request(other)
    # 13, 14 (Sat), 24, 25, 26, 27, 28 (Sat) February, 2, 3, 4 March.
    assert found["step"] == "provider review" and due(found) == cst(2026, 3, 5)
    assert found["deadline"]["working_days"] == 10


def test_each_step_has_its_deadline(world: World) -> None:
    rid = world.ask(BOTH)  # Monday 2 November 2026, 10:00
    assert due(world.request(rid)) == cst(2026, 11, 10)  # formal review: 5
    world.at(2026, 11, 4, 10)
    world.pass_formal(rid)
    assert due(world.request(rid)) == cst(2026, 11, 19)  # provider review: 10
    world.at(2026, 11, 5, 10)
    world.approve(rid, "provider-1")
    world.approve(rid, "provider-2")
    found = world.request(rid)
    assert found["state"] == "provider_approved" and found["step"] == "supply"
    assert due(found) == cst(2026, 12, 4)  # supply to the city platform: 20
    url = f"/v1/requests/{rid}/provide"
    assert world.post("operator-1", url).status_code == 403
    assert world.post("admin-1", url).status_code == 403  # a provider provides
    world.at(2026, 11, 6, 10)
    provided = world.post("provider-2", url)
    assert provided.status_code == 200, provided.text
    assert provided.json()["state"] == "data_provided" and provided.json()["step"] == "delivery"
    assert due(provided.json()) == cst(2026, 11, 21)  # delivery to the operation platform: 10
    assert world.post("provider-2", url).status_code == 409
    supply = f"/v1/requests/{rid}/supply"
    assert world.post("provider-1", supply, {"days": 30}).status_code == 403  # the city office
    supplied = world.post("admin-1", supply, {"days": 30})
    assert supplied.status_code == 201, supplied.text
    assert supplied.json()["state"] == "supplied" and supplied.json()["deadline"] is None
    moves = [(e.detail["from"], e.detail["to"], e.actor) for e in world.events("request.state")]
    assert ("provider_approved", "data_provided", "provider-2") in moves
    assert ("data_provided", "supplied", "admin-1") in moves


def test_provided_and_delivered_at_once_stays_allowed(world: World) -> None:
    rid = world.ask()
    world.pass_formal(rid)
    world.approve(rid)
    supplied = world.post("provider-1", f"/v1/requests/{rid}/supply", {"days": 30})
    assert supplied.status_code == 201 and supplied.json()["state"] == "supplied"


def test_a_provisional_deadline_becomes_final_when_the_year_is_known(world: World) -> None:
    world.at(2026, 12, 20, 10)  # Sunday; provider review then runs into 2027
    rid = world.ask()
    world.pass_formal(rid)
    first = world.request(rid)
    assert first["deadline"]["provisional"] is True
    # 21-25, 28-31 December, then 1 January 2027 counted as a weekday.
    assert due(first) == cst(2027, 1, 2)
    listed = world.get("provider-1", "/v1/requests").json()
    assert [r["deadline"]["provisional"] for r in listed] == [True]
    (world.data_dir / "calendar.toml").write_text(
        '[2027]\nholidays = ["2027-01-01"]\n', encoding="utf-8"
    )
    final = world.request(rid)
    assert final["deadline"]["provisional"] is False
    assert due(final) == cst(2027, 1, 5)  # New Year's Day off: Monday 4 January
