"""Fixtures shared by every test package: the Docker backend and the fake one.

Tests that need the Docker Engine use the ``docker_client``, ``runtime`` and
``backend`` fixtures; where no engine answers (or the runner image is missing)
they skip with the reason, and under CI (``CI=true``) they fail instead
(``tests.support.engine``). ``fake_backend`` runs the same jobs as host
subprocesses (``tests.support.fakebackend``): no Docker, no isolation. The
plain functions these fixtures build on live in ``tests/support/``.

``store_url`` gives a fresh, empty metadata store per test, on SQLite and on
PostgreSQL (a throwaway cluster for the session: ``tests.support.stores``).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.settings import SandboxSettings
from tests.support.engine import ROOT, RUNTIMES, require_engine, require_runtime, sandbox_objects
from tests.support.fakebackend import FakeBackend
from tests.support.stores import (
    BACKENDS,
    CLUSTER_USER,
    Cluster,
    cluster_problem,
    postgres_bindir,
    require,
)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    require_engine()
    import docker

    client = docker.from_env(timeout=120)
    yield client
    client.close()


@pytest.fixture(scope="session", params=RUNTIMES)
def runtime(request: pytest.FixtureRequest, docker_client: Any) -> str:
    name: str = request.param
    require_runtime(docker_client, name)
    return name


@pytest.fixture(scope="session")
def backend(runtime: str) -> Any:
    from sandbox.run.backends.docker import DockerBackend

    return DockerBackend(SandboxSettings(runtime=runtime))  # type: ignore[arg-type]


@pytest.fixture
def fake_backend(tmp_path_factory: pytest.TempPathFactory) -> FakeBackend:
    """A backend of host subprocesses on a directory of its own (no Docker, no isolation)."""
    return FakeBackend(tmp_path_factory.mktemp("fake-sandboxes"))


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    require(cluster_problem())
    bindir = postgres_bindir()
    assert bindir is not None
    # Not pytest's tmp dir: that is 0700 root, out of the postgres user's reach,
    # and its path can be too long for a Unix socket.
    base = Path(tempfile.mkdtemp(prefix="dsr-pg-"))
    cluster = Cluster(bindir, base, CLUSTER_USER if os.geteuid() == 0 else None)
    try:
        cluster.start()
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(base, ignore_errors=True)


_databases = iter(range(1, 1_000_000))


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of a fresh, empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gateway.sqlite'}"
        return
    cluster: Cluster = request.getfixturevalue("postgres_cluster")
    name = f"t{next(_databases)}"
    cluster.admin(f"CREATE DATABASE {name}")
    try:
        yield cluster.url(name)
    finally:
        cluster.admin(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def sandbox_containers(docker_client: Any) -> Iterator[Callable[[], list[str]]]:
    """A function listing this backend's containers and volumes still present."""

    def present() -> list[str]:
        return [name for _, name in sandbox_objects(docker_client)]

    yield present


sys.path.insert(0, str(ROOT))
