"""``dsr products price``, ``dsr charges``, ``dsr costs`` and ``dsr statements`` against a
gateway served over HTTP in process: an operator prices its product and records a sale,
reads its charges, its ledger and its statement (CSV on stdout, PDF to a file); a
refusal is the server's message and exit code 1, never a traceback."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gateway.cli import app as dsr
from tests.support.he_world import World
from tests.support.pricing_world import INDUSTRY, TARIFF, metered_job, registered
from tests.support.product_registration import MovableClock, build_world
from tests.support.served_gateway import serve

START = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


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
        done = self.runner.invoke(dsr, list(args), env=env)
        assert "Traceback" not in done.output, done.output
        return done

    def json(self, who: str, *args: str) -> Any:
        done = self.run(who, *args, "--json")
        assert done.exit_code == 0, (args, done.output)
        return json.loads(done.output)


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[tuple[Shell, MovableClock]]:
    clock = MovableClock(START)
    w = build_world(
        f"sqlite:///{tmp_path / 'gateway.sqlite'}", tmp_path, clock,
        price_tariff=TARIFF, product_publicity_working_days=0,
    )  # fmt: skip
    with serve(w.app) as base:
        yield Shell(base, w, tmp_path), clock
    w.app.state.engine.dispose()


def test_prices_charges_costs_and_statements_from_the_command_line(
    shell: tuple[Shell, MovableClock], tmp_path: Path
) -> None:
    sh, clock = shell
    product = registered(sh.w, job=metered_job(sh.w, clock, cpu_seconds=100), **INDUSTRY,
                         price_class="free")  # fmt: skip
    pid = product["id"]
    refused = sh.run("op-1", "charges", "record", pid, "--payer", "bank-1", "--reference", "R1")
    assert refused.exit_code == 1 and "carries no charge" in refused.output

    priced = sh.json("op-1", "products", "price", pid, "--class", "guided",
                     "--basis", '{"tariff_item": "credit-check"}')  # fmt: skip
    assert priced["unit_price_fen"] == 250
    bad = sh.run("op-1", "products", "price", pid, "--class", "guided", "--basis", "{nope")
    assert bad.exit_code == 2 and "not JSON" in bad.output

    made = sh.run("op-1", "charges", "record", pid, "--payer", "bank-1", "--reference", "R1",
                  "--quantity", "4")  # fmt: skip
    assert made.exit_code == 0, made.output
    assert "10.00 CNY" in made.output
    listed = sh.json("op-1", "charges", "list", "--period", "2026-03")
    assert listed["total_fen"] == 1000 and len(listed["charges"]) == 1
    shown = sh.run("bank-1", "charges", "list", "--period", "2026")
    assert shown.exit_code == 0 and "10.00" in shown.output

    ledger = sh.json("auditor-1", "costs", "--period", "2026-03", "--operator", "op-1")
    assert ledger["totals"]["revenue_fen"] == 1000
    assert ledger["products"][0]["product_id"] == pid

    as_csv = sh.run("op-1", "statements", "op-1", "--period", "2026-03", "--format", "csv")
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert rows[-1]["section"] == "total" and int(rows[-1]["revenue_fen"]) == 1000
    out = tmp_path / "statement.pdf"
    as_pdf = sh.run("op-1", "statements", "op-1", "--period", "2026-03", "--out", str(out))
    assert as_pdf.exit_code == 0, as_pdf.output
    assert out.read_bytes().startswith(b"%PDF")
    other = sh.run("op-2", "statements", "op-1", "--period", "2026-03", "--format", "json")
    assert other.exit_code == 1 and "its own" in other.output


def test_an_industry_product_is_applied_for_with_its_price(
    shell: tuple[Shell, MovableClock],
) -> None:
    sh, clock = shell
    job = metered_job(sh.w, clock, cpu_seconds=50)
    apply = ["products", "apply", "--job", job, "--name", "Tax bands", "--description", "bands",
             "--category", "industry_development"]  # fmt: skip
    unpriced = sh.run("op-1", *apply)
    assert unpriced.exit_code == 1 and "names its price class" in unpriced.output
    basis = '{"margin": 0.1, "expected_units": 10}'
    made = sh.json("op-1", *apply, "--price-class", "cost_plus", "--price-basis", basis)
    assert made["price_class"] == "cost_plus" and made["price_basis"] == json.loads(basis)
