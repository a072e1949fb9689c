"""The console's test fixtures: a gateway with an account per role signed in through
the console's own forms (``console``), and a governed dataset with a grant and a data
request on it (``governed``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.grants.service import grant_service
from gateway.identity import Role, create_account, issue_token
from gateway.providers.service import provider_service
from gateway.requests.service import request_service
from gateway.settings import GatewaySettings
from gateway.store.tables import audit_events
from sandbox.demo import generate_city
from tests.sandbox.city import POLICIES

ROLES = [r.value for r in Role]
BASE = "http://testserver"


class Console:
    def __init__(self, client: TestClient, tokens: dict[str, str]) -> None:
        self.client, self.tokens = client, tokens

    @property
    def app(self):  # type: ignore[no-untyped-def]
        return self.client.app

    def login(self, who: str) -> str:
        """Sign in as ``who``; the session's CSRF token."""
        self.client.cookies.clear()
        form = self.client.get("/console/login")
        token = csrf_of(form.text)
        done = self.client.post(
            "/console/login",
            data={"token": self.tokens[who], "csrf": token, "next": "/console/"},
            follow_redirects=False,
        )
        assert done.status_code == 303, done.text
        return csrf_of(self.client.get("/console/").text)

    def events(self, kind: str) -> list[dict[str, object]]:
        with self.app.state.engine.connect() as conn:
            rows = conn.execute(
                sa.select(audit_events.c.actor, audit_events.c.detail)
                .where(audit_events.c.type == kind)
                .order_by(audit_events.c.id)
            ).all()
        return [{"actor": r[0], **r[1]} for r in rows]


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:2000]
    return found.group(1)


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
