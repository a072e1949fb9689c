"""Overdue data request steps act (Chengdu rules 004 art. 20): the sweep task tells who
must act and the administrators, once, and audits it as ``request.overdue``.

Responsible parties: formal review and delivery the administrators (the city office),
provider review the providers who have not voted, supply the request's providers.
A second sweep, or two at once on one store, add nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.requests.overdue import act_on_overdue
from gateway.sweep.run import run_sweep
from gateway.sweep.tasks import tasks
from tests.support.requests_world import BOTH, World, cst, make_world


@pytest.fixture
def world(store_url: str, tmp_path: Path) -> Iterator[World]:
    yield from make_world(store_url, tmp_path, cst(2026, 11, 2, 10))


def overdue(world: World) -> list[tuple[str, str, bool]]:
    return [
        (e.detail["request"], e.detail["step"], e.detail["provisional"])
        for e in world.events("request.overdue")
    ]


def test_the_sweep_runs_the_task(world: World) -> None:
    rid = world.ask()
    world.at(2026, 11, 10, 9)
    mine = [t for t in tasks() if t.name == "requests.overdue"]
    result = run_sweep(world.context(), mine)
    assert result.failures == {} and len(result.lines) == 1 and rid in result.lines[0]


def test_formal_review_overdue_tells_the_administrators_once(world: World) -> None:
    rid = world.ask()  # Monday 2 November 2026: due at the end of Monday 9 November
    world.at(2026, 11, 9, 23, 59)
    assert world.sweep_overdue() == [] and overdue(world) == []
    world.at(2026, 11, 10, 0, 1)
    assert len(world.sweep_overdue()) == 1
    assert overdue(world) == [(rid, "formal_review", False)]
    event = world.events("request.overdue")[0]
    assert event.detail["due"].startswith("2026-11-09T16:00:00")
    key = f"request:{rid}:formal_review:overdue"
    assert key in world.notice_keys("admin-1")
    assert key not in world.notice_keys("operator-1")
    world.at(2026, 11, 11, 9)
    assert world.sweep_overdue() == [] and len(overdue(world)) == 1  # once
    sent = [e for e in world.events("notice.sent") if e.detail["key"] == key]
    assert [e.detail["to"] for e in sent] == [["role:admin"]]


def test_provider_review_overdue_tells_the_providers_who_have_not_voted(world: World) -> None:
    rid = world.ask(BOTH)
    world.pass_formal(rid)  # due at the end of 16 November
    world.approve(rid, "provider-1")
    world.at(2026, 11, 17, 9)
    world.sweep_overdue()
    key = f"request:{rid}:provider_review:overdue"
    assert key in world.notice_keys("provider-2")
    assert key not in world.notice_keys("provider-1")  # approved in time
    assert key in world.notice_keys("admin-1")
    assert overdue(world) == [(rid, "provider_review", False)]


def test_an_approved_extension_keeps_provider_review_on_time(world: World) -> None:
    rid = world.ask()
    world.pass_formal(rid)
    xid = world.post(
        "provider-1", f"/v1/requests/{rid}/extensions", {"days": 5, "reason": "many fields"}
    ).json()["id"]
    world.post(
        "admin-1", f"/v1/requests/{rid}/extensions/{xid}/decision",
        {"decision": "approve", "reason": "agreed"},
    )  # fmt: skip
    world.at(2026, 11, 17, 9)
    assert world.sweep_overdue() == []
    world.at(2026, 11, 24, 9)  # 10 + 5 working days: due at the end of 23 November
    assert overdue(world) == [] and len(world.sweep_overdue()) == 1


def test_supply_and_delivery_overdue_tell_their_parties(world: World) -> None:
    rid = world.ask(BOTH)
    world.pass_formal(rid)
    world.approve(rid, "provider-1")
    world.approve(rid, "provider-2")  # supply: 20 working days, due at the end of 30 Nov
    world.at(2026, 12, 1, 9)
    world.sweep_overdue()
    supply = f"request:{rid}:supply:overdue"
    assert supply in world.notice_keys("provider-1") and supply in world.notice_keys("provider-2")
    assert supply in world.notice_keys("admin-1")
    assert world.post("provider-1", f"/v1/requests/{rid}/provide").status_code == 200
    world.at(2026, 12, 16, 9)  # delivery: 10 working days from 1 December, due end of 15th
    world.sweep_overdue()
    delivery = f"request:{rid}:delivery:overdue"
    assert delivery in world.notice_keys("admin-1")
    assert delivery not in world.notice_keys("provider-1")
    assert overdue(world) == [(rid, "supply", False), (rid, "delivery", False)]


def test_closed_requests_are_never_overdue(world: World) -> None:
    rid = world.ask()
    rejection = {"decision": "reject", "reason": "no scenario", "legal_basis": "art. 20"}
    world.post("admin-1", f"/v1/requests/{rid}/formal-review", rejection)
    world.at(2027, 6, 1, 9)
    assert world.sweep_overdue() == [] and overdue(world) == []


def test_two_sweeps_at_once_tell_once(world: World) -> None:
    first, second = world.ask(), world.ask(BOTH)
    world.pass_formal(second)
    world.at(2026, 11, 30, 9)
    ctx = world.context()
    start = threading.Barrier(2)
    done: list[list[str]] = []
    failed: list[BaseException] = []

    def sweep() -> None:
        start.wait()
        try:
            done.append(act_on_overdue(ctx))
        except BaseException as e:  # reported below
            failed.append(e)

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failed == []
    assert sorted(len(lines) for lines in done) in ([0, 2], [1, 1])
    assert sorted(overdue(world)) == sorted(
        [(first, "formal_review", False), (second, "provider_review", False)]
    )
    sent = [e.detail for e in world.events("notice.sent") if e.detail["kind"] == "request.overdue"]
    assert sorted((d["key"], tuple(d["to"])) for d in sent) == sorted(
        [
            (f"request:{first}:formal_review:overdue", ("role:admin",)),
            (
                f"request:{second}:provider_review:overdue",
                ("account:provider-1", "account:provider-2", "role:admin"),
            ),
        ]
    )


def test_an_overdue_step_through_an_unknown_year_is_told_provisional(world: World) -> None:
    world.at(2026, 12, 20, 10)
    rid = world.ask()
    world.pass_formal(rid)
    world.at(2027, 1, 4, 9)  # past the weekday count's end of 1 January 2027
    world.sweep_overdue()
    assert overdue(world) == [(rid, "provider_review", True)]
