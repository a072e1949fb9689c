"""An in-process gateway with an account per role, for security tests.

Plain functions, no fixture soup: ``make_gateway(data_dir)`` builds the app
from ``create_app`` on a real SQLite file (with a job runtime when asked),
creates one account per role and returns a small client wrapper whose
methods take the role name. ``grant_through_requests`` takes a data request
through formal review, provider review and supply, as the rules ask.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.identity import create_account, issue_token
from gateway.settings import GatewaySettings

ROLES = {
    "operator": "operator",
    "operator2": "operator",
    "provider": "provider",
    "provider2": "provider",
    "reviewer": "reviewer",
    "reviewer2": "reviewer",
    "admin": "admin",
    "auditor": "auditor",
    "consumer": "consumer",
}


@dataclass
class Gateway:
    app: FastAPI
    client: TestClient
    tokens: dict[str, str]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, who: str, url: str, **kw: Any) -> httpx.Response:
        return self.client.get(url, headers=self.auth(who), **kw)

    def post(self, who: str, url: str, **kw: Any) -> httpx.Response:
        return self.client.post(url, headers=self.auth(who), **kw)

    def upload(
        self, who: str, name: str, filename: str, content: bytes, entity_column: str, **extra: str
    ) -> httpx.Response:
        return self.client.post(
            "/v1/datasets",
            headers=self.auth(who),
            files={"file": (filename, content, "application/octet-stream")},
            data={"name": name, "entity_column": entity_column, **extra},
        )

    def put_policy(self, who: str, name: str, text: str) -> httpx.Response:
        return self.client.put(
            f"/v1/datasets/{name}/policy",
            headers={**self.auth(who), "Content-Type": "application/yaml"},
            content=text.encode(),
        )

    def grant_through_requests(
        self,
        operator: str,
        provider: str,
        scenario: str,
        datasets: list[dict[str, Any]],
        days: int = 30,
    ) -> str:
        """A data request taken to a grant; the grant's id."""
        made = self.post(
            operator,
            "/v1/requests",
            json={
                "scenario": scenario,
                "purpose": "statistics for service planning",
                "content": "the listed columns",
                "use": "aggregate statistics only",
                "datasets": datasets,
            },
        )
        assert made.status_code == 201, made.text
        rid = made.json()["id"]
        r = self.post("admin", f"/v1/requests/{rid}/formal-review", json={"decision": "pass"})
        assert r.status_code == 200, r.text
        r = self.post(provider, f"/v1/requests/{rid}/provider-review", json={"decision": "approve"})
        assert r.status_code == 200, r.text
        until = (datetime.now(UTC) + timedelta(days=days)).isoformat()
        r = self.post(provider, f"/v1/requests/{rid}/supply", json={"valid_until": until})
        assert r.status_code == 201, r.text
        return str(r.json()["grant_id"])


@contextmanager
def make_gateway(
    data_dir: Path, runtime: Any = None, *, worker: bool = True, **settings: Any
) -> Iterator[Gateway]:
    """The gateway over ``data_dir`` (SQLite there), an account and a token per role;
    ``worker=False`` leaves running queued jobs to the test (``JobWorker.run_one``)."""
    config = GatewaySettings(data_dir=data_dir, database_url="", **settings)
    app = create_app(config, runtime)
    app.state.worker_autostart = worker
    tokens = {}
    with app.state.engine.begin() as conn:
        for name, role in ROLES.items():
            create_account(conn, name, {role}, actor="test")
            tokens[name] = issue_token(conn, name, actor="test")
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Gateway(app, client, tokens)
