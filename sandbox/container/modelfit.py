"""Container side of a model specification: fit a GLM from a query's rows.

Stage 4 of the data flow for the models a Python job specifies with
``publish_model``. The runner calls ``run_model`` when ``/job/job.json`` says
``"kind": "model"``. Everything in the job description is ours: the query is
the trusted side's checked SQL, the formula the canonical text of
``sandbox.container.sdk.specs.check_formula`` (checked again here before use). The
query runs through ``sandbox.sdk.connect`` (external access disabled,
configuration locked, memory and thread limits), then statsmodels fits the
GLM with patsy and no namespace but ``np``; rows with missing values are
dropped. The summary goes to ``/output/model.json``::

    {"family", "formula", "n", "df_model", "df_resid",
     "params": {term: float}, "bse": {term: float}, "converged": bool,
     "min_level_rows": int | null}

``min_level_rows`` is the fewest rows behind any level (or cell) of a
categorical term, for the trusted side's rules; it is not released.

Invariants:
- never residuals, fitted values or rows: only the numbers above;
- every variable of the formula is a column of the query's result, so the
  formula machinery never resolves a name to anything else;
- exit 0 with ``model.json``, 1 when the query or the fit fails (message on
  stderr, which is withheld from the operator for real data), 65 for a job
  description that is not a model job. Nothing else is written to ``/output``.
"""

from __future__ import annotations

import importlib
import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any

from sandbox.container.sdk.specs import FAMILIES, Factor, Formula, SpecError, check_formula

RESULT = "model.json"
EXIT_BAD_JOB = 65
EXIT_FAILED = 1
DISCRETE = 10  # a numeric variable of at most this many values is counted as levels


class FitFailed(Exception):
    """The query or the fit gave no usable model (the message quotes no data)."""


def _description(job: dict[str, Any]) -> tuple[str, str, str, str, int] | None:
    query, formula = job.get("query"), job.get("formula")
    family = job.get("family", "gaussian")
    memory, threads = job.get("memory_limit", "512MB"), job.get("threads", 1)
    if (
        not isinstance(query, str)
        or not isinstance(formula, str)
        or family not in FAMILIES
        or not isinstance(memory, str)
        or isinstance(threads, bool)
        or not isinstance(threads, int)
    ):
        return None
    return query, formula, str(family), memory, threads


def _rows(query: str, data_dir: Path, memory: str, threads: int) -> Any:
    import duckdb

    from sandbox.sdk import connect

    con = connect(data_dir, memory_limit=memory, threads=threads)
    try:
        return con.sql(query).df()
    except duckdb.Error as e:
        raise FitFailed(f"the query failed: {type(e).__name__}") from e
    finally:
        con.close()


def _family(name: str) -> Any:
    sm = importlib.import_module("statsmodels.api")
    families = {
        "gaussian": sm.families.Gaussian,
        "binomial": sm.families.Binomial,
        "poisson": sm.families.Poisson,
        "gamma": sm.families.Gamma,
    }
    return families[name]()


def _finite(values: Any, what: str) -> dict[str, float]:
    out = {str(k): float(v) for k, v in values.items()}
    if not all(math.isfinite(v) for v in out.values()):
        raise FitFailed(f"the fit gave {what} that are not finite")
    return out


def _whole(value: Any, what: str) -> int:
    number = float(value)
    if not number.is_integer() or number < 0:
        raise FitFailed(f"the fit gave a {what} that is not a whole number")
    return int(number)


