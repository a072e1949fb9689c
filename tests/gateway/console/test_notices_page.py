"""The console's notices page: each account sees what was addressed to it or its roles."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.identity import Role
from gateway.notices.service import notify, to_account, to_role
from tests.support.console import Console


def test_the_notices_page_shows_the_viewers_notices_only(console: Console) -> None:
    with console.app.state.engine.begin() as conn:
        notify(conn, key="grant:g-1:term-ends", kind="grant.term_ends",
               subject="grant g-1 ends on 2026-06-02 <b>",
               audiences=[to_account("operator"), to_role(Role.ADMIN)],
               at=datetime(2026, 3, 2, tzinfo=UTC))  # fmt: skip
    console.login("operator")
    page = console.client.get("/console/notices")
    assert page.status_code == 200
    assert 'data-key="grant:g-1:term-ends"' in page.text
    assert "&lt;b&gt;" in page.text and "<b>" not in page.text.split("<main")[1]
    assert 'href="/console/notices"' in page.text  # in the navigation
    console.login("reviewer")
    page = console.client.get("/console/notices?lang=en")
    assert "No notices." in page.text and "g-1" not in page.text
