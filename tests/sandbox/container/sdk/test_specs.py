"""Output specifications: the formula grammar and the manifest entries."""

from __future__ import annotations

import pytest

from sandbox.container.sdk.specs import (
    FAMILIES,
    NAME_PATTERN,
    ModelSpec,
    QuerySpec,
    SpecError,
    check_formula,
    parse_spec,
)


@pytest.mark.parametrize(
    ("formula", "canonical", "variables"),
    [
        ("y ~ x", "y ~ x", ("y", "x")),
        ("y~x+z", "y ~ x + z", ("y", "x", "z")),
        ("income ~ C(district)", "income ~ C(district)", ("income", "district")),
        (
            "y ~ np.log(a) + np.log1p(b) + np.sqrt(c) + I(d ** 2)",
            "y ~ np.log(a) + np.log1p(b) + np.sqrt(c) + I(d ** 2)",
            ("y", "a", "b", "c", "d"),
        ),
        ("y ~ a:b", "y ~ a:b", ("y", "a", "b")),
        ("y ~ b:a + a:b", "y ~ a:b", ("y", "a", "b")),
        ("y ~ a * b", "y ~ a + b + a:b", ("y", "a", "b")),
        ("y ~ a * C(d) * c", "y ~ a + C(d) + c + a:C(d) + a:c + c:C(d) + a:c:C(d)", None),
        ("y ~ x - 1", "y ~ x - 1", ("y", "x")),
        ("y ~ x + 0", "y ~ x - 1", ("y", "x")),
        ("y ~ 0 + x", "y ~ x - 1", ("y", "x")),
        ("y ~ 1", "y ~ 1", ("y",)),
        ("y ~ x + x", "y ~ x", ("y", "x")),
        ("np.log(y) ~ x", "np.log(y) ~ x", ("y", "x")),
        ("_y2 ~ X_1", "_y2 ~ X_1", ("_y2", "X_1")),
        ("y ~ " + "a" * 64, "y ~ " + "a" * 64, None),
    ],
)
def test_accepted_formulas_are_rewritten_canonically(formula, canonical, variables):
    checked = check_formula(formula)
    assert checked.text == canonical
    assert check_formula(checked.text) == checked
    if variables is not None:
        assert checked.variables == variables


def test_the_intercept_and_the_categorical_factors_are_known():
    checked = check_formula("y ~ C(d):x + z - 1")
    assert not checked.intercept
    assert [[f.categorical for f in t] for t in checked.terms] == [[True, False], [False]]


@pytest.mark.parametrize(
    "formula",
    [
        # code, not formulas
        "y ~ __import__('os').system('id')",
        "y ~ __import__",
        "y ~ __class__",
        "y ~ x.__class__",
        "y ~ np.os",
        "y ~ np.log.__globals__",
        "y ~ np.exp(x)",
        "y ~ np.linalg.inv(x)",
        "y ~ lambda",
        "y ~ (lambda: 1)()",
        "y ~ x[0]",
        "y ~ x['a']",
        "y ~ 'a'",
        'y ~ "a"',
        "y ~ open(x)",
        "y ~ eval(x)",
        "y ~ exec(x)",
        "y ~ getattr(x, y)",
        "y ~ Q('x')",
        "y ~ Q(x)",
        "y ~ C(x, Sum)",
        "y ~ C(np.log(x))",
        "y ~ np.log(np.log(x))",
        "y ~ I(x ** 3)",
        "y ~ I(x * 1000000 + 7)",
        "y ~ I(x)",
        "y ~ x ** 2",
        "y ~ x; import os",
        "y ~ x\nimport os",
        "y ~ x if True else z",
        "y ~ True",
        "y ~ None",
        "y ~ np",
        "y ~ x @ z",
        "y ~ x / z",
        "y ~ x | z",
        "y ~ (a + b)",
        "y ~ {x}",
        "y ~ x,",
        "y ~ é",
        "y ~ x\u2028",
        "y ~ " + "a" * 65,
        # not the grammar
        "",
        "y",
        "~ x",
        "y ~",
        "y ~ x +",
        "y ~ x - z",
        "y ~ x - 0",
        "y ~ 2",
        "y ~ 0",
        "y ~ y",
        "y ~ x + np.log(y)",
        "C(y) ~ x",
        "y ~ x ~ z",
        "y ~ a*b*c*d*e",
        "y ~ a:b:c:d:e",
        # too long
        "y ~ " + " + ".join(f"x{i}" for i in range(300)),
        "y ~ " + " + ".join(f"x{i}" for i in range(65)),
        "y ~ " + "*".join("abcdefghijklmnopqrstuvwxyz"),
    ],
)
def test_anything_outside_the_grammar_is_refused(formula):
    with pytest.raises(SpecError) as raised:
        check_formula(formula)
    if len(formula) > 8:
        assert formula not in str(raised.value)


