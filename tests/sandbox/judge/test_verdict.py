"""The job checker: every rule and the ledger over a job, decisions, recording at release."""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import sandbox.judge.rules as checks
from sandbox.errors import CheckError
from sandbox.judge.ledger import Ledger
from sandbox.judge.rules import RULES, Context, Evidence, Output, Thresholds, Verdict
from sandbox.judge.types import Decision
from sandbox.judge.verdict import check_job, decide, record_release


def test_a_decision_is_made_from_the_worst_verdict() -> None:
    assert decide(Verdict.PASS) is Decision.RELEASED
    assert decide(Verdict.REVIEW) is Decision.HELD
    assert decide(Verdict.FAIL) is Decision.BLOCKED
    assert {decide(v) for v in Verdict} == set(Decision)  # every decision can be made
    # The gateway compares with the stored strings: a StrEnum is its value.
    stored: str = "released"
    assert stored == Decision.RELEASED and json.dumps(Decision.HELD) == '"held"'


def sql_output(sets: list[frozenset[str]]) -> Output:
    n = np.array([len(s) for s in sets])
    return Output(
        "result.csv",
        "table",
        "sql",
        b"g,n\n",
        {},
        table=pa.table({"g": [str(i) for i in range(len(sets))], "n": n.tolist()}),
        group_by=("g",),
        measures=("n",),
        evidence=Evidence(entities={"people": n}, entity_sets={"people": tuple(sets)}),
    )


def keys(a: int, b: int) -> frozenset[str]:
    return frozenset(f"p{i}" for i in range(a, b))


def test_cells_enter_the_ledger_when_the_release_commits(tmp_path: Path) -> None:
    ctx = Context(thresholds=Thresholds(k=10))
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        first = check_job(
            [sql_output([keys(0, 50), keys(50, 100)])], ctx, ledger=ledger, ledger_k={"people": 10}
        )
        # Checking records nothing: a refusal after it (scope at release) leaves no trace.
        assert first.decision is Decision.RELEASED and ledger.released("people") == 0
        ids = record_release(
            first, ledger, {"people": 10}, job_id="j1", grant_id="g", operator="op", query="q1"
        )
        assert len(ids) == 2 and ledger.released("people") == 2
        # Cell 0 again but without three persons: a differencing attack.
        second = check_job([sql_output([keys(3, 50)])], ctx, ledger=ledger, ledger_k={"people": 10})
        assert second.decision is Decision.BLOCKED and second.ledger_ids == ()
        (finding,) = [f for f in second.all_findings() if f.rule == "differencing"]
        assert finding.row == 0 and "p3" not in finding.message
        assert ledger.released("people") == 2


def test_two_checked_jobs_cannot_both_commit_against_each_other(tmp_path: Path) -> None:
    ctx = Context(thresholds=Thresholds(k=10))
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        a = check_job([sql_output([keys(0, 50)])], ctx, ledger=ledger, ledger_k={"people": 10})
        b = check_job([sql_output([keys(3, 50)])], ctx, ledger=ledger, ledger_k={"people": 10})
        assert a.decision == b.decision == "released"  # each alone passes
        record_release(a, ledger, {"people": 10}, job_id="a", grant_id="g", operator="o", query="")
        with pytest.raises(CheckError):
            record_release(
                b, ledger, {"people": 10}, job_id="b", grant_id="g", operator="o", query=""
            )
        assert ledger.released("people") == 1


def test_held_jobs_are_recorded_when_a_reviewer_releases_them(tmp_path: Path) -> None:
    ctx = Context(thresholds=Thresholds(k=10, auto_release="never"))
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        held = check_job(
            [sql_output([keys(0, 40)])],
            ctx,
            ledger=ledger,
            ledger_k={"people": 10},
        )
        assert held.decision == "held" and ledger.released("people") == 0
        ids = record_release(
            held, ledger, {"people": 10}, job_id="j1", grant_id="g", operator="op", query="q"
        )
        assert len(ids) == 1 and ledger.released("people") == 1
        # Another held job that now differs from the released cell by two persons.
        other = check_job(
            [sql_output([keys(2, 40)])],
            ctx,
            ledger=ledger,
            ledger_k={"people": 10},
        )
        assert other.decision == "blocked"
        with pytest.raises(CheckError):
            record_release(
                other, ledger, {"people": 10}, job_id="j2", grant_id="g", operator="op", query="q2"
            )


def test_report_is_stored_without_values() -> None:
    ctx = Context(thresholds=Thresholds(k=10, small_cell_action="block"))
    report = check_job([sql_output([keys(0, 3)])], ctx)
    body = report.to_dict()
    # Plain JSON values from the typed fields, as the gateway stores them.
    assert body["decision"] == "blocked" and type(body["decision"]) is str
    assert type(body["verdict"]) is str and json.loads(json.dumps(body)) == body
    (out,) = body["outputs"]
    assert out["sha256"] == hashlib.sha256(report.outputs[0].content).hexdigest()
    assert {f["rule"] for f in out["findings"]} >= {"min_aggregation"}
    assert "p1" not in json.dumps(body)


def test_every_rule_id_is_documented() -> None:
    """Every rule id a finding can carry is in RULES (exhaustiveness)."""
    found: set[str] = set()
    for module in Path(checks.__file__).parent.glob("*.py"):
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id.isupper()
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
                and node.value.value in RULES
            ):
                found.add(node.value.value)
    assert found, "no rule constants found"
    for rule in (
        "min_aggregation",
        "dominance",
        "suppressed",
        "row_level",
        "rare_combination",
        "sensitive_value",
        "identifier_leakage",
        "high_entropy",
        "file_type",
        "size_cap",
        "manifest",
        "model_dof",
        "auto_release",
        "evidence_unavailable",
        "differencing",
        "undeclared_file",
        "no_count",
    ):
        assert rule in RULES, rule
        assert RULES[rule].strip()
