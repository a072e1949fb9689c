"""``sandbox.judge.grading``: the highest level touched decides k and review (pure functions)."""

from __future__ import annotations

from sandbox.intake.policy import default_grading, parse_policy
from sandbox.judge.grading import graded, graded_ledger_k
from sandbox.judge.rules import Context, Output, Thresholds, Verdict
from sandbox.judge.rules.release import auto_release
from tests.support.grading_world import POLICY

LEVELS = {"levels": parse_policy(POLICY.format(name="levels"))}
TABLE = default_grading()


def test_the_highest_referenced_level_sets_k_and_review() -> None:
    base = Thresholds(k=10)
    level_one = graded(base, LEVELS, [("levels", "g"), ("levels", "amount_l1")], TABLE)
    assert (level_one.k, level_one.reviewed_level) == (10, None)
    important = graded(base, LEVELS, [("levels", "g"), ("levels", "amount_imp")], TABLE)
    assert (important.k, important.reviewed_level) == (20, "important")
    both = graded(base, LEVELS, [("levels", "amount_imp"), ("levels", "amount_core")], TABLE)
    assert (both.k, both.reviewed_level) == (30, "core")


def test_without_lineage_every_visible_column_counts() -> None:
    assert graded(Thresholds(k=10), LEVELS, None, TABLE).reviewed_level == "core"
    assert graded_ledger_k(LEVELS, None, TABLE) == {"levels": 30}
    assert graded_ledger_k(LEVELS, [("levels", "g")], TABLE) == {"levels": 10}


def test_a_reviewed_level_holds_an_output_under_every_auto_release_mode() -> None:
    output = Output("t.csv", "table", "sql", b"", {})
    for mode in ("checked", "sql_only", "never"):
        t = graded(Thresholds(auto_release=mode), LEVELS, [("levels", "amount_imp")], TABLE)  # type: ignore[arg-type]
        findings = auto_release(output, Context(thresholds=t))
        assert any(f.verdict == Verdict.REVIEW and "level-important" in f.message for f in findings)
