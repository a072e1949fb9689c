"""The report tests' history (``tests.support.reports_world``), built once per store for
the whole session: ``history`` on SQLite and PostgreSQL, ``sqlite_history`` for the tests
of formats, which do not depend on the store."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.reports_world import History, build_history
from tests.support.stores import BACKENDS


@pytest.fixture(scope="session")
def sqlite_history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    root = tmp_path_factory.mktemp("reports-sqlite")
    with build_history(f"sqlite:///{root / 'gateway.sqlite'}", root) as h:
        yield h


@pytest.fixture(scope="session")
def postgresql_history(
    tmp_path_factory: pytest.TempPathFactory, postgres_cluster: Any
) -> Iterator[History]:
    root = tmp_path_factory.mktemp("reports-postgresql")
    name = f"reports_{uuid.uuid4().hex[:12]}"
    postgres_cluster.admin(f"CREATE DATABASE {name}")
    try:
        with build_history(postgres_cluster.url(name), root) as h:
            yield h
    finally:
        postgres_cluster.admin(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(params=BACKENDS)
def history(request: pytest.FixtureRequest) -> History:
    built: History = request.getfixturevalue(f"{request.param}_history")
    return built
