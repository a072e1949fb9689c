"""The ``dsr terminations`` and ``dsr incidents`` commands against the gateway in-process
(the client's HTTP goes to the app through Starlette's test transport): propose, approve,
list with the notice period; stop with a rectification deadline; incidents create,
update, resolve, list, export."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from gateway.cli import app as dsr_app
from tests.support.termination_world import World, issue, make_world

NOW = datetime(2025, 9, 23, 2, 0, tzinfo=UTC)
Dsr = Callable[..., Result]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(f"sqlite:///{tmp_path / 'gateway.sqlite'}", tmp_path, NOW)


@pytest.fixture
def dsr(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Dsr:
    def client(*, base_url: str, headers: dict[str, str], timeout: Any) -> TestClient:
        return TestClient(world.app, base_url=base_url, headers=headers)

    monkeypatch.setattr(httpx, "Client", client)  # what gateway.client.http opens
    monkeypatch.setenv("DSR_CONFIG", str(tmp_path / "no-dsr-config.toml"))
    runner = CliRunner()

    def run(who: str, *args: str) -> Result:
        token = world.tokens[who]
        return runner.invoke(dsr_app, [*args, "--server", "http://gateway", "--token", token])

    return run


def test_termination_commands(world: World, dsr: Dsr) -> None:
    g = issue(world, datasets=("people", "tax"))
    made = dsr("provider-1", "terminations", "propose", g.id, "--reason", "resold",
               "--legal-basis", "002 art. 26", "--json")  # fmt: skip
    assert made.exit_code == 0, made.output
    t = json.loads(made.output)
    assert t["effective_after"].startswith("2025-10-13T16:00")
    shown = dsr("admin-1", "terminations", "show", t["id"])
    assert "2025-10-13" in shown.output and "working days left" in shown.output
    refused = dsr("operator-1", "terminations", "approve", t["id"], "--reason", "ok")
    assert refused.exit_code != 0 and "needs the role" in refused.output
    ok = dsr("admin-1", "terminations", "approve", t["id"], "--reason", "checked")
    assert ok.exit_code == 0 and "approved" in ok.output
    listed = dsr("operator-1", "terminations", "list")
    assert t["id"] in listed.output and "approved" in listed.output
    partial = dsr("operator-1", "terminations", "request", g.id, "--reason", "over",
                  "--dataset", "people")  # fmt: skip
    assert partial.exit_code != 0 and "ends whole" in partial.output
    withdrawn = dsr("provider-1", "terminations", "withdraw", t["id"], "--reason", "settled")
    assert withdrawn.exit_code == 0 and "withdrawn" in withdrawn.output


def test_stops_carry_a_rectification_deadline(world: World, dsr: Dsr) -> None:
    g = issue(world)
    done = dsr("provider-1", "grants", "suspend", g.id, "--reason", "rectify",
               "--rectify-days", "5", "--json")  # fmt: skip
    assert done.exit_code == 0, done.output
    # 24, 25, 26, Sunday 28 (a make-up working day) and 29 September: 24:00 CST on the 29th.
    assert json.loads(done.output)["holds"][0]["rectify_by"].startswith("2025-09-29T16:00")
    stop = dsr("admin-1", "emergency-stop", "people", "--reason", "leak", "--rectify-days", "2")
    assert stop.exit_code == 0 and "recorded on incident i-" in stop.output


def test_incident_commands(world: World, dsr: Dsr, tmp_path: Path) -> None:
    made = dsr("provider-1", "incidents", "create", "--kind", "data_leak", "--severity",
               "high", "--summary", "copied out", "--dataset", "people", "--json")  # fmt: skip
    assert made.exit_code == 0, made.output
    i = json.loads(made.output)["id"]
    acted = dsr("provider-1", "incidents", "update", i, "--action", "keys rotated")
    assert acted.exit_code == 0 and "keys rotated" in acted.output
    assert dsr("admin-1", "incidents", "resolve", i, "--resolution", "contained").exit_code == 0
    assert i in dsr("auditor-1", "incidents", "list").output
    period = ["--since", "2025-09-01T00:00:00+00:00", "--until", "2025-10-01T00:00:00+00:00"]
    report = dsr("auditor-1", "incidents", "export", *period)
    assert report.exit_code == 0, report.output
    assert json.loads(report.output)["totals"]["incidents"] == 1
    out = tmp_path / "report.csv"
    saved = dsr("admin-1", "incidents", "export", *period, "--format", "csv", "--out", str(out))
    assert saved.exit_code == 0, saved.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["id"] for r in rows] == [i] and rows[0]["state"] == "resolved"
    assert dsr("provider-1", "incidents", "export", *period).exit_code != 0
