"""Data-quality feedback in the web console: an operator files through the form, the
dataset's provider answers through its form, each sees only what it may, in Chinese by
default and in English on request; a refused form says why; a form without its CSRF
token is refused."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.grants.service import grant_service
from gateway.identity import create_account, issue_token
from gateway.settings import GatewaySettings
from tests.support.console import BASE, ROLES, Console
from tests.support.grants_world import register
from tests.support.organisations import events, notice_rows

PAGE = "/console/feedback"


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    """An account per role (named by it) plus ``provider-2``; ``people`` is provider's,
    granted to operator."""
    app = create_app(GatewaySettings(data_dir=tmp_path / "var"))
    tokens = {}
    with app.state.engine.begin() as conn:
        for name in [*ROLES, "provider-2"]:
            create_account(conn, name, {name.split("-")[0]}, actor="test")
            tokens[name] = issue_token(conn, name, actor="test")
    register(app, "people", provider="provider")
    with app.state.engine.begin() as conn:
        grant_service(app).create(
            conn, operator="operator", scenario="care planning", purpose="plan care homes",
            scopes=[("people", ["age", "income"])],
            valid_until=datetime.now(UTC) + timedelta(days=30), actor="admin",
        )  # fmt: skip
    with TestClient(app, base_url=BASE) as client:
        yield Console(client, tokens)
    app.state.engine.dispose()


def test_an_operator_files_and_the_provider_answers_in_the_console(console: Console) -> None:
    c = console
    csrf = c.login("operator")
    page = c.client.get(PAGE)
    assert page.status_code == 200 and 'id="feedback-file"' in page.text
    assert '<option value="people">' in page.text
    form = {"csrf": csrf, "dataset": "people", "title": "年龄取值异常",
            "description": "Ages above 150 appear.", "columns": "age, income"}  # fmt: skip
    quoting = c.client.post(PAGE, data=form | {"description": "row 110101199001010007 is 300"})
    assert quoting.status_code == 422 and "never by quoting values" in quoting.text
    filed = c.client.post(PAGE, data=form, follow_redirects=False)
    assert filed.status_code == 303, filed.text
    issue_id = re.search(r"changed=(fb-[0-9a-f]+)", filed.headers["location"]).group(1)  # type: ignore[union-attr]
    mine = c.client.get(PAGE).text
    assert "年龄取值异常" in mine and "待答复" in mine and "/answer" not in mine

    assert "暂无数据质量问题" in _page_of(c, "provider-2")  # not its dataset
    no_csrf = c.client.post(f"{PAGE}/{issue_id}/answer", data={"text": "x"})
    assert no_csrf.status_code == 403

    csrf = c.login("provider")
    theirs = c.client.get(PAGE).text
    assert f'action="/console/feedback/{issue_id}/answer"' in theirs
    assert 'id="feedback-file"' not in theirs  # providers do not file
    answered = c.client.post(
        f"{PAGE}/{issue_id}/answer",
        data={
            "csrf": csrf,
            "text": "Birth years were loaded as ages; corrected.",
            "mark": "resolved",
        },
        follow_redirects=False,
    )
    assert answered.status_code == 303, answered.text
    after = c.client.get(PAGE).text
    assert "已解决" in after and f'action="/console/feedback/{issue_id}/answer"' not in after

    c.login("operator")
    english = c.client.get(PAGE, params={"lang": "en"}).text
    assert "Data-quality feedback" in english and "Resolved" in english
    assert "Birth years were loaded as ages; corrected." in english
    moves = [(e["actor"], e["from"], e["to"]) for e in events(c.app.state.engine, "feedback.state")]
    assert moves == [("provider", "open", "resolved")]
    told = notice_rows(c.app.state.engine, f"feedback:{issue_id}:answer:")
    assert [(a, k) for _, a, k in told] == [("account:operator", "feedback.answered")]


def test_roles_without_the_page_get_a_403_page(console: Console) -> None:
    for role in ("reviewer", "auditor", "consumer"):
        console.login(role)
        got = console.client.get(PAGE)
        assert got.status_code == 403 and "<html" in got.text
    console.login("admin")
    assert console.client.get(PAGE).status_code == 200


def _page_of(c: Console, who: str) -> str:
    c.login(who)
    return c.client.get(PAGE).text
