"""A gateway whose services all read one clock the test moves.

``MovableClock`` is that clock. ``ClockedWorld`` is the gateway: an account per
role (``<role>-1``) plus ``provider-2`` and ``operator-2``, with ``people``
from provider-1 and ``tax`` from provider-2 (``tests.support.grants_world.register``),
no scheduler thread (tests sweep when they say: :meth:`ClockedWorld.sweep`).
``open_world`` builds one for a test's duration; the request, termination and
incident worlds add their own steps to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.audit.chain import iter_events
from gateway.grants.service import GrantService, grant_service
from gateway.identity import Role, create_account, issue_token
from gateway.settings import GatewaySettings
from gateway.sweep.tasks import SweepContext
from tests.support.grants_world import register

EXTRA = {"provider-2": "provider", "operator-2": "operator"}


@dataclass
class MovableClock:
    """The time every service of the test's gateway reads; the test moves it."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class ClockedWorld:
    app: FastAPI
    client: TestClient
    tokens: dict[str, str]
    clock: MovableClock

    @property
    def engine(self) -> sa.Engine:
        engine: sa.Engine = self.app.state.engine
        return engine

    @property
    def grants(self) -> GrantService:
        return grant_service(self.app)

    @property
    def data_dir(self) -> Path:
        path: Path = self.app.state.settings.data_dir
        return path

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def post(self, who: str, url: str, body: dict[str, Any] | None = None) -> Any:
        return self.client.post(url, headers=self.headers(who), json=body or {})

    def get(self, who: str, url: str, **params: Any) -> Any:
        return self.client.get(url, headers=self.headers(who), params=params)

    def notice_keys(self, who: str) -> set[str]:
        return {n["key"] for n in self.get(who, "/v1/notices").json()}

    def events(self, type_: str) -> list[Any]:
        with self.engine.connect() as conn:
            return [e for e in iter_events(conn) if e.type == type_]

    def context(self) -> SweepContext:
        """What a sweep task is given, at the clock's time."""
        return SweepContext(
            engine=self.engine,
            settings=self.app.state.settings,
            grants=self.grants,
            calendar=self.app.state.calendar,
            now=self.clock.now,
        )

    def sweep(self, task: Callable[[SweepContext], list[str]]) -> list[str]:
        """Run ``task`` as the sweep would, at the clock's time."""
        return task(self.context())


W = TypeVar("W", bound=ClockedWorld)


def open_world(kind: type[W], store_url: str, tmp_path: Path, start: datetime) -> Iterator[W]:
    """A ``kind`` of world from ``start`` (see the module docstring), its client entered."""
    clock = MovableClock(start)
    settings = GatewaySettings(
        data_dir=tmp_path / "var", database_url=store_url, sweep_every_seconds=0
    )
    app = create_app(settings, clock=clock)
    tokens = {}
    with app.state.engine.begin() as conn:
        accounts = {f"{r.value}-1": r.value for r in Role} | EXTRA
        for name, role in accounts.items():
            create_account(conn, name, {role}, actor="test")
            tokens[name] = issue_token(conn, name, actor="test")
    register(app)
    register(app, "tax", provider="provider-2")
    with TestClient(app) as client:
        yield kind(app, client, tokens, clock)
    app.state.engine.dispose()
