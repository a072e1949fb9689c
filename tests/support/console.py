"""The web console as a signed-in browser would use it: ``Console`` wraps a test client
with a token per account, signs in through the console's own forms and reads audit
events; ``csrf_of`` finds a form's CSRF token. The fixtures are in
``tests/gateway/console/conftest.py``."""

from __future__ import annotations

import re

import sqlalchemy as sa
from fastapi.testclient import TestClient

from gateway.identity import Role
from gateway.store.tables import audit_events

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
