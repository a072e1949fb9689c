"""Reading the fitter's model.json on the trusted side: strict, and re-serialised."""

from __future__ import annotations

import functools
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sandbox.container.modelfit import fit
from sandbox.container.sdk.specs import model_spec
from sandbox.errors import CheckError
from sandbox.judge.outputs.fitted import read_fitted
from sandbox.judge.rules import models
from sandbox.judge.types import Context, Thresholds, Verdict

FORMULA = "income ~ age + C(district)"
SPEC = model_spec("income.json", FORMULA, "SELECT income, age, district FROM people")


def rows(n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    age = rng.uniform(20, 70, size=n)
    return pd.DataFrame(
        {
            "age": age,
            "district": rng.choice(["north", "south"], size=n),
            "income": 3.0 + 0.4 * age + rng.normal(size=n),
        }
    )


@functools.cache
def _fit(n: int) -> str:
    return json.dumps(fit(rows(n), SPEC.formula, SPEC.family))


def fitted(n: int = 120) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(_fit(n))
    return loaded


def encode(doc: dict[str, Any], **json_args: Any) -> bytes:
    return json.dumps(doc, **json_args).encode("utf-8")


def test_a_real_fit_reads_back():
    doc = fitted()
    output = read_fitted(encode(doc), SPEC)
    assert (output.file, output.kind, output.source) == ("income.json", "model", "recomputed")
    released = json.loads(output.content)
    assert released == {
        "kind": "glm",
        "family": "gaussian",
        "formula": FORMULA,
        "coefficients": doc["params"],
        "std_errors": doc["bse"],
        "n": 120,
        "df_model": 2,
        "df_resid": 117,
        "converged": True,
        "description": "",
    }
    assert output.entry["terms"] == ["Intercept", "C(district)[T.south]", "age"]
    assert output.entry["sql"] == SPEC.sql and output.entry["bytes"] == len(output.content)
    assert output.model is not None
    assert output.model["categorical"] == ["district"]
    assert output.model["min_level_rows"] == doc["min_level_rows"]
    assert "min_level_rows" not in released
    assert models.model_disclosure(output, Context()) == []


def test_the_released_bytes_are_ours_not_the_containers():
    doc = fitted()
    padded = encode(doc, indent=7).replace(b"{", b"{  ", 1)
    assert read_fitted(padded, SPEC).content == read_fitted(encode(doc), SPEC).content
    assert b"  " * 7 not in read_fitted(padded, SPEC).content


def test_few_rows_are_held_by_the_model_rule():
    output = read_fitted(encode(fitted(12)), SPEC)
    findings = models.model_disclosure(output, Context(thresholds=Thresholds(model_min_df=10)))
    verdicts = [f.verdict for f in findings]
    assert verdicts[:2] == [Verdict.REVIEW, Verdict.REVIEW]  # degrees of freedom, rows
    # ... and with 12 rows, its levels hold fewer than k rows each: never released.
    assert Verdict.FAIL in verdicts


def test_term_names_follow_the_formula_and_its_levels():
    spec = model_spec("m.json", "y ~ a*C(d) + flag + np.log(z) + I(a ** 2) - 1", "SELECT 1")
    names = [
        "C(d)[x y]",
        "C(d)[T.2024]",
        "a",
        "flag[T.True]",
        "flag",
        "np.log(z)",
        "I(a ** 2)",
        "a:C(d)[T.é]",
        "C(d)[T.b]:a",
    ]
    doc = {
        "family": "gaussian",
        "formula": spec.formula,
        "n": 100,
        "df_model": 8,
        "df_resid": 91,
        "params": dict.fromkeys(names, 1.0),
        "bse": dict.fromkeys(names, 0.5),
        "converged": True,
        "min_level_rows": 12,
    }
    output = read_fitted(encode(doc), spec)
    assert output.entry["terms"] == names
    assert output.model is not None and output.model["categorical"] == ["d", "flag"]


def bad(**changes: Any) -> bytes:
    doc = {**fitted(), **changes}
    return encode({k: v for k, v in doc.items() if v is not ...})


def renamed(old: str, new: str) -> dict[str, Any]:
    doc = fitted()
    return {
        "params": {new if k == old else k: v for k, v in doc["params"].items()},
        "bse": {new if k == old else k: v for k, v in doc["bse"].items()},
    }


SECRET = "income_of_person_4711_is_83250"


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\xff\xfe",
        b"[1, 2]",
        b'{"family": "gaussian"}',
        b" " * (1024 * 1024 + 1),
        bad(extra=1),
        bad(residuals=[1.0, 2.0]),
        bad(fitted_values=[1.0, 2.0]),
        bad(min_level_rows=...),
        bad(family="binomial"),
        bad(formula="income ~ age"),
        bad(formula=FORMULA + " + 0"),
        bad(n=-1),
        bad(n=120.0),
        bad(n=True),
        bad(n="120"),
        bad(df_resid=None),
        bad(df_resid=121),
        bad(df_model=1.5),
        bad(converged=1),
        bad(min_level_rows=-3),
        bad(min_level_rows="12"),
        bad(params={}),
        bad(params=[1.0, 2.0, 3.0]),
        bad(params={"Intercept": 1.0, "age": "0.4", "C(district)[T.south]": 1.0}),
        bad(params={"Intercept": 1.0, "age": True, "C(district)[T.south]": 1.0}),
        bad(bse={"Intercept": 1.0}),
        bad(**renamed("age", SECRET)),
        bad(**renamed("age", "age_secret")),
        bad(**renamed("age", "np.log(age)")),
        bad(**renamed("age", "age[T.83250]:age")),
        bad(**renamed("C(district)[T.south]", "C(district)[T.so\nuth]")),
        bad(**renamed("C(district)[T.south]", "C(district)[T.a]b]")),
        bad(**renamed("C(district)[T.south]", "C(age)[T.41.5]")),
        bad(**renamed("C(district)[T.south]", "C(district)[T." + "x" * 200 + "]")),
        bad(**renamed("Intercept", "intercept")),
        bad(
            params={f"C(district)[T.{i}]": 1.0 for i in range(201)},
            bse={f"C(district)[T.{i}]": 1.0 for i in range(201)},
        ),
        encode(fitted()).replace(b'"converged"', b'"bse": {}, "converged"'),
        encode(fitted()).replace(b'"converged": true', b'"converged": NaN'),
    ],
)
def test_malformed_files_are_refused(content):
    with pytest.raises(CheckError) as raised:
        read_fitted(content, SPEC)
    assert SECRET not in str(raised.value)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_numbers_must_be_finite(constant):
    content = encode(fitted())
    age = json.dumps(fitted()["params"]["age"]).encode()
    tampered = content.replace(age, constant.encode(), 1)
    assert tampered != content
    with pytest.raises(CheckError):
        read_fitted(tampered, SPEC)


def test_a_spec_with_a_bad_formula_is_refused():
    spec = SPEC.__class__(SPEC.file, SPEC.sql, "income ~ open(age)", "gaussian", "")
    with pytest.raises(CheckError):
        read_fitted(encode(fitted()), spec)
