"""What outputs are judged against: the policies' thresholds and the views' trusted facts."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from sandbox.intake.policy import parse_policy
from sandbox.judge.facts import thresholds_for, view_facts
from sandbox.judge.rules import Output, Thresholds
from tests.support.engine import ROOT


def write(path: Path, sql: str) -> None:
    rel = duckdb.sql(sql)
    assert rel is not None
    rel.write_parquet(str(path))


def test_thresholds_are_the_strictest_of_the_datasets() -> None:
    policies = [
        parse_policy((ROOT / "policies" / "exposure" / f"{n}.yaml").read_text())
        for n in ("residents", "enterprises", "tax_payments", "social_insurance")
    ]
    t = thresholds_for(policies)
    assert t.k == max(p.k for p in policies)
    assert t.auto_release == "never"  # tax_payments
    assert t.small_cell_action == "block"  # social_insurance
    assert thresholds_for(policies[1:2]).auto_release == "checked"
    assert thresholds_for([]) == Thresholds()


def test_view_facts_are_counted_from_the_view(tmp_path: Path) -> None:
    """Distinct entities, per combination of group keys, and rare sensitive values (real DuckDB)."""
    policy = parse_policy((ROOT / "policies" / "exposure" / "enterprises.yaml").read_text())
    view = tmp_path / "enterprises.parquet"
    write(
        view,
        "SELECT 'c' || i AS credit_code, CASE WHEN i < 12 THEN 'A' ELSE 'B' END AS industry, "
        "CASE WHEN i = 12 THEN 777.777 ELSE 100.0 END AS registered_capital "
        "FROM range(13) t(i) UNION ALL SELECT 'c0', 'A', 100.0",  # one firm, two rows
    )
    table = Output(
        "t.csv", "table", "python", b"", {}, table=pa.table({"industry": ["A"], "n": [12]}),
        group_by=("industry", "credit_code"), measures=("n",),
    )  # fmt: skip
    facts = view_facts({"enterprises": view}, {"enterprises": policy}, [table], k=10)
    assert facts.entities == {"enterprises": 13}
    # Only group keys and plain columns are quasi-identifiers; never the entity column.
    assert "industry" in facts.quasi_columns["enterprises"]
    assert "credit_code" not in facts.quasi_columns["enterprises"]
    assert facts.combos == {("enterprises", ("industry",)): {("A",): 12, ("B",): 1}}
    # The value one firm holds (rounded to cents); not the one twelve firms hold.
    assert facts.sensitive_values == {"enterprises": frozenset({777.78})}


def test_no_outputs_need_no_combinations(tmp_path: Path) -> None:
    policy = parse_policy((ROOT / "policies" / "exposure" / "enterprises.yaml").read_text())
    view = tmp_path / "enterprises.parquet"
    write(view, "SELECT 'c' || i AS credit_code FROM range(3) t(i)")
    facts = view_facts({"enterprises": view}, {"enterprises": policy}, [], k=10)
    assert facts.entities == {"enterprises": 3}
    assert facts.combos == {} and facts.sensitive_values == {}
