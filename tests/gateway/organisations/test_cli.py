"""``dsr orgs``, ``dsr feedback`` and ``dsr accounts create --organisation`` against a
gateway served over HTTP in process (no Docker): each command as its role would run it,
configured by ``DSR_SERVER``/``DSR_TOKEN``; a refusal is the server's message and exit
code 1, never a traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gateway.app import create_app
from gateway.cli import app as dsr
from gateway.grants.service import grant_service
from gateway.identity import create_account, issue_token
from gateway.settings import GatewaySettings
from tests.support.grants_world import register
from tests.support.served_gateway import serve

ACCOUNTS = {"admin-1": "admin", "op-1": "operator", "provider-1": "provider"}


class Shell:
    def __init__(self, base: str, tokens: dict[str, str], data_dir: Path) -> None:
        self.base, self.tokens, self.data_dir = base, tokens, data_dir
        self.runner = CliRunner()

    def run(self, who: str | None, *args: str) -> Any:
        env = {
            "DSR_SERVER": self.base,
            "DSR_TOKEN": self.tokens.get(who or "", ""),
            "DSR_CONFIG": str(self.data_dir / "none.toml"),
            "DSR_GATEWAY_DATA_DIR": str(self.data_dir),
            "DSR_GATEWAY_DATABASE_URL": "",
        }
        done = self.runner.invoke(dsr, list(args), env=env)
        assert "Traceback" not in done.output, done.output
        return done

    def ok(self, who: str | None, *args: str) -> str:
        done = self.run(who, *args)
        assert done.exit_code == 0, (args, done.output)
        return str(done.output)


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    data_dir = tmp_path / "var"
    app = create_app(GatewaySettings(data_dir=data_dir))
    tokens = {}
    with app.state.engine.begin() as conn:
        for name, role in ACCOUNTS.items():
            create_account(conn, name, {role}, actor="test")
            tokens[name] = issue_token(conn, name, actor="test")
    register(app, "people", provider="provider-1")
    with app.state.engine.begin() as conn:
        grant_service(app).create(
            conn, operator="op-1", scenario="care planning", purpose="plan care homes",
            scopes=[("people", ["age", "income"])],
            valid_until=datetime.now(UTC) + timedelta(days=30), actor="admin-1",
        )  # fmt: skip
    with serve(app) as base:
        yield Shell(base, tokens, data_dir)
    app.state.engine.dispose()


def test_organisations_from_the_command_line(shell: Shell) -> None:
    s = shell
    made = s.ok("admin-1", "orgs", "create", "acme-ops", "--name", "Acme ops", "--kind", "operator")
    assert "organisation acme-ops (operator)" in made
    refused = s.run("op-1", "orgs", "create", "x-1", "--name", "X", "--kind", "other")
    assert refused.exit_code == 1 and "admin" in refused.output
    assert "op-1 is a member of acme-ops" in s.ok("admin-1", "orgs", "assign", "op-1", "acme-ops")
    mine = json.loads(s.ok("op-1", "orgs", "list", "--json"))
    assert [(o["id"], o["members"]) for o in mine] == [("acme-ops", ["op-1"])]
    # A new account joins its organisation at creation, remotely and on the local store.
    s.ok("admin-1", "accounts", "create", "bank-op", "--role", "consumer",
         "--organisation", "acme-ops")  # fmt: skip
    missing = s.run("admin-1", "accounts", "create", "nobody-1", "--role", "consumer",
                    "--organisation", "no-such-org")  # fmt: skip
    assert missing.exit_code != 0 and "no organisation" in missing.output
    s.ok(None, "accounts", "create", "local-op", "--role", "operator", "--organisation",
         "acme-ops", "--local")  # fmt: skip
    shown = json.loads(s.ok("admin-1", "orgs", "show", "acme-ops", "--json"))
    assert shown["members"] == ["bank-op", "local-op", "op-1"]
    accounts = json.loads(s.ok("admin-1", "accounts", "list", "--json"))
    assert "nobody-1" not in [a["name"] for a in accounts]  # checked before it was made
    s.ok("admin-1", "orgs", "assign", "op-1", "acme-ops", "--none")
    assert json.loads(s.ok("op-1", "orgs", "list", "--json")) == []


def test_feedback_from_the_command_line(shell: Shell) -> None:
    s = shell
    filed = json.loads(
        s.ok("op-1", "feedback", "file", "people", "--title", "Ages above 150",
             "--description", "Birth years seem loaded as ages.", "--column", "age", "--json")
    )  # fmt: skip
    assert filed["columns"] == ["age"] and filed["state"] == "open"
    quoting = s.run("op-1", "feedback", "file", "people", "--title", "row 110101199001010007",
                    "--description", "d")  # fmt: skip
    assert quoting.exit_code == 1 and "never by quoting values" in quoting.output
    listed = s.ok("provider-1", "feedback", "list")
    assert filed["id"] in listed and "Ages above 150" in listed
    answered = s.ok("provider-1", "feedback", "answer", filed["id"], "--text", "Will fix.",
                    "--mark", "will_correct")  # fmt: skip
    assert f"issue {filed['id']}: will_correct" in answered
    shown = s.ok("op-1", "feedback", "show", filed["id"])
    assert "Will fix." in shown and "will_correct" in shown
    refused = s.run("op-1", "feedback", "answer", filed["id"], "--text", "mine")
    assert refused.exit_code == 1