def test_messages_quote_nothing_of_the_formula():
    secret = "income_of_person_12345"
    with pytest.raises(SpecError) as raised:
        check_formula(f"y ~ open({secret})")
    assert secret not in str(raised.value)


def test_non_strings_are_refused():
    with pytest.raises(SpecError):
        check_formula(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("by_district.csv", True),
        ("2024.csv", True),
        ("a-b_c.parquet", True),
        ("x" * 48 + ".json", True),
        ("x" * 49 + ".json", False),
        ("By_district.csv", False),
        ("a b.csv", False),
        ("résumé.txt", False),
        ("../a.csv", False),
        ("a/b.csv", False),
        (".hidden.csv", False),
        ("-a.csv", False),
        ("a.md", False),
        ("a.csv.txt", False),
        ("a.CSV", False),
        ("a.csv\n", False),
    ],
)
def test_name_pattern(name, ok):
    assert bool(NAME_PATTERN.fullmatch(name)) is ok


def query_entry(**changes: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "file": "by_district.csv",
        "kind": "query",
        "sql": "SELECT district, count(*) AS n FROM residents GROUP BY 1",
        "description": "people per district",
    }
    return {**entry, **changes}


def model_entry(**changes: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "file": "income.json",
        "kind": "glm",
        "sql": "SELECT income, age, district FROM residents",
        "formula": "income ~ age+C(district)",
        "family": "gaussian",
        "description": "",
    }
    return {**entry, **changes}


def test_parse_spec_reads_both_kinds():
    assert parse_spec(query_entry()) == QuerySpec(
        "by_district.csv",
        "SELECT district, count(*) AS n FROM residents GROUP BY 1",
        "people per district",
    )
    assert parse_spec(model_entry()) == ModelSpec(
        "income.json",
        "SELECT income, age, district FROM residents",
        "income ~ age + C(district)",
        "gaussian",
        "",
    )
    for family in FAMILIES:
        spec = parse_spec(model_entry(family=family))
        assert isinstance(spec, ModelSpec) and spec.family == family


def test_entries_of_other_kinds_are_not_specs():
    assert parse_spec({"file": "t.csv", "kind": "table", "sha256": "00"}) is None
    assert parse_spec({"file": "t.csv"}) is None


@pytest.mark.parametrize(
    "entry",
    [
        query_entry(extra=1),
        query_entry(sha256="00"),
        {k: v for k, v in query_entry().items() if k != "description"},
        query_entry(file="by_district.json"),
        query_entry(file="By_District.csv"),
        query_entry(file="../by_district.csv"),
        query_entry(file=3),
        query_entry(sql=""),
        query_entry(sql=["SELECT 1"]),
        query_entry(sql="SELECT 1 -- " + "x" * 64 * 1024),
        query_entry(description=None),
        query_entry(description="x" * 4001),
        model_entry(file="income.csv"),
        model_entry(family="tweedie"),
        model_entry(family=None),
        model_entry(formula="income ~ __import__('os')"),
        model_entry(formula=1),
        model_entry(weights="w"),
        {k: v for k, v in model_entry().items() if k != "family"},
    ],
)
def test_parse_spec_is_strict(entry):
    with pytest.raises(SpecError):
        parse_spec(entry)
