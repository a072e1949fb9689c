"""Row-level, rare combinations, sensitive values, files, models and release rules."""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa

from sandbox.judge.rules import Context, Evidence, Output, Thresholds, Verdict, ViewFacts
from sandbox.judge.rules.combos import rare_combinations, sensitive_values
from sandbox.judge.rules.files import file_count, file_type, manifest_integrity, size_caps
from sandbox.judge.rules.models import model_disclosure
from sandbox.judge.rules.release import auto_release
from sandbox.judge.rules.rowlevel import row_level
from sandbox.judge.rules.values import norm


def _png() -> bytes:
    """A real 1x1 image: the signature, IHDR, IDAT and IEND with their CRCs."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")
        )

    header = (1).to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    pixels = zlib.compress(b"\0\0")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


PNG = _png()


def py_table(
    columns: dict[str, list[object]], group_by: tuple[str, ...], count: str | None = "n"
) -> Output:
    table = pa.table(columns)
    measures = tuple(c for c in columns if c not in group_by and c != count)
    return Output(
        "t.csv",
        "table",
        "python",
        b"x",
        {},
        table=table,
        group_by=group_by,
        measures=measures,
        count=count,
    )


FACTS = ViewFacts(
    entities={"residents": 1000},
    combos={
        ("residents", ("district_code",)): {("500101",): 600, ("500102",): 400},
        ("residents", ("district_code", "gender")): {
            ("500101", "男"): 300,
            ("500101", "女"): 296,
            ("500101", "x"): 4,
            ("500102", "男"): 400,
        },
    },
    quasi_columns={"residents": ("district_code", "gender", "birth_date")},
    sensitive_values={"residents": frozenset({4321.5, 9000.0})},
)
CTX = Context(thresholds=Thresholds(k=10), datasets=("residents",), views=FACTS)


def test_values_normalise_alike() -> None:
    assert norm(500101) == norm("500101") == norm(500101.0) == "500101"
    assert norm(1.50) == norm("1.5")
    assert norm("男") == "男" and norm(None) is None


def test_table_with_a_row_per_entity_is_row_level() -> None:
    many = py_table({"k": list(range(600)), "n": [1] * 600}, ("k",))
    assert [f.rule for f in row_level(many, CTX)] == ["row_level"]
    few = py_table({"k": list(range(20)), "n": [50] * 20}, ("k",))
    assert row_level(few, CTX) == []


def test_sql_rows_of_single_entities_are_row_level() -> None:
    out = Output(
        "r.csv",
        "table",
        "sql",
        b"",
        {},
        table=pa.table({"x": list(range(40))}),
        group_by=("x",),
        evidence=Evidence(entities={"residents": np.ones(40, dtype=np.int64)}),
    )
    assert "single entity" in row_level(out, CTX)[0].message


def test_rare_combination_fails_even_with_a_lying_count() -> None:
    out = py_table(
        {
            "district_code": [500101, 500101, 500102],
            "gender": ["男", "x", "男"],
            "n": [300, 50, 400],
        },
        ("district_code", "gender"),
    )
    findings = rare_combinations(out, CTX)
    assert [(f.rule, f.row) for f in findings] == [("rare_combination", 1)]
    assert "declared count claims more" in findings[0].message


def test_common_combinations_pass() -> None:
    out = py_table({"district_code": ["500101", "500102"], "n": [600, 400]}, ("district_code",))
    assert rare_combinations(out, CTX) == []


def test_exact_sensitive_value_in_small_group_fails_and_unknown_size_is_reviewed() -> None:
    small = py_table({"grp": ["a", "b"], "n": [3, 50], "income": [4321.5, 5000.0]}, ("grp",))
    assert [(f.verdict, f.row) for f in sensitive_values(small, CTX)] == [(Verdict.FAIL, 0)]
    unknown = py_table({"grp": ["a"], "income": [9000.0]}, ("grp",), count=None)
    assert [f.verdict for f in sensitive_values(unknown, CTX)] == [Verdict.REVIEW]
    mean = py_table({"grp": ["a"], "n": [3], "income": [4321.523]}, ("grp",))
    assert sensitive_values(mean, CTX) == []


def test_a_column_of_exact_values_looks_like_min_or_max() -> None:
    out = py_table(
        {"district_code": ["500101", "500102"], "n": [600, 400], "top": [4321.5, 9000.0]},
        ("district_code",),
    )
    findings = sensitive_values(out, CTX)
    assert [(f.verdict, f.column, f.row) for f in findings] == [(Verdict.REVIEW, "top", None)]


def _file(name: str, content: bytes, kind: str = "other") -> Output:
    return Output(name, kind, "python", content, {"sha256": hashlib.sha256(content).hexdigest()})  # type: ignore[arg-type]


def test_only_allowed_types_recognised_by_content() -> None:
    assert file_type(_file("a.csv", b"a,b\n1,2\n"), CTX) == []
    assert file_type(_file("a.png", PNG), CTX) == []
    assert file_type(_file("a.json", b'{"a": 1}'), CTX) == []
    assert file_type(_file("a.parquet", b"PAR1" + b"\0" * 8 + b"PAR1"), CTX) == []
    for name, content in [
        ("a.zip", b"PK\x03\x04"),
        ("a.png", b"not a png"),
        ("a.csv", b"\x00\x01binary"),
        ("a.json", b"{nope"),
        ("a.txt", b"\xff\xfe\xfa"),
        ("noext", b"x"),
    ]:
        assert [f.rule for f in file_type(_file(name, content), CTX)] == ["file_type"], name


def test_size_caps_and_file_count() -> None:
    ctx = Context(thresholds=Thresholds(max_bytes=10, max_rows=2, max_files=1))
    assert [f.rule for f in size_caps(_file("a.txt", b"x" * 11), ctx)] == ["size_cap"]
    table = py_table({"g": ["a", "b", "c"], "n": [10, 10, 10]}, ("g",))
    assert [f.rule for f in size_caps(table, ctx)] == ["size_cap"]
    assert [f.rule for f in file_count([table, table], ctx)] == ["size_cap"]


def test_manifest_hash_mismatch_fails() -> None:
    out = Output(
        "a.txt", "text", "python", b"changed", {"sha256": hashlib.sha256(b"x").hexdigest()}
    )
    assert [f.rule for f in manifest_integrity(out, CTX)] == ["manifest"]


def _model(n: int, df: int, params: int) -> Output:
    doc = {"coefficients": {f"b{i}": 0.1 for i in range(params)}, "n": n, "df_resid": df}
    return Output("m.json", "model", "python", json.dumps(doc).encode(), {}, model=doc)


def test_models_with_few_degrees_of_freedom_are_held() -> None:
    assert model_disclosure(_model(1000, 996, 4), CTX) == []
    assert [f.verdict for f in model_disclosure(_model(14, 6, 8), CTX)] == [
        Verdict.REVIEW,
        Verdict.REVIEW,
    ]
    assert "residual degrees of freedom" in model_disclosure(_model(100, 5, 3), CTX)[0].message


def test_release_modes() -> None:
    table = py_table({"g": ["a"], "n": [100]}, ("g",))
    checked = Context(thresholds=Thresholds(auto_release="checked"))
    sql_only = Context(thresholds=Thresholds(auto_release="sql_only"))
    never = Context(thresholds=Thresholds(auto_release="never"))
    # What the job's own code wrote is reviewed under every mode: no rule can prove
    # that a cell of it is an aggregate of its group.
    for ctx in (checked, sql_only, never):
        assert [f.verdict for f in auto_release(table, ctx)] == [Verdict.REVIEW]
    # A model the trusted side fitted itself from a publish_model specification.
    doc = {"coefficients": {"b0": 0.1}, "n": 1000, "df_resid": 999}
    fitted = Output("m.json", "model", "recomputed", b"{}", {}, model=doc)
    assert auto_release(fitted, checked) == []
    assert [f.verdict for f in auto_release(fitted, sql_only)] == [Verdict.REVIEW]
    assert [f.verdict for f in auto_release(fitted, never)] == [Verdict.REVIEW]
    figure = Output("f.png", "figure", "python", PNG, {})
    assert [f.verdict for f in auto_release(figure, checked)] == [Verdict.REVIEW]
    sql = Output(
        "r.csv",
        "table",
        "sql",
        b"",
        {},
        table=table.table,
        evidence=Evidence(entities={"residents": np.array([100])}),
    )
    assert auto_release(sql, sql_only) == []
    assert [f.verdict for f in auto_release(sql, never)] == [Verdict.REVIEW]
    no_evidence = Output("r.csv", "table", "sql", b"", {}, table=table.table)
    assert [f.rule for f in auto_release(no_evidence, sql_only)] == ["evidence_unavailable"]


def test_facts_per_source_a_combination_rare_in_one_view_only_is_reviewed() -> None:
    # District 7 has 56 residents and one enterprise: a table by district may
    # describe either; only its lineage says which.
    facts = ViewFacts(
        entities={"residents": 5000, "enterprises": 300},
        combos={
            ("residents", ("district",)): {("7",): 56, ("8",): 3},
            ("enterprises", ("district",)): {("7",): 1, ("8",): 2},
        },
        quasi_columns={"residents": ("district",), "enterprises": ("district",)},
    )
    both = Context(thresholds=Thresholds(k=10), datasets=("enterprises", "residents"), views=facts)
    table = py_table({"district": ["7", "8"], "n": [56, 3]}, ("district",))
    verdicts = {f.row: f.verdict for f in rare_combinations(table, both)}
    assert verdicts == {0: Verdict.REVIEW, 1: Verdict.FAIL}
    # Its lineage known (residents only): district 7 is common, 8 is rare.
    residents = Context(thresholds=Thresholds(k=10), datasets=("residents",), views=facts)
    assert {f.row: f.verdict for f in rare_combinations(table, residents)} == {1: Verdict.FAIL}


def test_facts_per_source_row_level_counts_the_output_s_own_datasets() -> None:
    from sandbox.intake.policy import parse_policy
    from sandbox.judge.task import _for_source

    root = Path(__file__).resolve().parents[4] / "policies" / "exposure"
    used = {
        d: parse_policy((root / f"{d}.yaml").read_text()) for d in ("residents", "tax_payments")
    }
    facts = ViewFacts(entities={"residents": 20_000, "tax_payments": 60})
    ctx = Context(thresholds=Thresholds(k=10), datasets=tuple(sorted(used)), views=facts)
    table = py_table({"district": [str(i) for i in range(40)], "n": [500] * 40}, ("district",))
    # 40 rows against a dataset of 60 entities looks like one row per entity...
    assert [f.rule for f in row_level(table, ctx)] == ["row_level"]
    # ... but the output comes from residents alone.
    assert row_level(table, _for_source(ctx, ("residents",), used)) == []
