"""Providers and administrators against each other: lifting someone else's stop.

A grant covering two providers' datasets is governed by both, and by the
administrators. Before holds, a suspension was one flag and ``resume`` was
open to anyone who governed the grant (``can_govern`` used ``any``): provider
B could lift provider A's suspension, and either provider could lift an
administrator's emergency stop. Now a suspension is a set of holds
(``gateway.grants.stops``): each party lifts only its own, and the grant is
active again only when every hold is lifted.

Real pieces: the app from ``create_app`` on SQLite, the REST routes and the
console's forms as each party uses them, the grant service's ``use`` as a
job's submission sees the grant. On the code before holds, the first
assertion that a provider cannot lift another party's stop fails: the
resume answered 200 and the grant was active.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.grants.errors import GrantInactive
from gateway.grants.service import grant_service
from tests.support.gateway import Gateway, make_gateway
from tests.support.grants import console_login, events, issue, register_dataset, state_of


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[Gateway]:
    """``people`` from ``provider``, ``tax`` from ``provider2``."""
    with make_gateway(tmp_path / "var") as gw:
        register_dataset(gw.app, "people", "provider")
        register_dataset(gw.app, "tax", "provider2")
        yield gw


def stop(gw: Gateway, who: str, grant_id: str, reason: str = "rectification") -> dict[str, object]:
    r = gw.post(who, f"/v1/grants/{grant_id}/suspend", json={"reason": reason})
    assert r.status_code == 200, (who, r.text)
    return dict(r.json())


def lift(gw: Gateway, who: str, grant_id: str) -> tuple[int, dict[str, object]]:
    r = gw.post(who, f"/v1/grants/{grant_id}/resume", json={"reason": "rectified"})
    return r.status_code, dict(r.json())


def usable(gw: Gateway, grant_id: str) -> bool:
    try:
        grant_service(gw.app).use(grant_id)
    except GrantInactive:
        return False
    return True


def holders(gw: Gateway, grant_id: str) -> set[str]:
    return {str(h) for h in state_of(gw.app, grant_id).holders}


def test_provider_b_cannot_lift_provider_a_stop(gw: Gateway) -> None:
    g = issue(gw.app, datasets=("people", "tax"))
    stop(gw, "provider", g.id, "provider A found a leak")
    status, body = lift(gw, "provider2", g.id)
    assert status == 409, body  # before holds: 200, and the grant active again
    assert "held by provider provider, not by provider provider2" in str(body["detail"])
    assert state_of(gw.app, g.id).state == "suspended" and not usable(gw, g.id)


def test_each_party_lifts_only_its_own_stop(gw: Gateway) -> None:
    g = issue(gw.app, datasets=("people", "tax"))
    stop(gw, "provider", g.id, "provider A's audit")
    stop(gw, "provider2", g.id, "provider B's audit")
    done = stop(gw, "admin", g.id, "the agency's rectification order")
    assert done["state"] == "suspended"
    assert holders(gw, g.id) == {"provider provider", "provider provider2", "the administrators"}

    # Provider B lifts its own stop: the others still hold the grant.
    status, body = lift(gw, "provider2", g.id)
    assert status == 200 and body["state"] == "suspended", body
    # Provider B cannot lift provider A's stop, nor the administrators'.
    status, body = lift(gw, "provider2", g.id)
    assert status == 409, body
    assert "held by provider provider and the administrators" in str(body["detail"])
    assert "only they can lift their stop" in str(body["detail"])
    assert state_of(gw.app, g.id).state == "suspended" and not usable(gw, g.id)

    # Provider A lifts its own; the administrators still hold it.
    status, body = lift(gw, "provider", g.id)
    assert status == 200 and body["state"] == "suspended"
    status, body = lift(gw, "provider", g.id)
    assert status == 409 and "held by the administrators" in str(body["detail"])
    assert not usable(gw, g.id)

    # The last hold lifted: active again.
    status, body = lift(gw, "admin", g.id)
    assert status == 200 and body["state"] == "active" and body["holds"] == []
    assert usable(gw, g.id)

    moves = [(e["from"], e["to"]) for e in events(gw.app, "grant.state")]
    assert moves == [(None, "active"), ("active", "suspended"), ("suspended", "active")]
    held = [(e["action"], e["holder_kind"], e["holder"]) for e in events(gw.app, "grant.hold")]
    assert held == [
        ("placed", "provider", "provider"),
        ("placed", "provider", "provider2"),
        ("placed", "admin", ""),
        ("lifted", "provider", "provider2"),
        ("lifted", "provider", "provider"),
        ("lifted", "admin", ""),
    ]


def test_a_provider_cannot_lift_an_emergency_stop(gw: Gateway) -> None:
    g = issue(gw.app, datasets=("people", "tax"))
    r = gw.post("admin", "/v1/datasets/people/emergency-stop", json={"reason": "leak suspected"})
    assert r.status_code == 200 and r.json()["suspended"] == [g.id]
    for provider in ("provider2", "provider"):  # the other dataset's provider, then this one's
        status, body = lift(gw, provider, g.id)
        assert status == 409, (provider, body)
        assert "held by the administrators" in str(body["detail"])
        assert state_of(gw.app, g.id).state == "suspended" and not usable(gw, g.id)
    status, body = lift(gw, "admin", g.id)
    assert status == 200 and body["state"] == "active"


def test_an_emergency_stop_holds_an_already_suspended_grant(gw: Gateway) -> None:
    g = issue(gw.app, datasets=("people", "tax"))
    stop(gw, "provider2", g.id, "provider B's audit")
    r = gw.post("admin", "/v1/datasets/people/emergency-stop", json={"reason": "leak suspected"})
    assert r.status_code == 200 and r.json()["suspended"] == [g.id], r.text
    assert holders(gw, g.id) == {"provider provider2", "the administrators"}
    # Provider B lifting its own stop does not reactivate an emergency-stopped grant.
    status, body = lift(gw, "provider2", g.id)
    assert status == 200 and body["state"] == "suspended"
    assert not usable(gw, g.id)
    status, body = lift(gw, "admin", g.id)
    assert status == 200 and body["state"] == "active"
    # A second emergency stop of an already held grant says so and changes nothing.
    gw.post("admin", "/v1/datasets/tax/emergency-stop", json={"reason": "drill"})
    again = gw.post("admin", "/v1/datasets/people/emergency-stop", json={"reason": "drill"})
    answer = again.json()
    assert answer.pop("incident").startswith("i-")  # the stop is recorded on an incident
    assert answer == {"dataset": "people", "suspended": [], "already_held": [g.id]}


def test_a_party_stops_once_and_a_stranger_holds_nothing(gw: Gateway) -> None:
    g = issue(gw.app, datasets=("people",))
    stop(gw, "provider", g.id)
    twice = gw.post("provider", f"/v1/grants/{g.id}/suspend", json={"reason": "again"})
    assert twice.status_code == 409 and "already" in twice.json()["detail"]
    # provider2 provides none of the grant's datasets: it cannot stop or lift anything.
    for action in ("suspend", "resume"):
        r = gw.post("provider2", f"/v1/grants/{g.id}/{action}", json={"reason": "x"})
        assert r.status_code == 403, r.text
    assert holders(gw, g.id) == {"provider provider"}


def test_the_console_offers_resume_only_to_the_party_that_can_lift(gw: Gateway) -> None:
    g = issue(gw.app, datasets=("people", "tax"))
    r = gw.post("admin", "/v1/datasets/people/emergency-stop", json={"reason": "leak suspected"})
    assert r.status_code == 200
    csrf = console_login(gw, "provider")
    page = gw.client.get("/console/grants")
    row = page.text.split(f'data-grant="{g.id}"', 1)[1].split("</tr>", 1)[0]
    assert 'data-holder="admin:"' in row  # who holds it, shown
    assert 'data-action="resume"' not in row and 'data-action="suspend"' in row
    forged = gw.client.post(f"/console/grants/{g.id}/resume",
                            data={"csrf": csrf, "reason": "not mine to lift"})  # fmt: skip
    assert forged.status_code == 409 and "only they can lift their stop" in forged.text
    assert state_of(gw.app, g.id).state == "suspended"
    console_login(gw, "admin")
    row = gw.client.get("/console/grants").text.split(f'data-grant="{g.id}"', 1)[1]
    assert 'data-action="resume"' in row.split("</tr>", 1)[0]
