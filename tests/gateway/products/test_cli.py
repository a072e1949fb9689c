"""``dsr products`` against a gateway served over HTTP in process (no Docker): an operator
applies, the registration body takes the application through the procedure, a reviewer
objects and the objection is dismissed, the product is registered, listed and shown; a
refusal is the server's message and exit code 1, never a traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gateway.cli import app as dsr
from tests.support.he_world import World, released_model_job
from tests.support.product_registration import MovableClock, build_world
from tests.support.served_gateway import serve

START = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)


class Shell:
    def __init__(self, base: str, w: World, data_dir: Path) -> None:
        self.base, self.w, self.data_dir = base, w, data_dir
        self.runner = CliRunner()

    def run(self, who: str, *args: str) -> Any:
        env = {
            "DSR_SERVER": self.base,
            "DSR_TOKEN": self.w.tokens[who],
            "DSR_CONFIG": str(self.data_dir / "none.toml"),
        }
        done = self.runner.invoke(dsr, ["products", *args], env=env)
        assert "Traceback" not in done.output, done.output
        return done

    def json(self, who: str, *args: str) -> Any:
        done = self.run(who, *args, "--json")
        assert done.exit_code == 0, (args, done.output)
        return json.loads(done.output)


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[tuple[Shell, MovableClock]]:
    clock = MovableClock(START)
    w = build_world(f"sqlite:///{tmp_path / 'gateway.sqlite'}", tmp_path, clock)
    with serve(w.app) as base:
        yield Shell(base, w, tmp_path), clock
    w.app.state.engine.dispose()


def test_the_procedure_from_the_command_line(shell: tuple[Shell, MovableClock]) -> None:
    sh, clock = shell
    job = released_model_job(sh.w, {"c": 1.0})
    made = sh.json(
        "op-1", "apply", "--job", job, "--name", "Tax bands", "--description", "bands",
        "--category", "public_governance",
    )  # fmt: skip
    rid = made["id"]
    refused = sh.run("op-1", "step", "accept", rid)
    assert refused.exit_code == 1 and "needs the role" in refused.output
    for step in ("accept", "review", "publicise"):
        shown = sh.json("admin-1", "step", step, rid)
    objection = sh.json("rev-1", "object", rid, "--reasons", "the bands are too fine")
    dismissed = sh.json("admin-1", "resolve", objection["id"], "--dismiss", "--reason", "fine")
    assert dismissed["state"] == "dismissed"
    early = sh.run("admin-1", "step", "register", rid)
    assert early.exit_code == 1 and "publicity of" in early.output
    clock.now = datetime.fromisoformat(shown["publicity_ends_at"])
    registered = sh.json("admin-1", "step", "register", rid)
    product = registered["product"]
    assert [p["id"] for p in sh.json("auditor-1", "list")] == [product]
    listed = sh.run("op-1", "list")
    assert listed.exit_code == 0 and "CQGSJ-2026-000001" in listed.output
    shown_product = sh.run("op-1", "show", product)
    assert "registration code" in shown_product.output and "registered" in shown_product.output
    early_renewal = sh.run("op-1", "renew", product)
    assert early_renewal.exit_code == 1 and "60 days before it expires" in early_renewal.output
    revoked = sh.json(
        "admin-1", "revoke", product, "--reason", "forged material", "--basis", "001 art. 21"
    )
    assert revoked["status"] == "revoked"
    assert sh.json("op-1", "applications")[0]["state"] == "registered"
