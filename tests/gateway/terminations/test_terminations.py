"""Termination as a process (Chengdu implementation rules 004 art. 24): a basis, a notice
period of 10 working days on the statutory calendar, the data authority's approval,
notices to everyone concerned, then revocation with destruction records; the operator's
request with its list of data; the sweep taking effect once; who may do what."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.store.tables import he_products
from gateway.terminations.sweep import terminations_due
from sandbox.intake.policy import PolicyStore
from sandbox.judge.ledger_keys import EntityMaps, ledger_secret
from sandbox.views.build import ViewBuilder
from tests.support.access import TERMINATIONS_AND_INCIDENTS
from tests.support.termination_world import World, issue, make_world, sweep

# Tuesday 23 September 2025, 10:00 in Beijing. Ten working days after it, on the State
# Council's 2025 calendar: 24, 25, 26, Sunday 28 (worked), 29, 30 September, then
# National Day (1 to 8 October off), 9, 10, Saturday 11 (worked) and Monday 13 October.
PROPOSED = datetime(2025, 9, 23, 2, 0, tzinfo=UTC)
EFFECTIVE = datetime(2025, 10, 13, 16, 0, tzinfo=UTC)  # 24:00 CST on 13 October
BASIS = {"reason": "the operator resold products", "legal_basis": "002 第二十六条"}


@pytest.fixture
def world(store_url: str, tmp_path: Path) -> Iterator[World]:
    yield from make_world(store_url, tmp_path, PROPOSED)


def propose(w: World, grant_id: str, who: str = "provider-1") -> dict:  # type: ignore[type-arg]
    r = w.post(who, f"/v1/grants/{grant_id}/terminations", BASIS)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def decide(w: World, tid: str, verb: str = "approve", who: str = "admin-1") -> dict:  # type: ignore[type-arg]
    r = w.post(who, f"/v1/terminations/{tid}/{verb}", {"reason": "basis checked"})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def grant_state(w: World, grant_id: str) -> str:
    return str(w.get("admin-1", f"/v1/grants/{grant_id}").json()["state"])


def with_consumer_product(w: World, grant_id: str) -> None:
    """An encrypted product of the grant that consumer-1 calls (as gateway.he stores it)."""
    now = w.clock.now
    with w.engine.begin() as conn:
        conn.execute(
            sa.insert(he_products).values(
                id="hp-1", kind="verify", name="income band", operator="operator-1",
                grant_id=grant_id, datasets=["people"], spec={}, consumers=["consumer-1"],
                state="approved", created_at=now, state_changed_at=now, state_reason="ok",
            )
        )  # fmt: skip


def test_the_whole_process_with_national_day_inside_the_notice_period(world: World) -> None:
    g = issue(world)
    with_consumer_product(world, g.id)
    builder = ViewBuilder(world.app.state.registry, PolicyStore(world.app.state.settings.data_dir),
                          world.app.state.settings.data_dir / "cache")  # fmt: skip
    with world.engine.begin() as conn:
        view_grant = world.grants.active_grant(conn, g.id)
    built = builder.build(view_grant)
    maps = EntityMaps(world.app.state.settings.data_dir / "cache",
                      ledger_secret(world.app.state.settings.data_dir))  # fmt: skip
    maps.build(view_grant, world.app.state.registry.get("people"))

    t = propose(world, g.id)
    assert t["state"] == "proposed" and t["legal_basis"] == BASIS["legal_basis"]
    assert datetime.fromisoformat(t["effective_after"]) == EFFECTIVE
    assert t["working_days_left"] == 11 and not t["provisional"]  # today counts
    assert f"termination:{t['id']}:proposed" in world.notice_keys("admin-1")
    # Nobody is told to stop before the data authority approves.
    assert not any(k.startswith("termination:") for k in world.notice_keys("operator-1"))

    world.clock.now = PROPOSED + timedelta(days=1)
    assert decide(world, t["id"])["state"] == "approved"
    approved = f"termination:{t['id']}:approved"
    for who in ("operator-1", "consumer-1", "provider-1", "admin-1"):
        assert approved in world.notice_keys(who), who
    assert approved not in world.notice_keys("provider-2")

    # A weekday count would end on 7 October; the calendar's working days end on the 13th.
    for moment in (datetime(2025, 10, 8, 0, 0, tzinfo=UTC), EFFECTIVE - timedelta(minutes=1)):
        world.clock.now = moment
        assert sweep(world, terminations_due) == []
        assert grant_state(world, g.id) == "active"
    world.clock.now = EFFECTIVE  # the gateway's own sweep (every task), as an admin runs it
    swept = world.post("admin-1", "/v1/admin/sweep", {})
    assert f"termination {t['id']} took effect" in swept.json()["lines"], swept.text
    assert grant_state(world, g.id) == "revoked"
    shown = world.get("operator-1", f"/v1/terminations/{t['id']}").json()
    assert shown["state"] == "effective" and shown["working_days_left"] == 0
    destroyed = [e for e in world.events("destruction") if e.grant_id == g.id]
    assert all(e.detail["because"] == "revoked" for e in destroyed)
    assert {"views", "entity"} <= {e.detail["what"].split()[0] for e in destroyed}
    assert not built.directory.exists()
    assert f"termination:{t['id']}:effective" in world.notice_keys("consumer-1")


def test_nothing_takes_effect_without_approval(world: World) -> None:
    g = issue(world)
    t = propose(world, g.id)
    world.clock.now = EFFECTIVE + timedelta(days=30)
    assert sweep(world, terminations_due) == []
    assert grant_state(world, g.id) == "active"
    assert world.get("admin-1", f"/v1/terminations/{t['id']}").json()["state"] == "proposed"


def test_approved_after_the_period_it_takes_effect_at_once(world: World) -> None:
    g = issue(world, datasets=("people", "tax"))
    t = propose(world, g.id, who="provider-2")
    world.clock.now = EFFECTIVE
    assert decide(world, t["id"])["state"] == "effective"
    assert grant_state(world, g.id) == "revoked"


def test_the_sweep_takes_effect_once_when_run_twice_or_at_once(world: World) -> None:
    grants = [issue(world, scenario=f"scenario {i}") for i in range(3)]
    ids = [propose(world, g.id, who="admin-1")["id"] for g in grants]
    for tid in ids:
        decide(world, tid)
    world.clock.now = EFFECTIVE
    results: list[list[str]] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        results.append(sweep(world, terminations_due))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    done = sorted(line for lines in results for line in lines)
    assert done == sorted(f"termination {tid} took effect" for tid in ids)
    assert sweep(world, terminations_due) == []
    revoked = [e for e in world.events("grant.state") if e.detail.get("to") == "revoked"]
    assert sorted(e.grant_id for e in revoked) == sorted(g.id for g in grants)
    effective = [e for e in world.events("termination.state") if e.detail.get("to") == "effective"]
    assert len(effective) == 3


def test_the_operator_requests_the_end_with_the_list_of_its_data(world: World) -> None:
    g = issue(world, datasets=("people", "tax"))
    url = f"/v1/grants/{g.id}/termination-requests"
    partial = world.post("operator-1", url, {"datasets": ["people"], "reason": "done"})
    assert partial.status_code == 422 and "ends whole" in partial.json()["detail"]
    other = world.post("operator-2", url, {"datasets": ["people", "tax"], "reason": "done"})
    assert other.status_code == 403
    r = world.post("operator-1", url, {"datasets": ["tax", "people"], "reason": "project over"})
    assert r.status_code == 201, r.text
    t = r.json()
    assert t["kind"] == "request" and t["datasets"] == ["people", "tax"]
    assert "第二十四条" in t["legal_basis"]
    assert datetime.fromisoformat(t["effective_after"]) == EFFECTIVE
    # Listed for the operator and both providers; the request still needs approval.
    for who in ("operator-1", "provider-1", "provider-2"):
        assert [x["id"] for x in world.get(who, "/v1/terminations").json()] == [t["id"]]
    assert world.get("operator-2", "/v1/terminations").json() == []
    assert world.get("operator-2", f"/v1/terminations/{t['id']}").status_code == 404


def test_a_proposal_states_its_basis(world: World) -> None:
    g = issue(world)
    r = world.post("provider-1", f"/v1/grants/{g.id}/terminations", {"reason": "x"})
    assert r.status_code == 422
    r = world.post("provider-1", f"/v1/grants/{g.id}/terminations",
                   {"reason": "x", "legal_basis": "  "})  # fmt: skip
    assert r.status_code == 422


def test_who_proposes_decides_and_withdraws(world: World) -> None:
    g = issue(world)
    url = f"/v1/grants/{g.id}/terminations"
    assert world.post("provider-2", url, BASIS).status_code == 403  # not its dataset
    assert world.post("operator-1", url, BASIS).status_code == 403  # requests instead
    t = propose(world, g.id)
    for who in ("provider-1", "operator-1", "auditor-1"):
        r = world.post(who, f"/v1/terminations/{t['id']}/approve", {"reason": "ok"})
        assert r.status_code == 403, who
    decide(world, t["id"])
    assert world.post("admin-1", f"/v1/terminations/{t['id']}/refuse",
                      {"reason": "no"}).status_code == 409  # fmt: skip
    assert world.post("operator-1", f"/v1/terminations/{t['id']}/withdraw",
                      {"reason": "no"}).status_code == 403  # fmt: skip
    assert decide(world, t["id"], "withdraw", who="provider-1")["state"] == "withdrawn"
    world.clock.now = EFFECTIVE + timedelta(days=1)
    assert sweep(world, terminations_due) == []
    assert grant_state(world, g.id) == "active"


def test_a_refusal_tells_the_proposer(world: World) -> None:
    g = issue(world)
    t = propose(world, g.id)
    assert decide(world, t["id"], "refuse")["decision_reason"] == "basis checked"
    assert f"termination:{t['id']}:refused" in world.notice_keys("provider-1")
    assert world.post("admin-1", f"/v1/terminations/{t['id']}/approve",
                      {"reason": "ok"}).status_code == 409  # fmt: skip


def test_role_matrix_of_the_termination_routes(world: World) -> None:
    """Every role on every termination route: the role check answers 403 before anything."""
    sample = {"{grant_id}": "g-none", "{termination_id}": "t-none"}
    for (method, path), allowed in TERMINATIONS_AND_INCIDENTS.items():
        if "incident" in path:
            continue
        url = path
        for key, value in sample.items():
            url = url.replace(key, value)
        for role in ("operator", "provider", "reviewer", "admin", "auditor", "consumer"):
            r = world.client.request(method, url, headers=world.headers(f"{role}-1"), json={})
            denied = r.status_code == 403 and "needs the role" in r.text
            assert denied == (role not in allowed), (method, path, role, r.status_code)


def test_a_grant_ended_otherwise_first_leaves_its_termination_moot(world: World) -> None:
    g = issue(world)
    t = propose(world, g.id)
    decide(world, t["id"])
    r = world.post("admin-1", f"/v1/grants/{g.id}/revoke", {"reason": "breach"})
    assert r.status_code == 200
    world.clock.now = EFFECTIVE
    assert sweep(world, terminations_due) == []
    assert world.get("admin-1", f"/v1/terminations/{t['id']}").json()["state"] == "moot"
    assert world.post("provider-1", f"/v1/grants/{g.id}/terminations", BASIS).status_code == 409
