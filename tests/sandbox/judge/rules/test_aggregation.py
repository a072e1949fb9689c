"""Minimum aggregation, dominance and suppression, on hand-made outputs and evidence."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa

from sandbox.judge.rules import Context, Evidence, Output, Thresholds, Verdict, check_output, worst
from sandbox.judge.rules.aggregation import (
    dominance,
    filtered_groups,
    min_aggregation,
    subpopulation,
    suppress,
)


def sql_table(
    columns: dict[str, list[object]],
    entities: list[int],
    *,
    group_by: tuple[str, ...] = ("district",),
    top: dict[str, list[tuple[float, ...]]] | None = None,
    totals: dict[str, list[float]] | None = None,
    additive: frozenset[str] = frozenset(),
) -> Output:
    table = pa.table(columns)
    top = top or {}
    measures = {m: (("t_" + m, "s_" + m),) for m in top}
    evidence = Evidence(
        entities={"residents": np.array(entities)},
        top={"t_" + m: tuple(v) for m, v in top.items()},
        totals={"s_" + m: np.array(v) for m, v in (totals or {}).items()},
        additive=additive,
        measures=measures,
    )
    return Output(
        "result.csv",
        "table",
        "sql",
        b"",
        {},
        table=table,
        group_by=group_by,
        measures=tuple(c for c in columns if c not in group_by),
        evidence=evidence,
    )


BLOCK = Context(thresholds=Thresholds(k=10, small_cell_action="block"))
SUPPRESS = Context(thresholds=Thresholds(k=10, small_cell_action="suppress"))


def test_cells_under_k_fail_with_row_and_no_value() -> None:
    out = sql_table({"district": ["a", "b", "c"], "n": [50, 3, 10]}, [50, 3, 10])
    findings = min_aggregation(out, BLOCK)
    assert [(f.rule, f.verdict, f.row) for f in findings] == [("min_aggregation", Verdict.FAIL, 1)]
    assert "3 entities" in findings[0].message and "10" in findings[0].message


def test_entity_count_not_record_count_decides() -> None:
    # 40 records (count(*) says 40) from 4 persons: the trusted entity count rules.
    out = sql_table({"district": ["a"], "n": [40]}, [4])
    assert [f.row for f in min_aggregation(out, BLOCK)] == [0]


def test_declared_counts_of_python_tables_are_checked_as_claims() -> None:
    table = pa.table({"district": ["a", "b"], "n": [12, 4], "mean": [1.5, 2.5]})
    out = Output(
        "t.csv",
        "table",
        "python",
        b"",
        {},
        table=table,
        group_by=("district",),
        measures=("mean",),
        count="n",
    )
    findings = min_aggregation(out, BLOCK)
    assert [f.row for f in findings] == [1]
    assert "declared" in findings[0].message
    no_count = Output(
        "t.csv",
        "table",
        "python",
        b"",
        {},
        table=table.drop(["n"]),
        group_by=("district",),
        measures=("mean",),
    )
    assert [(f.rule, f.verdict) for f in min_aggregation(no_count, BLOCK)] == [
        ("no_count", Verdict.REVIEW)
    ]


def test_nk_dominance() -> None:
    # Two firms make 95% of the total: n=2, k=0.9 fails.
    out = sql_table(
        {"district": ["a", "b"], "tax": [1000.0, 1000.0]},
        [20, 20],
        top={"tax": [(600.0, 350.0), (100.0, 90.0)]},
        totals={"tax": [1000.0, 1000.0]},
    )
    findings = dominance(out, BLOCK)
    assert [(f.rule, f.row, f.column) for f in findings] == [("dominance", 0, "tax")]


def test_p_percent_dominance() -> None:
    # The rest (total less the two largest) is 5% of the largest: the second
    # contributor could estimate the largest within 5%.
    out = sql_table(
        {"district": ["a"], "tax": [1000.0]},
        [30],
        top={"tax": [(500.0, 100.0)]},
        totals={"tax": [625.0]},
    )
    thresholds = Thresholds(k=10, dominance_n=2, dominance_k=0.99, dominance_p=0.10)
    findings = dominance(out, Context(thresholds=thresholds))
    assert [f.row for f in findings] == [0] and "under 10%" in findings[0].message


def test_even_contributions_pass_dominance() -> None:
    out = sql_table(
        {"district": ["a"], "tax": [1000.0]},
        [100],
        top={"tax": [(12.0, 11.0)]},
        totals={"tax": [1000.0]},
    )
    assert dominance(out, BLOCK) == []


def test_suppression_blanks_small_cells_and_passes() -> None:
    out = sql_table({"district": ["a", "b", "c"], "n": [50, 3, 10]}, [50, 3, 10])
    released, findings = check_output(out, SUPPRESS)
    assert released.table is not None
    assert released.table.column("n").to_pylist() == [50, None, 10]
    assert released.table.column("district").to_pylist() == ["a", "b", "c"]
    assert {f.rule for f in findings} == {"suppressed"}
    assert all(f.verdict == Verdict.PASS for f in findings)


def test_suppression_recomputes_margins_and_adds_a_secondary_cell() -> None:
    # ROLLUP: districts a, b, c and a total row (district NULL).
    out = sql_table(
        {
            "district": ["a", "b", "c", None],
            "n": [50, 3, 20, 73],
            "avg_age": [40.0, 41.0, 42.0, 41.0],
        },
        [50, 3, 20, 73],
        additive=frozenset({"n"}),
    )
    released, findings = suppress(out, SUPPRESS)
    assert released.table is not None
    n = released.table.column("n").to_pylist()
    # b is suppressed; so is c (the smallest other cell), else 73 - 50 - 20 = b.
    assert n[1] is None and n[2] is None
    # The total is recomputed from the released cells: total - a = 0, nothing restored.
    assert n[3] == 50
    assert released.table.column("avg_age").to_pylist()[3] is None
    assert sorted(released.suppressed) == [1, 2]
    assert any("1 more beside them" in f.message for f in findings)
    assert min_aggregation(released, SUPPRESS) == []


def test_block_action_leaves_table_and_fails() -> None:
    out = sql_table({"district": ["a", "b"], "n": [50, 3]}, [50, 3])
    released, findings = check_output(out, BLOCK)
    assert released.table is not None and released.table.column("n").to_pylist() == [50, 3]
    assert any(f.rule == "min_aggregation" and f.verdict == Verdict.FAIL for f in findings)


def with_evidence(out: Output, **changes: object) -> Output:
    assert out.evidence is not None
    return replace(out, evidence=replace(out.evidence, **changes))  # type: ignore[arg-type]


def test_small_subpopulation_is_suppressed_or_fails() -> None:
    out = sql_table({"district": ["a", "b"], "share": [0.5, 0.02]}, [50, 50])
    sides = ((np.array([25, 1]), np.array([25, 49])),)
    out = with_evidence(out, subpopulations={"share": sides})
    findings = subpopulation(out, BLOCK)
    assert [(f.rule, f.verdict, f.row, f.column) for f in findings] == [
        ("subpopulation", Verdict.FAIL, 1, "share")
    ]
    assert "1 " not in findings[0].message.replace("10", "")
    released, findings = check_output(out, SUPPRESS)
    assert released.table is not None
    assert released.table.column("share").to_pylist() == [0.5, None]
    assert worst(findings) == Verdict.PASS


def test_empty_subpopulation_passes() -> None:
    out = sql_table({"district": ["a"], "share": [0.0]}, [50])
    out = with_evidence(out, subpopulations={"share": ((np.array([0]), np.array([50])),)})
    assert subpopulation(out, BLOCK) == []


def dropped(entities: list[int], **changes: object) -> Evidence:
    return Evidence(entities={"residents": np.array(entities)}, **changes)  # type: ignore[arg-type]


def test_filtered_groups_fail_when_a_dropped_group_is_small() -> None:
    # HAVING kept a and dropped b (one entity): under suppress or block, it fails.
    out = with_evidence(sql_table({"district": ["a"], "n": [50]}, [50]), dropped=dropped([1]))
    for ctx in (BLOCK, SUPPRESS):
        findings = check_output(out, ctx)[1]
        assert [(f.rule, f.verdict) for f in findings if f.verdict != Verdict.PASS] == [
            ("filtered_groups", Verdict.FAIL)
        ]
    # Kept small, dropped large: the same.
    out = with_evidence(sql_table({"district": ["a"], "n": [1]}, [1]), dropped=dropped([50]))
    assert "filtered_groups" in {f.rule for f in check_output(out, SUPPRESS)[1]}


def test_filtered_groups_judge_dominance_and_subpopulations_of_dropped_groups() -> None:
    passing = sql_table({"district": ["a"], "n": [50]}, [50])
    dominated = dropped(
        [30],
        top={"t": ((900.0, 10.0),)},
        totals={"s": np.array([1000.0])},
        measures={"HAVING": (("t", "s"),)},
    )
    assert [f.rule for f in filtered_groups(with_evidence(passing, dropped=dominated), BLOCK)] == [
        "filtered_groups"
    ]
    split = dropped([30], subpopulations={"HAVING": ((np.array([2]), np.array([28])),)})
    assert filtered_groups(with_evidence(passing, dropped=split), BLOCK) != []
    assert filtered_groups(with_evidence(passing, dropped=dropped([30])), BLOCK) == []


def test_empty_kept_table_passes_only_when_dropped_groups_pass() -> None:
    empty = sql_table({"district": [], "n": []}, [])
    assert worst(check_output(with_evidence(empty, dropped=dropped([40, 60])), BLOCK)[1]) == (
        Verdict.PASS
    )
    assert worst(check_output(with_evidence(empty, dropped=dropped([40, 3])), SUPPRESS)[1]) == (
        Verdict.FAIL
    )
