"""The scheduler's thread sweeps on its own; one task's failure stops neither the others
nor the thread; two sweeps at once act once; ``dsr sweep`` sweeps the local store
(SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from gateway.app import create_app
from gateway.cli import app as dsr
from gateway.client.options import ClientContext
from gateway.errors import GatewayError
from gateway.grants.model import State
from gateway.jobs.model import Outcome
from gateway.jobs.model import State as JobState
from gateway.settings import GatewaySettings
from gateway.sweep import cli as sweep_cli
from gateway.sweep.expiry import EXPIRE_TASK
from gateway.sweep.leftovers import LEFTOVERS_TASK
from gateway.sweep.router import context_of
from gateway.sweep.run import SweepResult, TaskFailed, run_sweep
from gateway.sweep.scheduler import Sweeper
from gateway.sweep.tasks import SweepContext, Task
from gateway.sweep.term_notice import TERM_NOTICE_TASK
from tests.support.grants_world import World
from tests.support.sweep_world import T0, Hands, copies_of, events, grant, job, sweep_world

WAIT = 20.0  # seconds an Event may take before the test fails (never slept through)
gateway = contextmanager(sweep_world)


def _state(world: World, grant_id: str) -> State:
    with world.engine.connect() as conn:
        return world.grants.get(conn, grant_id).state


def _sweeps_after_now(event: threading.Event) -> None:
    """Wait for a sweep that started after this call (the one running may have read the
    clock before): two ends of a sweep."""
    for _ in range(2):
        event.clear()
        assert event.wait(WAIT), "the scheduler did not sweep"


def test_the_scheduler_expires_a_grant_nobody_uses(store_url: str, tmp_path: Path) -> None:
    hands = Hands()
    with gateway(store_url, tmp_path / "var", hands, every=0.02) as world:
        g = grant(world, T0 + timedelta(days=30))
        sweeper = world.app.state.sweeper
        _sweeps_after_now(sweeper.ran)
        assert _state(world, g.id) == State.ACTIVE
        hands.at = T0 + timedelta(days=30)
        _sweeps_after_now(sweeper.ran)
        assert _state(world, g.id) == State.EXPIRED
        runs = events(world, "sweep.run")  # idle sweeps are not events
        assert [r.detail["done"]["grants.expire"] for r in runs] == [0, 1]
        assert [r.detail["done"]["grants.term_notice"] for r in runs] == [1, 0]
        assert {r.actor for r in runs} == {"system"}


def _boom(ctx: SweepContext) -> list[str]:
    raise RuntimeError("a bug with /secret/path in its message")


def _half(ctx: SweepContext) -> list[str]:
    raise TaskFailed("one of two not done", ["the first done"])


def test_a_failing_task_does_not_stop_the_others(store_url: str, tmp_path: Path) -> None:
    hands = Hands()
    with gateway(store_url, tmp_path / "var", hands, every=0) as world:
        assert world.app.state.sweeper is None  # 0: no scheduler thread
        g = grant(world, T0 + timedelta(days=30))
        hands.at = T0 + timedelta(days=31)
        tasks = [Task("boom", _boom), Task("half", _half), EXPIRE_TASK]
        result = run_sweep(context_of(world.app), tasks)
        assert _state(world, g.id) == State.EXPIRED
        assert result.failures == {
            "boom": "RuntimeError (see the gateway's log)",
            "half": "TaskFailed: one of two not done",
        }
        assert result.lines[0] == "the first done" and g.id in result.lines[1]
        (run,) = events(world, "sweep.run")
        assert run.detail["failures"] == result.failures
        assert run.detail["done"] == {"boom": 0, "half": 1, "grants.expire": 1}
        assert "/secret/path" not in json.dumps(run.detail)


def test_the_thread_outlives_a_sweep_that_raises() -> None:
    calls: list[int] = []
    twice = threading.Event()

    def sweep() -> SweepResult:
        calls.append(1)
        if len(calls) >= 2:
            twice.set()
        raise GatewayError("the store is down")

    sweeper = Sweeper(sweep, 0.01)
    sweeper.start()
    try:
        assert twice.wait(WAIT)
    finally:
        sweeper.stop()
    assert len(calls) >= 2


@pytest.fixture
def two(store_url: str, tmp_path: Path) -> Iterator[tuple[World, World, Hands]]:
    """Two gateways on one store and one data directory, on one clock."""
    hands = Hands()
    with gateway(store_url, tmp_path / "var", hands) as world:
        other = create_app(world.app.state.settings, clock=hands)
        try:
            yield world, World(other, world.client, world.tokens), hands
        finally:
            other.state.engine.dispose()


def test_two_sweeps_at_once_act_once(two: tuple[World, World, Hands]) -> None:
    one, other, hands = two
    ending = [grant(one, T0 + timedelta(days=30), scenario=f"s{i}") for i in range(3)]
    told = [grant(one, T0 + timedelta(days=100), scenario=f"t{i}") for i in range(2)]
    copies_of(one, ending[0], T0 + timedelta(days=1))
    gone = grant(one, T0 + timedelta(days=100), scenario="gone")
    with one.engine.begin() as conn:
        one.grants.transition(conn, gone.id, State.REVOKED, "admin-1", "ended", now=T0)
    job(one, gone, "job-late", JobState.REFUSED, Outcome.SCOPE_DENIED)  # stored after the end
    hands.at = T0 + timedelta(days=30)
    contexts = [context_of(w.app) for w in (one, other)]
    barrier = threading.Barrier(2)
    results: list[SweepResult | BaseException] = []

    def sweep(ctx: SweepContext) -> None:
        barrier.wait()
        try:
            results.append(run_sweep(ctx, [EXPIRE_TASK, LEFTOVERS_TASK, TERM_NOTICE_TASK]))
        except BaseException as e:  # reported below
            results.append(e)

    threads = [threading.Thread(target=sweep, args=(c,)) for c in contexts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT * 3)
    assert all(isinstance(r, SweepResult) and not r.failures for r in results), results
    lines = [line for r in results if isinstance(r, SweepResult) for line in r.lines]
    assert sorted(line.split()[1].rstrip(":") for line in lines) == sorted(
        g.id for g in [*ending, *told, gone]
    )
    (late,) = events(one, "destruction", gone.id)[-1:]
    assert "job-late" in late.detail["what"]
    assert len([e for e in events(one, "destruction") if "job-late" in e.detail["what"]]) == 1
    for g in ending:
        assert [e.detail["to"] for e in events(one, "grant.state", g.id)] == ["active", "expired"]
    destroyed = [e.detail["what"].split()[0] for e in events(one, "destruction", ending[0].id)]
    assert sorted(destroyed) == sorted(
        ["pseudonym", "views", "dummy", "entity", "unreleased", "tables"]
    )
    for g in told:
        assert len(events(one, "notice.sent", g.id)) == 1


def test_dsr_sweep_sweeps_the_local_store(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = datetime.now(UTC) - timedelta(days=40)  # the CLI sweeps on the system's clock
    with gateway(store_url, tmp_path / "var", Hands(at)) as world:
        ended = grant(world, at + timedelta(days=30), at=at)
    monkeypatch.setenv("DSR_GATEWAY_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DSR_GATEWAY_DATABASE_URL", store_url)
    monkeypatch.setenv("DSR_CONFIG", str(tmp_path / "no-dsr-config.toml"))
    for name in ("DSR_SERVER", "DSR_TOKEN", "DSR_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    done = runner.invoke(dsr, ["sweep"])
    assert done.exit_code == 0, done.output
    assert f"grant {ended.id} expired" in done.stdout
    again = runner.invoke(dsr, ["sweep", "--json"])
    assert again.exit_code == 0 and json.loads(again.stdout)["lines"] == []
    settings = GatewaySettings(data_dir=tmp_path / "var", database_url=store_url)
    app = create_app(settings)
    try:
        world = World(app, None, {})  # type: ignore[arg-type]  # the store only
        assert _state(world, ended.id) == State.EXPIRED
        runs = events(world, "sweep.run")
        assert len(runs) == 2 and all(r.actor.startswith("local:") for r in runs)
    finally:
        app.state.engine.dispose()


def test_dsr_sweep_asks_the_gateway_when_one_is_named(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --server, ``dsr sweep`` is POST /v1/admin/sweep (the transport is the test's
    client: the route, its rule and its answer are the gateway's own)."""
    hands = Hands()
    with gateway(store_url, tmp_path / "var", hands) as world:
        ended = grant(world, T0 + timedelta(days=30))
        hands.at = T0 + timedelta(days=31)

        class Api:
            def __init__(self, token: str) -> None:
                self.headers = {"Authorization": f"Bearer {token}"}

            def post(self, path: str) -> object:
                r = world.client.post(path, headers=self.headers)
                if r.status_code != 200:
                    raise typer.Exit(1)
                return r.json()

        @contextmanager
        def session(gw: ClientContext) -> Iterator[Api]:
            assert gw.server == "http://gateway.test"
            yield Api(str(gw.token))

        monkeypatch.setattr(sweep_cli, "session", session)
        runner = CliRunner()
        base = ["sweep", "--server", "http://gateway.test", "--token"]
        refused = runner.invoke(dsr, [*base, world.tokens["operator"]])
        assert refused.exit_code == 1 and _state(world, ended.id) == State.ACTIVE
        done = runner.invoke(dsr, [*base, world.tokens["admin"], "--json"])
        assert done.exit_code == 0, done.output
        assert any(ended.id in line for line in json.loads(done.stdout)["lines"])
        assert _state(world, ended.id) == State.EXPIRED
        assert [e.actor for e in events(world, "sweep.run")] == ["admin-1"]
