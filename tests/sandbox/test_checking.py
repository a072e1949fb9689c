"""The job checker: reading outputs, thresholds, decisions and the ledger."""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import sandbox.checks as checks
from sandbox.checking import (
    check_job,
    decide,
    read_python_outputs,
    record_release,
    thresholds_for,
)
from sandbox.checks import RULES, Context, Evidence, Output, Thresholds, Verdict
from sandbox.errors import CheckError
from sandbox.ledger import Ledger
from sandbox.policy import parse_policy

ROOT = Path(__file__).resolve().parents[2]


def manifest(*entries: dict[str, object]) -> bytes:
    return json.dumps({"version": 1, "outputs": list(entries)}).encode()


def entry(name: str, content: bytes, **extra: object) -> dict[str, object]:
    return {"file": name, "sha256": hashlib.sha256(content).hexdigest(), **extra}


def test_only_declared_files_are_outputs() -> None:
    table = b"district,n\n500101,40\n"
    files = {
        "manifest.json": manifest(
            entry("t.csv", table, kind="table", group_by=["district"], measures=[], count="n")
        ),
        "t.csv": table,
        "raw.csv": b"everything",
    }
    outputs, findings = read_python_outputs(files)
    assert [o.file for o in outputs] == ["t.csv"]
    assert outputs[0].table is not None and outputs[0].count == "n"
    # Group keys stay text as written; declared counts are numbers.
    assert outputs[0].table.column("district").type == pa.string()
    assert outputs[0].table.column("n").to_pylist() == [40.0]
    assert [(f.rule, f.file, f.verdict) for f in findings] == [
        ("undeclared_file", "raw.csv", Verdict.PASS)
    ]


@pytest.mark.parametrize(
    "files",
    [
        {"manifest.json": b"{not json"},
        {"manifest.json": manifest({"file": "../etc/passwd", "kind": "text"})},
        {"manifest.json": manifest({"file": "a.txt", "kind": "text"})},  # missing file
        {"manifest.json": manifest({"kind": "text"})},
    ],
)
def test_broken_manifests_fail(files: dict[str, bytes]) -> None:
    outputs, findings = read_python_outputs(files)
    assert outputs == []
    assert any(f.rule == "manifest" and f.verdict == Verdict.FAIL for f in findings)


def test_no_manifest_releases_nothing() -> None:
    outputs, findings = read_python_outputs({"x.csv": b"a"})
    assert outputs == [] and [f.rule for f in findings] == ["undeclared_file"]


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
    assert decide(Verdict.PASS) == "released"
    assert decide(Verdict.REVIEW) == "held" and decide(Verdict.FAIL) == "blocked"


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
        assert first.decision == "released" and ledger.released("people") == 0
        ids = record_release(
            first, ledger, {"people": 10}, job_id="j1", grant_id="g", operator="op", query="q1"
        )
        assert len(ids) == 2 and ledger.released("people") == 2
        # Cell 0 again but without three persons: a differencing attack.
        second = check_job([sql_output([keys(3, 50)])], ctx, ledger=ledger, ledger_k={"people": 10})
        assert second.decision == "blocked" and second.ledger_ids == ()
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
    assert body["decision"] == "blocked"
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
