"""Gateway test fixtures: an engine on a fresh store, and a gateway whose worker runs
jobs against the synthetic city, on Docker (runc) or on the fake backend.

``engine`` is migrated to the newest revision, on each store of ``store_url``
(``tests/conftest.py``: SQLite and PostgreSQL). ``city`` and ``gw`` run jobs in
real containers (runc); ``fake_city`` and ``fake_gw`` run the same pipeline on
``tests.support.fakebackend`` (host subprocesses, no isolation) for tests of the
trusted side's rules that run in seconds without Docker. ``plain`` is a gateway
without a sandbox. The plain functions behind them are ``tests.support.gateway_jobs``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from gateway.store import make_engine, migrate
from sandbox.run.backends.base import Backend
from sandbox.settings import SandboxSettings
from tests.support.city import City, make_city
from tests.support.engine import require_engine
from tests.support.fakebackend import FakeBackend
from tests.support.gateway_jobs import Gateway, open_gateway, runtime_for


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    """An engine on a fresh database, migrated to the newest revision."""
    eng = make_engine(store_url)
    migrate(eng)
    try:
        yield eng
    finally:
        eng.dispose()


# -- a gateway running jobs ----------------------------------------------------------------


@pytest.fixture(scope="module")
def runc() -> Backend:
    require_engine()
    from sandbox.run.backends.docker import DockerBackend

    return DockerBackend(SandboxSettings(runtime="runc"))


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory, runc: Backend) -> Iterator[City]:
    city = make_city(tmp_path_factory.mktemp("gwcity"), runc, residents=3000, enterprises=600)
    yield city
    city.ledger.close()


@pytest.fixture
def gw(store_url: str, tmp_path: Path, city: City, runc: Backend) -> Iterator[Gateway]:
    """A gateway with the worker running jobs against the city, in containers."""
    runtime = runtime_for(city, runc)
    g = open_gateway(store_url, tmp_path / "var", runtime)
    with g.client:
        yield g
    runtime.ledger.close()
    g.app.state.engine.dispose()


@pytest.fixture
def plain(store_url: str, tmp_path: Path) -> Iterator[Gateway]:
    """A gateway without a sandbox: submissions queue and nothing runs."""
    g = open_gateway(store_url, tmp_path / "var", None)
    with g.client:
        yield g
    g.app.state.engine.dispose()


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> FakeBackend:
    """The fake backend: the in-container code as host subprocesses, no Docker."""
    return FakeBackend(tmp_path_factory.mktemp("fake-sandboxes"))


@pytest.fixture(scope="module")
def fake_city(tmp_path_factory: pytest.TempPathFactory, fake: FakeBackend) -> Iterator[City]:
    city = make_city(tmp_path_factory.mktemp("fakecity"), fake, residents=3000, enterprises=600)
    yield city
    city.ledger.close()


@pytest.fixture
def fake_gw(
    store_url: str, tmp_path: Path, fake_city: City, fake: FakeBackend
) -> Iterator[Gateway]:
    """A gateway with the worker running jobs against the city on the fake backend."""
    runtime = runtime_for(fake_city, fake)
    g = open_gateway(store_url, tmp_path / "var", runtime)
    with g.client:
        yield g
    runtime.ledger.close()
    g.app.state.engine.dispose()
