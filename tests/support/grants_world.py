"""A gateway for grant, data request and catalogue tests: an account per role and two
small datasets of two providers, and grants issued by the grant service.

Plain functions (the ``world`` fixture of each test file yields ``make_world``):
``people`` is provider-1's and ``tax`` provider-2's, both ``PEOPLE_CSV`` under
``PEOPLE_POLICY``; accounts are ``<role>-1`` for every role, plus ``provider-2`` and
``operator-2``. The security tests' grants over ``make_gateway`` are
``tests.support.grants``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.grants.model import GrantRecord
from gateway.grants.service import GrantService, grant_service
from gateway.identity import Role, create_account, issue_token
from gateway.settings import GatewaySettings
from sandbox.intake.policy import PolicyStore

ROLES = [r.value for r in Role]

PEOPLE_POLICY = """\
dataset: people
entity_column: person_id
k: 2
columns:
  person_id: {class: identifier, level: 4, visibility: join_key}
  name: {class: identifier, level: 4, visibility: hidden}
  age: {class: quasi_identifier, level: 2, visibility: group_key}
  income: {class: sensitive, level: 3, visibility: aggregate_only}
"""
PEOPLE_CSV = "person_id,name,age,income\n" + "".join(
    f"{110101199001010000 + i},name{i},{20 + i % 40},{1000 + 37 * i}\n" for i in range(30)
)
COLUMNS = ("age", "income")


@dataclass
class World:
    app: FastAPI
    client: TestClient
    tokens: dict[str, str]

    @property
    def grants(self) -> GrantService:
        return grant_service(self.app)

    @property
    def engine(self) -> sa.Engine:
        engine: sa.Engine = self.app.state.engine
        return engine

    @property
    def data_dir(self) -> Path:
        path: Path = self.app.state.settings.data_dir
        return path

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def register(app: FastAPI, name: str = "people", provider: str = "provider-1") -> None:
    """A tiny dataset in the app's registry, with its exposure policy applied."""
    data_dir: Path = app.state.settings.data_dir
    src = data_dir / f"{name}.csv"
    src.write_text(PEOPLE_CSV, encoding="utf-8")
    version = app.state.registry.register(
        src, name=name, entity_column="person_id", provider=provider
    )
    PolicyStore(data_dir).apply(
        PEOPLE_POLICY.replace("dataset: people", f"dataset: {name}"),
        {c.name: c.type for c in version.columns},
        dataset=name,
        author=provider,
    )


def make_world(store_url: str, tmp_path: Path) -> Iterator[World]:
    """A gateway with an account per role (plus provider-2, operator-2) and two datasets:
    ``people`` from provider-1 and ``tax`` from provider-2."""
    app = create_app(GatewaySettings(data_dir=tmp_path / "var", database_url=store_url))
    tokens = {}
    with app.state.engine.begin() as conn:
        for role in ROLES:
            create_account(conn, f"{role}-1", {role}, actor="test")
            tokens[role] = issue_token(conn, f"{role}-1", actor="test")
        create_account(conn, "provider-2", {"provider"}, actor="test")
        tokens["provider-2"] = issue_token(conn, "provider-2", actor="test")
        create_account(conn, "operator-2", {"operator"}, actor="test")
        tokens["operator-2"] = issue_token(conn, "operator-2", actor="test")
    register(app)
    register(app, "tax", provider="provider-2")
    with TestClient(app) as client:
        yield World(app, client, tokens)
    app.state.engine.dispose()


def issue(
    w: World,
    *,
    scenario: str = "elderly care planning",
    columns: tuple[str, ...] = COLUMNS,
    dataset: str = "people",
    operator: str = "operator-1",
    days: int = 365,
    now: datetime | None = None,
) -> GrantRecord:
    """A grant of ``operator`` over ``columns`` of ``dataset``, from ``now`` for ``days``."""
    now = now or datetime.now(UTC)
    with w.engine.begin() as conn:
        return w.grants.create(
            conn,
            operator=operator,
            scenario=scenario,
            purpose="plan care homes by district",
            scopes=[(dataset, columns)],
            valid_until=now + timedelta(days=days),
            valid_from=now,
            actor="admin-1",
            now=now,
        )
