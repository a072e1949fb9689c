"""Extending provider review (Chengdu rules 004 art. 20), over REST.

A provider of the request asks for 1 to 10 more working days with a reason; the
city office (an administrator) approves or refuses with a reason; at most one
approved extension per request; the provider-review deadline includes its days;
every ask and decision is audited (``request.extension``) and told (notices to the
administrators, then back to the provider).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.requests_world import World, cst, make_world


@pytest.fixture
def world(store_url: str, tmp_path: Path) -> Iterator[World]:
    yield from make_world(store_url, tmp_path, cst(2026, 11, 2, 10))


def in_review(world: World) -> str:
    rid = world.ask()
    world.pass_formal(rid)  # Monday 2 November 2026: provider review due end of 16 Nov
    return rid


def extend(world: World, rid: str, who: str = "provider-1", days: int = 4) -> object:
    return world.post(who, f"/v1/requests/{rid}/extensions", {"days": days, "reason": "audit"})


def decide(world: World, rid: str, xid: str, decision: str, who: str = "admin-1") -> object:
    body = {"decision": decision, "reason": "the city office agrees" if decision else ""}
    return world.post(who, f"/v1/requests/{rid}/extensions/{xid}/decision", body)


def test_the_extension_is_bounded_once_and_a_providers(world: World) -> None:
    rid = in_review(world)
    assert extend(world, rid, days=11).status_code == 422  # at most 10 working days
    assert extend(world, rid, days=0).status_code == 422
    blank = world.post("provider-1", f"/v1/requests/{rid}/extensions", {"days": 3, "reason": " "})
    assert blank.status_code == 422
    assert extend(world, rid, who="provider-2").status_code == 403  # not this request's
    assert extend(world, rid, who="operator-1").status_code == 403
    asked = extend(world, rid, days=10)
    assert asked.status_code == 201, asked.text
    xid = asked.json()["id"]
    assert extend(world, rid, days=1).status_code == 409  # one waits for its decision
    assert decide(world, rid, xid, "approve", who="provider-1").status_code == 403
    assert decide(world, rid, "x-nothing", "approve").status_code == 404
    approved = decide(world, rid, xid, "approve")
    assert approved.status_code == 200 and approved.json()["decision"] == "approved"
    assert decide(world, rid, xid, "refuse").status_code == 409  # decided once
    second = extend(world, rid, days=1)
    assert second.status_code == 409 and "extended already" in second.json()["detail"]


def test_an_approved_extension_moves_the_provider_review_deadline(world: World) -> None:
    rid = in_review(world)
    before = world.request(rid)["deadline"]
    assert before["working_days"] == 10
    assert datetime.fromisoformat(before["due"]) == cst(2026, 11, 17).astimezone(UTC)
    xid = extend(world, rid, days=4).json()["id"]
    assert world.request(rid)["deadline"]["working_days"] == 10  # not before the decision
    decide(world, rid, xid, "approve")
    after = world.request(rid)
    assert after["extension_days"] == 4 and after["deadline"]["working_days"] == 14
    # 17, 18, 19, 20 November added.
    assert datetime.fromisoformat(after["deadline"]["due"]) == cst(2026, 11, 21)
    world.approve(rid)
    assert world.request(rid)["deadline"]["working_days"] == 20  # supply: its own 20


def test_a_refused_extension_adds_nothing_and_another_may_be_asked(world: World) -> None:
    rid = in_review(world)
    xid = extend(world, rid).json()["id"]
    refused = decide(world, rid, xid, "refuse")
    assert refused.status_code == 200 and refused.json()["decision"] == "refused"
    assert world.request(rid)["deadline"]["working_days"] == 10
    world.at(2026, 11, 3, 10)
    assert extend(world, rid, days=2).status_code == 201
    listed = world.get("operator-1", f"/v1/requests/{rid}/extensions").json()
    assert [(e["days"], e["decision"]) for e in listed] == [(4, "refused"), (2, None)]
    assert world.get("operator-2", f"/v1/requests/{rid}/extensions").status_code == 403


def test_an_extension_is_asked_and_decided_only_during_provider_review(world: World) -> None:
    rid = world.ask()
    assert extend(world, rid).status_code == 409  # still at formal review
    world.pass_formal(rid)
    xid = extend(world, rid).json()["id"]
    world.approve(rid)
    assert decide(world, rid, xid, "approve").status_code == 409  # review is over


def test_asks_and_decisions_are_audited_and_told(world: World) -> None:
    rid = in_review(world)
    xid = extend(world, rid, days=3).json()["id"]
    assert f"request:{rid}:extension:{xid}:asked" in world.notice_keys("admin-1")
    assert f"request:{rid}:extension:{xid}:asked" not in world.notice_keys("provider-1")
    decide(world, rid, xid, "approve")
    assert f"request:{rid}:extension:{xid}:approved" in world.notice_keys("provider-1")
    assert f"request:{rid}:extension:{xid}:approved" not in world.notice_keys("provider-2")
    events = world.events("request.extension")
    assert [(e.actor, e.detail["decision"], e.detail["days"]) for e in events] == [
        ("provider-1", "asked", 3),
        ("admin-1", "approved", 3),
    ]
    assert all(e.detail["request"] == rid and e.detail["extension"] == xid for e in events)
    assert events[1].detail["reason"] == "the city office agrees"
