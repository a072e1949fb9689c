"""The console's test fixtures: a gateway with an account per role signed in through
the console's own forms (``console``), and a governed dataset with a grant and a data
request on it (``governed``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.grants.service import grant_service
from gateway.identity import create_account, issue_token
from gateway.providers.service import provider_service
from gateway.requests.service import request_service
from gateway.settings import GatewaySettings
from sandbox.synthetic.demo import generate_city
from tests.support.city import POLICIES
from tests.support.console import BASE, ROLES, Console


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    app = create_app(GatewaySettings(data_dir=tmp_path / "var"))
    tokens = {}
    with app.state.engine.begin() as conn:
        for role in ROLES:
            create_account(conn, role, {role}, actor="test")
            tokens[role] = issue_token(conn, role, actor="test")
        create_account(
            conn, "mallory", {"reviewer"}, display_name="<script>alert(1)</script>", actor="test"
        )
        tokens["mallory"] = issue_token(conn, "mallory", actor="test")
    with TestClient(app, base_url=BASE) as client:
        yield Console(client, tokens)
    app.state.engine.dispose()


@pytest.fixture
def governed(console: Console, tmp_path: Path) -> Console:
    """The residents dataset registered by ``provider`` with its policy, and a grant on it."""
    city = generate_city(tmp_path / "city", residents=300, enterprises=40)
    datasets = provider_service(console.app)
    datasets.register(city["residents"], name="residents", entity_column="person_id",
                      provider="provider")  # fmt: skip
    text = (POLICIES / "residents.yaml").read_text(encoding="utf-8")
    datasets.apply_policy("residents", text, "provider")
    with console.app.state.engine.begin() as conn:
        grant_service(console.app).create(
            conn, operator="operator", scenario="district <b>population</b>",
            purpose="planning", scopes=[("residents", ["district_code", "gender"])],
            valid_until=datetime.now(UTC) + timedelta(days=30), actor="admin",
        )  # fmt: skip
        request_service(console.app).create(
            conn, operator="operator", scenario="tax", purpose="p", content="c", use="u",
            scopes=[("residents", ["district_code"])],
        )  # fmt: skip
    return console
