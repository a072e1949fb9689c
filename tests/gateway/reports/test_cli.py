"""``dsr reports`` against a gateway served over HTTP in process (no Docker): each report
as its reader would fetch it, to stdout or ``--out``; a refusal is the server's message
and exit code 1, never a traceback."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gateway.app import create_app
from gateway.cli import app as dsr
from gateway.identity import create_account, issue_token
from gateway.settings import GatewaySettings
from tests.support.served_gateway import serve

ACCOUNTS = {"admin-1": "admin", "op-1": "operator", "op-2": "operator", "provider-1": "provider"}


class Shell:
    def __init__(self, base: str, tokens: dict[str, str], data_dir: Path) -> None:
        self.base, self.tokens, self.data_dir = base, tokens, data_dir
        self.runner = CliRunner()

    def run(self, who: str, *args: str) -> Any:
        env = {
            "DSR_SERVER": self.base,
            "DSR_TOKEN": self.tokens[who],
            "DSR_CONFIG": str(self.data_dir / "none.toml"),
        }
        done = self.runner.invoke(dsr, ["reports", *args], env=env)
        assert "Traceback" not in done.output, done.output
        return done


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shell]:
    data_dir = tmp_path_factory.mktemp("reports-cli") / "var"
    app = create_app(GatewaySettings(data_dir=data_dir))
    tokens = {}
    with app.state.engine.begin() as conn:
        for name, role in ACCOUNTS.items():
            create_account(conn, name, {role}, actor="test")
            tokens[name] = issue_token(conn, name, actor="test")
    with serve(app) as base:
        yield Shell(base, tokens, data_dir)
    app.state.engine.dispose()


def test_reports_to_stdout_and_to_files(shell: Shell, tmp_path: Path) -> None:
    shown = shell.run("op-1", "operator", "op-1", "--period", "2025")
    assert shown.exit_code == 0, shown.output
    body = json.loads(shown.output)
    assert (body["kind"], body["subject"], body["period"]["label"]) == ("operator", "op-1", "2025")
    out = tmp_path / "usage.csv"
    saved = shell.run("provider-1", "provider", "provider-1", "--period", "2025-Q2",
                      "--format", "csv", "--out", str(out))  # fmt: skip
    assert saved.exit_code == 0 and str(out) in saved.output, saved.output
    lines = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert {r["section"] for r in lines} >= {"summary"} and lines[0]["item"] == "datasets"
    page = shell.run("admin-1", "disclosure", "--period", "2025-03", "--format", "html",
                     "--lang", "en")  # fmt: skip
    assert page.exit_code == 0 and '<html lang="en">' in page.output, page.output


def test_refusals_are_the_servers_words(shell: Shell) -> None:
    other = shell.run("op-2", "operator", "op-1", "--period", "2025")
    assert other.exit_code == 1 and "only op-1 itself" in other.output, other.output
    period = shell.run("op-1", "operator", "op-1", "--period", "last year")
    assert period.exit_code == 1 and "is not a period" in period.output, period.output
    binary = shell.run("admin-1", "disclosure", "--period", "2025", "--format", "pdf")
    assert binary.exit_code != 0 and "--out" in binary.output, binary.output