def fit(
    rows: Any, formula: str, family: str, entities: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    """Fit ``formula`` (canonical, checked) on ``rows`` (a DataFrame); the summary only.

    ``entities``: per dataset, the columns of ``rows`` holding each row's entity
    pseudonyms (added by the trusted side's rewrite); they are counted, never fitted.
    """
    import numpy as np

    # statsmodels and pandas have no type information here; imported by name.
    formulas = importlib.import_module("statsmodels.formula")
    smf = importlib.import_module("statsmodels.formula.api")
    checked = check_formula(formula)
    columns = [str(c) for c in rows.columns]
    if any(columns.count(v) != 1 for v in checked.variables):
        raise FitFailed("each variable of the formula must be exactly one column of the query")
    entity_columns = [c for cols in (entities or {}).values() for c in cols]
    if set(entity_columns) & set(checked.variables) or not set(entity_columns) <= set(columns):
        raise FitFailed("the entity columns of the rows are not as described")
    frame = rows[list(dict.fromkeys([*checked.variables, *entity_columns]))].dropna(
        subset=list(checked.variables)
    )
    formulas.options.formula_engine = "patsy"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = smf.glm(
                checked.text,
                frame,
                family=_family(family),
                missing="drop",
                eval_env={"np": np},
            )
            results = model.fit()
    except Exception as e:  # patsy, statsmodels and numpy raise many kinds
        raise FitFailed(f"the model cannot be fitted: {type(e).__name__}") from e
    params = _finite(results.params, "coefficients")
    bse = _finite(results.bse, "standard errors")
    return {
        "family": family,
        "formula": checked.text,
        "n": _whole(results.nobs, "number of observations"),
        "df_model": _whole(results.df_model, "model degrees of freedom"),
        "df_resid": _whole(results.df_resid, "residual degrees of freedom"),
        "params": params,
        "bse": bse,
        "converged": bool(getattr(results, "converged", True)),
        "min_level_rows": min_level_rows(frame, checked),
        "max_leverage": _max_leverage(results),
        "entities": _entities(frame, entities or {}),
        "min_level_entities": min_level_entities(frame, checked, entities or {}),
    }


def _max_leverage(results: Any) -> float | None:
    """The largest diagonal of the hat matrix: near 1, one row fixes its own fitted
    value, and the coefficients can give it back (None when it cannot be computed)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hat = results.get_hat_matrix_diag()
        value = float(max(hat)) if len(hat) else 0.0
    except Exception:  # statsmodels raises many kinds on degenerate fits
        return None
    return value if math.isfinite(value) else None


def _entities(frame: Any, entities: dict[str, list[str]]) -> int | None:
    """The fewest distinct entities of any dataset the rows come from (None: not known)."""
    if not entities:
        return None
    return min(max(int(frame[c].nunique()) for c in cols) for cols in entities.values())


def min_level_entities(frame: Any, formula: Formula, entities: dict[str, list[str]]) -> int | None:
    """The fewest distinct entities (of any dataset) behind one level or cell of a
    categorical term; None without one. Several columns of one dataset (a self-join):
    the largest of their counts, a lower bound of the level's entities."""
    if not entities:
        return None
    smallest: int | None = None
    for term in formula.terms:
        grouping = list(dict.fromkeys(f.variable for f in term if _is_categorical(frame, f)))
        if not grouping:
            continue
        grouped = frame.groupby(grouping, observed=True, dropna=False)
        for cols in entities.values():
            counts = grouped[cols].nunique().max(axis=1)
            if len(counts):
                least = int(counts.min())
                smallest = least if smallest is None else min(smallest, least)
    return smallest


def _is_categorical(frame: Any, factor: Factor) -> bool:
    """Levels to count: ``C()``, a column that is not numeric (booleans included), or
    a numeric column of few values (an indicator made with CASE is a level too)."""
    types = importlib.import_module("pandas.api.types")
    if factor.categorical:
        return True
    column = frame[factor.variable]
    if not types.is_numeric_dtype(column) or types.is_bool_dtype(column):
        return not factor.wrapper
    return int(column.nunique()) <= DISCRETE


def min_level_rows(frame: Any, formula: Formula) -> int | None:
    """The fewest rows behind one level (or cell) of a categorical term; None without one.

    A level with few rows has a coefficient that restores them: the trusted
    side's rules hold such a model.
    """
    smallest: int | None = None
    for term in formula.terms:
        grouping = list(dict.fromkeys(f.variable for f in term if _is_categorical(frame, f)))
        if not grouping:
            continue
        sizes = frame.groupby(grouping, observed=True, dropna=False).size()
        if len(sizes):
            least = int(sizes.min())
            smallest = least if smallest is None else min(smallest, least)
    return smallest


def run_model(
    job_dir: Path,
    job: dict[str, Any],
    data_dir: Path = Path("/data"),
    output_dir: Path = Path("/output"),
) -> int:
    """Run a model job described by ``job``; the exit status of the container."""
    described = _description(job)
    if described is None:
        print(
            "runner: a model job needs a query, a formula, a family, a memory_limit and threads",
            file=sys.stderr,
        )
        return EXIT_BAD_JOB
    query, formula, family, memory, threads = described
    entities = job.get("entities") or {}
    if not isinstance(entities, dict) or not all(
        isinstance(d, str) and isinstance(c, list) and c and all(isinstance(x, str) for x in c)
        for d, c in entities.items()
    ):
        print("runner: a model job's entities must map datasets to columns", file=sys.stderr)
        return EXIT_BAD_JOB
    try:
        check_formula(formula)
    except SpecError as e:
        print(f"runner: the formula is refused: {e}", file=sys.stderr)
        return EXIT_BAD_JOB
    try:
        summary = fit(_rows(query, data_dir, memory, threads), formula, family, entities)
    except FitFailed as e:
        print(f"runner: {e}", file=sys.stderr)
        return EXIT_FAILED
    text = json.dumps(summary, indent=2, allow_nan=False) + "\n"
    (output_dir / RESULT).write_text(text, encoding="utf-8")
    return 0
