"""Grants: the state table, suspension by holds, revocation with destruction, expiry, the
3-year maximum, minimum necessary columns, and the routes' access matrix (SQLite and
PostgreSQL). The attacks on holds, terms and scenario names are in ``tests/security``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.audit.chain import iter_events
from gateway.grants.errors import GrantError, GrantInactive, IllegalGrantTransition
from gateway.grants.holds import holds_of
from gateway.grants.model import ADMINISTRATORS, TRANSITIONS, GrantRecord, State
from gateway.grants.service import SuspendHook, grant_service
from gateway.grants.terms import years_after
from gateway.he.model import suspend_grant_products
from gateway.jobs.service import cancel_queued_for_grant
from gateway.scope.objects import column_object
from gateway.scope.policy import ScopePolicy
from gateway.settings import GatewaySettings
from gateway.store import make_engine, migrate
from gateway.store.migrations import CONNECTION, alembic_config
from gateway.store.tables import accounts as accounts_table
from gateway.store.tables import grants as grants_table
from sandbox.intake.policy import PolicyStore
from sandbox.judge.ledger_keys import EntityMaps, ledger_secret
from sandbox.views.build import ViewBuilder
from tests.support.access import GRANTS as ACCESS
from tests.support.grants_world import ROLES, World, issue, make_world

SAMPLE_PATH = {"{grant_id}": "g-0000000000000000", "{name}": "nothing_here"}
SAMPLE_BODY: dict[tuple[str, str], Any] = {
    ("POST", "/v1/grants/{grant_id}/suspend"): {"reason": "x"},
    ("POST", "/v1/grants/{grant_id}/resume"): {"reason": "x"},
    ("POST", "/v1/grants/{grant_id}/revoke"): {"reason": "x"},
    ("POST", "/v1/datasets/{name}/emergency-stop"): {"reason": "x"},
}

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Beijing


@pytest.fixture
def world(store_url: str, tmp_path: Path) -> Iterator[World]:
    yield from make_world(store_url, tmp_path)


def grant_at_state(w: World, state: State, scenario: str = "s") -> GrantRecord:
    """A grant brought to ``state`` through legal moves only (suspended: an
    administrators' stop)."""
    g = issue(w, scenario=scenario)
    if state == State.ACTIVE:
        return g
    with w.engine.begin() as conn:
        if state == State.SUSPENDED:
            return w.grants.suspend(conn, g.id, ADMINISTRATORS, "admin-1", "test")
        return w.grants.transition(conn, g.id, state, "admin-1", "test")


def allows(policy: ScopePolicy, g: GrantRecord, column: str = "age") -> bool:
    return policy.can_access(g.operator, g.id, column_object("people", column), "read")


def events(w: World, type_: str, grant_id: str) -> list[Any]:
    with w.engine.connect() as conn:
        return [e for e in iter_events(conn) if e.type == type_ and e.grant_id == grant_id]


# -- the state table -------------------------------------------------------------------


def test_every_state_has_an_entry_and_the_ends_are_final() -> None:
    assert set(TRANSITIONS) == set(State)
    assert TRANSITIONS[State.REVOKED] == set() and TRANSITIONS[State.EXPIRED] == set()
    assert TRANSITIONS[State.ACTIVE] == {State.SUSPENDED, State.REVOKED, State.EXPIRED}
    assert TRANSITIONS[State.SUSPENDED] == {State.ACTIVE, State.REVOKED, State.EXPIRED}


def test_every_illegal_move_is_refused_and_names_it(world: World) -> None:
    for i, start in enumerate(State):
        for to in State:
            if to in TRANSITIONS[start]:
                continue
            g = grant_at_state(world, start, scenario=f"s{i}-{to}")
            with (
                pytest.raises(IllegalGrantTransition, match=f"from {start} to {to}"),
                world.engine.begin() as conn,
            ):
                world.grants.transition(conn, g.id, to, "admin-1", "test")
            with world.engine.connect() as conn:
                assert world.grants.get(conn, g.id).state == start


def test_illegal_moves_answer_409_over_http(world: World) -> None:
    g = grant_at_state(world, State.REVOKED)
    for action in ("suspend", "resume", "revoke"):
        r = world.client.post(
            f"/v1/grants/{g.id}/{action}", headers=world.headers("admin"), json={"reason": "x"}
        )
        assert r.status_code == 409, r.text
        assert "from revoked to" in r.json()["detail"]
    active = issue(world, scenario="other")
    r = world.client.post(
        f"/v1/grants/{active.id}/resume", headers=world.headers("admin"), json={"reason": "x"}
    )
    assert r.status_code == 409 and "from active to active" in r.json()["detail"]
    r = world.client.post(
        f"/v1/grants/{active.id}/suspend", headers=world.headers("admin"), json={"reason": " "}
    )
    assert r.status_code == 422


# -- suspension ------------------------------------------------------------------------


@contextmanager
def suspend_hook(world: World, hook: SuspendHook) -> Iterator[None]:
    """The app's grant service with ``hook`` after its own suspension hooks, for a while."""
    grants = world.grants
    before = grants.on_suspend
    grants.on_suspend = (*before, hook)
    try:
        yield
    finally:
        grants.on_suspend = before


def test_the_app_gives_the_grant_service_its_suspension_hooks(world: World) -> None:
    """Suspending a grant cancels its queued jobs and suspends its products: the hooks
    are the grant service's constructor arguments, from create_app, nothing global."""
    assert world.grants.on_suspend == (cancel_queued_for_grant, suspend_grant_products)
    assert world.app.state.grants is world.grants


def test_suspension_stops_at_once_calls_the_hooks_and_resume_restores(world: World) -> None:
    called: list[str] = []

    def hook(conn: sa.Connection, grant_id: str) -> None:
        called.append(grant_id)

    with suspend_hook(world, hook):
        g = issue(world)
        policy = world.grants.scope
        assert allows(policy, g) and allows(policy, g, "income")
        assert not allows(policy, g, "name")  # never granted: minimum necessary
        with world.engine.begin() as conn:
            assert world.grants.active_grant(conn, g.id).key_id == g.key_id
        r = world.client.post(
            f"/v1/grants/{g.id}/suspend", headers=world.headers("provider"), json={"reason": "r"}
        )
        assert r.status_code == 200 and r.json()["state"] == "suspended"
        assert called == [g.id]
        assert not allows(policy, g)
        assert world.app.state.scope is policy  # the app's one policy: job checks see it
        # Persisted: another process loading the lines denies too.
        assert not allows(ScopePolicy.from_engine(world.engine), g)
        with pytest.raises(GrantInactive, match="suspended"):
            world.grants.use(g.id)
        held = r.json()["holds"]
        assert [(h["holder_kind"], h["holder"], h["reason"]) for h in held] == [
            ("provider", "provider-1", "r")
        ]
        # Only the provider that stopped it lifts its stop (the administrators hold none).
        r = world.client.post(
            f"/v1/grants/{g.id}/resume", headers=world.headers("admin"), json={"reason": "fixed"}
        )
        assert r.status_code == 409 and "held by provider provider-1" in r.json()["detail"]
        r = world.client.post(
            f"/v1/grants/{g.id}/resume", headers=world.headers("provider"), json={"reason": "fixed"}
        )
        assert r.status_code == 200 and r.json()["state"] == "active" and r.json()["holds"] == []
        assert allows(policy, g) and allows(ScopePolicy.from_engine(world.engine), g)
        assert world.grants.use(g.id).grant_id == g.id
        moves = [(e.detail["from"], e.detail["to"]) for e in events(world, "grant.state", g.id)]
        assert moves == [(None, "active"), ("active", "suspended"), ("suspended", "active")]
        holds = [
            (e.detail["action"], e.detail["holder"]) for e in events(world, "grant.hold", g.id)
        ]
        assert holds == [("placed", "provider-1"), ("lifted", "provider-1")]


def test_a_failing_hook_undoes_the_whole_suspension(world: World) -> None:
    def broken(conn: sa.Connection, grant_id: str) -> None:
        raise RuntimeError("queue unavailable")

    g = issue(world)
    with (
        suspend_hook(world, broken),
        pytest.raises(RuntimeError),
        world.engine.begin() as conn,
    ):
        world.grants.suspend(conn, g.id, ADMINISTRATORS, "admin-1", "r")
    with world.engine.connect() as conn:
        assert world.grants.get(conn, g.id).state == State.ACTIVE
        assert world.grants.get(conn, g.id).holds == ()  # the hold rolled back with it
    assert allows(world.grants.scope, g)  # memory reloaded from the store
    assert len(events(world, "grant.state", g.id)) == 1


def test_providers_govern_only_grants_on_their_datasets(world: World) -> None:
    g = issue(world)
    other = world.client.post(
        f"/v1/grants/{g.id}/suspend", headers=world.headers("provider-2"), json={"reason": "x"}
    )
    assert other.status_code == 403 and "not a provider" in other.json()["detail"]
    unseen = world.client.get(f"/v1/grants/{g.id}", headers=world.headers("provider-2"))
    assert unseen.status_code == 403
    seen = world.client.get(f"/v1/grants/{g.id}", headers=world.headers("provider"))
    assert seen.status_code == 200 and "pseudonym_key" not in seen.text
    assert seen.json()["datasets"] == [{"dataset": "people", "columns": ["age", "income"]}]


def test_emergency_stop_holds_every_live_grant_on_the_dataset(world: World) -> None:
    a = issue(world, scenario="a")
    b = issue(world, scenario="b", operator="operator-2")
    tax = issue(world, scenario="c", dataset="tax")
    r = world.client.post(
        "/v1/datasets/people/emergency-stop", headers=world.headers("admin"), json={"reason": "x"}
    )
    assert r.status_code == 200 and sorted(r.json()["suspended"]) == sorted([a.id, b.id])
    assert r.json()["already_held"] == []
    with world.engine.connect() as conn:
        states = {g.id: g.state for g in world.grants.find(conn)}
        assert world.grants.get(conn, a.id).holders == (ADMINISTRATORS,)
    assert states == {a.id: State.SUSPENDED, b.id: State.SUSPENDED, tax.id: State.ACTIVE}
    assert not allows(world.grants.scope, a) and not allows(world.grants.scope, b)
    again = world.client.post(
        "/v1/datasets/people/emergency-stop", headers=world.headers("admin"), json={"reason": "y"}
    )
    assert again.json()["suspended"] == [] and sorted(again.json()["already_held"]) == sorted(
        [a.id, b.id]
    )
    lifted = world.client.post(
        f"/v1/grants/{a.id}/resume", headers=world.headers("admin"), json={"reason": "over"}
    )
    assert lifted.status_code == 200 and lifted.json()["state"] == "active"


# -- revocation and expiry ---------------------------------------------------------------


def test_revocation_destroys_the_views_and_entity_maps_with_records(world: World) -> None:
    g = issue(world)
    cache = world.data_dir / "cache"
    registry = world.app.state.registry
    builder = ViewBuilder(registry, PolicyStore(world.data_dir), cache)
    with world.engine.begin() as conn:
        view_grant = world.grants.active_grant(conn, g.id)
    built = builder.build(view_grant)
    assert built.views and all(v.path.is_file() for v in built.views)
    maps = EntityMaps(cache, ledger_secret(world.data_dir))
    map_file = maps.build(view_grant, registry.get("people"))
    files = [v.path for v in built.views] + [map_file]
    r = world.client.post(
        f"/v1/grants/{g.id}/revoke", headers=world.headers("admin"), json={"reason": "ended"}
    )
    assert r.status_code == 200 and r.json()["state"] == "revoked"
    assert not any(p.exists() for p in files) and not built.directory.exists()
    records = events(world, "destruction", g.id)
    assert len(records) == 3  # the key too (the complete set: tests/gateway/sweep)
    for e in records:
        key = e.detail["what"].startswith("pseudonym key")
        assert e.detail["files"] >= (0 if key else 1)
        assert len(e.detail["sha256"]) == 64
        assert e.detail["how"] and e.detail["when"] and e.detail["because"] == "revoked"
    assert {"views", "entity", "pseudonym"} == {e.detail["what"].split()[0] for e in records}
    assert world.grants.scope.rules(g.id) == []
    assert ScopePolicy.from_engine(world.engine).rules(g.id) == []
    with pytest.raises(GrantInactive, match="revoked"):
        world.grants.use(g.id)


def test_expiry_is_enforced_on_use(world: World) -> None:
    now = datetime.now(UTC)
    g = issue(world, days=10, now=now)
    assert world.grants.use(g.id, now + timedelta(days=9)).grant_id == g.id
    with pytest.raises(GrantInactive, match="expired"):
        world.grants.use(g.id, now + timedelta(days=10))
    with world.engine.connect() as conn:
        assert world.grants.get(conn, g.id).state == State.EXPIRED  # committed despite refusal
    assert not allows(world.grants.scope, g)
    assert events(world, "grant.state", g.id)[-1].detail["to"] == "expired"
    with pytest.raises(GrantInactive, match="expired"):
        world.grants.use(g.id, now)


def test_expire_due_sweeps_live_grants_past_their_term(world: World) -> None:
    now = datetime.now(UTC)
    short = issue(world, scenario="short", days=1, now=now)
    long = issue(world, scenario="long", days=100, now=now)
    with world.engine.begin() as conn:
        assert world.grants.expire_due(conn, now + timedelta(days=2)) == [short.id]
        assert world.grants.get(conn, long.id).state == State.ACTIVE


# -- issuing -----------------------------------------------------------------------------


def test_a_grant_runs_at_most_three_calendar_years(world: World) -> None:
    now = datetime.now(UTC)
    longest = (years_after(now) - now).days
    with pytest.raises(GrantError, match="at most 3 years"):
        issue(world, days=longest + 1, now=now)
    assert issue(world, days=longest, now=now).state == State.ACTIVE
    leap = datetime(2028, 2, 29, 12, tzinfo=UTC)
    assert years_after(leap) == datetime(2031, 2, 28, 12, tzinfo=UTC)


def test_time_comes_from_the_services_clock(world: World) -> None:
    """Without a caller's ``now``, the grant service's clock dates the moves and decides
    expiry (the clock ``create_app`` gives it is the system's)."""
    g = issue(world, days=30, now=T0)
    grants = world.grants
    before = grants.clock
    grants.clock = lambda: T0 + timedelta(days=1)
    try:
        with world.engine.begin() as conn:
            stopped = grants.suspend(conn, g.id, ADMINISTRATORS, "admin-1", "audit")
        assert stopped.state_changed_at == T0 + timedelta(days=1)
        grants.clock = lambda: T0 + timedelta(days=31)
        with world.engine.begin() as conn:
            assert grants.expire_due(conn) == [g.id]
            assert grants.get(conn, g.id).state_changed_at == T0 + timedelta(days=31)
    finally:
        grants.clock = before


def test_the_maximum_can_be_lowered_on_the_app(store_url: str, tmp_path: Path) -> None:
    app = create_app(GatewaySettings(data_dir=tmp_path / "v", database_url=store_url))
    app.state.grant_max_days = 365
    try:
        assert grant_service(app).max_days == 365
    finally:
        app.state.engine.dispose()


def test_only_visible_listed_columns_are_granted(world: World) -> None:
    with pytest.raises(GrantError, match="hidden by the exposure policy"):
        issue(world, columns=("age", "name"))
    with pytest.raises(GrantError, match="no column 'salary'"):
        issue(world, columns=("salary",))
    with pytest.raises(GrantError, match="no dataset"):
        issue(world, dataset="unknown")
    with pytest.raises(GrantError, match="not an enabled operator"):
        issue(world, operator="auditor-1")
    g = issue(world, columns=("age",))
    objects = {r.object for r in world.grants.scope.rules(g.id)}
    assert objects == {"dataset:people", "dataset:people/column:age"}
    assert {r.action for r in world.grants.scope.rules(g.id)} == {"read", "aggregate", "join"}


def test_one_scenario_one_authorization(world: World) -> None:
    issue(world, scenario="same")
    with pytest.raises(GrantError, match="one scenario, one authorization"):
        issue(world, scenario="same")


def test_the_key_is_stored_but_never_shown_or_audited(world: World) -> None:
    g = issue(world)
    with world.engine.connect() as conn:
        key = conn.execute(
            sa.select(grants_table.c.pseudonym_key).where(grants_table.c.id == g.id)
        ).scalar_one()
    assert len(bytes.fromhex(key)) == 32
    listed = world.client.get("/v1/grants", headers=world.headers("operator"))
    assert listed.status_code == 200 and [x["id"] for x in listed.json()] == [g.id]
    assert key not in listed.text
    assert world.client.get("/v1/grants", headers=world.headers("operator-2")).json() == []
    with world.engine.connect() as conn:
        assert all(key not in str(e.detail) for e in iter_events(conn))


def test_grants_suspended_before_holds_get_the_administrators_hold(store_url: str) -> None:
    """Migration 0009: a grant suspended under the old flag keeps its stop, as the
    administrators' hold (its stored reason and time), which only they lift."""
    engine = make_engine(store_url)
    try:
        config = alembic_config()
        with engine.begin() as conn:
            config.attributes[CONNECTION] = conn
            command.upgrade(config, "0008")
        at = datetime(2026, 6, 1, 8, tzinfo=UTC)
        row = {"operator": "op", "purpose": "p", "scopes": [], "valid_from": at,
               "valid_until": at + timedelta(days=30), "pseudonym_key": "00" * 32,
               "key_id": "k-1", "request_id": None, "created_by": "admin",
               "created_at": at, "state_changed_at": at}  # fmt: skip
        with engine.begin() as conn:
            conn.execute(accounts_table.insert().values(
                name="op", display_name="op", roles=["operator"], created_at=at))  # fmt: skip
            conn.execute(
                grants_table.insert().values(
                    id="g-stopped", scenario="a", state="suspended", state_reason="audit", **row
                )
            )
            conn.execute(
                grants_table.insert().values(
                    id="g-active", scenario="b", state="active", state_reason="issued", **row
                )
            )
        migrate(engine)
        with engine.connect() as conn:
            held = holds_of(conn, ["g-stopped", "g-active"])
        assert set(held) == {"g-stopped"}
        (hold,) = held["g-stopped"]
        assert (hold.holder, hold.reason, hold.placed_at) == (ADMINISTRATORS, "audit", at)
    finally:
        engine.dispose()


# -- the access matrix --------------------------------------------------------------------


def call(client: TestClient, method: str, path: str, token: str | None) -> Any:
    url = path
    for key, value in SAMPLE_PATH.items():
        url = url.replace(key, value)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.request(method, url, headers=headers, json=SAMPLE_BODY.get((method, path)))


@pytest.mark.parametrize(("method", "path"), sorted(ACCESS))
def test_access_matrix(world: World, method: str, path: str) -> None:
    allowed = ACCESS[(method, path)]
    for role in ROLES:
        response = call(world.client, method, path, world.tokens[role])
        if role in allowed:
            assert response.status_code not in (401, 403, 500), (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
            assert "needs the role" in response.json()["detail"]
    assert call(world.client, method, path, None).status_code == 401
    assert call(world.client, method, path, "dsr_000000000000_" + "A" * 43).status_code == 401
