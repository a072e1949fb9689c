"""Stage 5 of the data flow, model specifications: read what the fitter wrote.

A Python job's ``publish_model`` is a specification (``sandbox.container.sdk.specs``);
the trusted side fits it with its own code in a fresh sandbox
(``sandbox/container/modelfit.py``), which writes ``model.json``. ``read_fitted``
reads that file strictly and returns the output to check and release.

Invariants:
- every key, type and number is checked: finite floats, whole sizes, the
  formula and family of the specification, term names of the shape patsy
  gives the formula's own factors (a level of a categorical factor is the
  only free text, without brackets or control characters), at most
  ``MAX_TERMS`` terms of at most ``MAX_TERM_CHARS`` characters;
- the released bytes are our own serialisation of the checked numbers,
  never the container's bytes;
- anything else raises ``CheckError``, whose message quotes nothing from the file.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from sandbox.container.sdk.specs import Factor, Formula, ModelSpec, SpecError, check_formula
from sandbox.errors import CheckError
from sandbox.judge.types import Output

MAX_BYTES = 1024 * 1024
MAX_TERMS = 200
MAX_TERM_CHARS = 200
INTERCEPT = "Intercept"
KEYS = frozenset(
    {
        "family",
        "formula",
        "n",
        "df_model",
        "df_resid",
        "params",
        "bse",
        "converged",
        "min_level_rows",
        "entities",
        "min_level_entities",
        "max_leverage",
    }
)
OPTIONAL = frozenset(
    {"entities", "min_level_entities", "max_leverage"}
)  # counted when entities are known
_LEVEL = r"\[(?:T\.)?[^\x00-\x1f\x7f\[\]]*\]"


def _factor_pattern(factor: Factor) -> str:
    if factor.categorical:
        return re.escape(factor.text) + _LEVEL
    if not factor.wrapper:
        # A plain column is categorical when it is not numeric (text, booleans).
        return re.escape(factor.text) + f"(?:{_LEVEL})?"
    return re.escape(factor.text)


def term_pattern(formula: Formula) -> re.Pattern[str]:
    """The names patsy may give the columns of ``formula``'s design matrix."""
    alternatives = [INTERCEPT] if formula.intercept else []
    for term in formula.terms:
        for order in itertools.permutations(term):
            alternatives.append(":".join(_factor_pattern(f) for f in order))
    return re.compile("|".join(f"(?:{a})" for a in alternatives))


def _no_constants(name: str) -> float:
    raise ValueError("not a finite number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("a key appears twice")
    return dict(pairs)


def _document(content: bytes) -> dict[str, Any]:
    if len(content) > MAX_BYTES:
        raise CheckError("the fitted model file is too large")
    try:
        loaded = json.loads(
            content.decode("utf-8"),
            parse_constant=_no_constants,
            object_pairs_hook=_unique_keys,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise CheckError("the fitted model file is not valid JSON") from e
    if not isinstance(loaded, dict) or not KEYS - OPTIONAL <= set(loaded) <= KEYS:
        raise CheckError("the fitted model file does not have the expected keys")
    return loaded


def _whole(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CheckError(f"the fitted model's {what} is not a whole number of at least 0")
    return value


def _numbers(value: object, what: str, pattern: re.Pattern[str]) -> dict[str, float]:
    if not isinstance(value, Mapping) or not value:
        raise CheckError(f"the fitted model's {what} are missing")
    if len(value) > MAX_TERMS:
        raise CheckError(f"the fitted model has more than {MAX_TERMS} terms")
    out: dict[str, float] = {}
    for name, number in value.items():
        if len(name) > MAX_TERM_CHARS or not pattern.fullmatch(name):
            raise CheckError(f"the fitted model's {what} name a term the formula does not make")
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise CheckError(f"the fitted model's {what} are not all numbers")
        if not math.isfinite(number):
            raise CheckError(f"the fitted model's {what} are not all finite")
        out[name] = float(number)
    return out


def _categorical(formula: Formula, terms: list[str]) -> list[str]:
    """The variables whose levels appear in the term names (their values are released)."""
    found = []
    for variable in formula.variables:
        marks = (f"{variable}[", f"C({variable})[")
        if any(m in part for t in terms for part in t.split(":") for m in marks):
            found.append(variable)
    return found


def read_fitted(content: bytes, spec: ModelSpec) -> Output:
    """The checked model of ``spec`` from the fitter's ``model.json``; ``CheckError`` if bad."""
    try:
        formula = check_formula(spec.formula)
    except SpecError as e:
        raise CheckError("the model specification's formula is refused") from e
    doc = _document(content)
    if doc["family"] != spec.family or doc["formula"] != formula.text:
        raise CheckError("the fitted model is not the one the specification asked for")
    if not isinstance(doc["converged"], bool):
        raise CheckError("the fitted model's convergence flag is not a boolean")
    n = _whole(doc["n"], "number of observations")
    df_model = _whole(doc["df_model"], "model degrees of freedom")
    df_resid = _whole(doc["df_resid"], "residual degrees of freedom")
    if df_resid > n:
        raise CheckError("the fitted model has more residual degrees of freedom than rows")
    min_level_rows = doc["min_level_rows"]
    if min_level_rows is not None:
        min_level_rows = _whole(min_level_rows, "smallest level size")
    counts: dict[str, int | float | None] = {}
    for key in ("entities", "min_level_entities"):
        counts[key] = None if doc.get(key) is None else _whole(doc[key], "number of entities")
    leverage = doc.get("max_leverage")
    if leverage is not None and (
        isinstance(leverage, bool)
        or not isinstance(leverage, int | float)
        or not -1e-9 <= leverage <= 1 + 1e-6
    ):
        raise CheckError("the fitted model's leverage is not a number between 0 and 1")
    counts["max_leverage"] = leverage
    pattern = term_pattern(formula)
    params = _numbers(doc["params"], "coefficients", pattern)
    bse = _numbers(doc["bse"], "standard errors", pattern)
    if list(bse) != list(params):
        raise CheckError("the fitted model's standard errors do not match its coefficients")

    released = {
        "kind": "glm",
        "family": spec.family,
        "formula": formula.text,
        "coefficients": params,
        "std_errors": bse,
        "n": n,
        "df_model": df_model,
        "df_resid": df_resid,
        "converged": doc["converged"],
        "description": spec.description,
    }
    text = json.dumps(released, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    body = text.encode("utf-8")
    entry = {
        "file": spec.file,
        "kind": "glm",
        "format": "json",
        "sql": spec.sql,
        "formula": formula.text,
        "family": spec.family,
        "description": spec.description,
        "model_kind": "glm",
        "terms": list(params),
        "n": n,
        "df_resid": df_resid,
        "sha256": hashlib.sha256(body).hexdigest(),
        "bytes": len(body),
    }
    model = {
        **released,
        "min_level_rows": min_level_rows,
        **counts,
        "categorical": _categorical(formula, list(params)),
    }
    return Output(
        file=spec.file,
        kind="model",
        source="recomputed",
        content=body,
        entry=entry,
        model=model,
    )
