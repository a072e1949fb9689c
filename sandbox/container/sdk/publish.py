"""Publishing outputs from inside the sandbox container.

(Long on purpose: every ``publish_*`` function of the SDK writes through the
same manifest, name and size rules here, so an analyst reads one module.)

Stage: the job itself (analyst code, in the container). Two sorts of
output, both declared in ``<output dir>/manifest.json``::

    {"version": 1, "outputs": [{"file": "by_district.csv", "kind": "query", ...}]}

- *Specifications* (``publish_query``, ``publish_model``): a manifest entry
  and no file. The job's own numbers are not used: the trusted side runs the
  job on dummy data to collect the specifications, then computes each one
  itself on the real data (the query through the SQL-product path, the model
  fitted by trusted code in a fresh sandbox). Only these can be released
  without a reviewer. ``sandbox/container/sdk/specs.py`` says what a valid one is.
- *Files* (``publish_table``, ``publish_model_summary``,
  ``publish_model_from``, ``publish_figure``, ``publish_text``): bytes the job
  made itself, written to the output directory and held for a reviewer.

Invariants:

- a name is one plain file name matching ``specs.NAME_PATTERN`` (lower case,
  at most 48 characters before the extension) with the extension of its
  kind; never ``manifest.json``, never a name already published or present
  in the output directory; a refused call writes nothing;
- a file is written before its manifest entry, each atomically (temporary
  file, then rename), so the manifest never names a missing or partial file;
- a file's entry records its SHA-256 and size, so later stages can tell the
  released file is the one that was declared;
- tables declare every column (group-by key, measure or count); model
  summaries carry coefficients, standard errors and sizes only, never
  per-row predictions or residuals.

Files in the output directory that the manifest does not list are never
released; later stages enforce that. The manifest is rewritten whole on each
call, so publishing from several processes at once is not supported.

Runs in the container: standard library at import time, pandas, pyarrow,
matplotlib and statsmodels imported only by the functions that need them.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import math
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from sandbox.container.sdk import specs

OUTPUT_DIR = Path("/output")
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1

NAME_PATTERN = specs.NAME_PATTERN
DESCRIPTION_MAX_CHARS = specs.DESCRIPTION_MAX_CHARS
TEXT_MAX_BYTES = 64 * 1024
FIGURE_DPI = 100
FIGURE_MAX_PIXELS = 4000  # per side
MODEL_KIND_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,31}")

__all__ = [
    "PublishError",
    "publish_figure",
    "publish_model",
    "publish_model_from",
    "publish_model_summary",
    "publish_query",
    "publish_table",
    "publish_text",
]

OutputDir = str | os.PathLike[str] | None


class PublishError(ValueError):
    """A ``publish_*`` call that cannot be honoured; nothing was written."""


# -- shared plumbing -------------------------------------------------------


def _module(name: str) -> ModuleType:
    """Import a heavy module only when a function needs it."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise PublishError(f"{name} is not available here") from e


def _output_dir(output_dir: OutputDir) -> Path:
    path = OUTPUT_DIR if output_dir is None else Path(output_dir)
    if not path.is_dir():
        raise PublishError(f"output directory {str(path)!r} does not exist")
    return path


def _check_name(name: object, extension: str) -> str:
    try:
        checked = specs.check_name(name, extension)
    except specs.SpecError as e:
        raise PublishError(str(e)) from e
    if checked == MANIFEST:
        raise PublishError(f"{MANIFEST!r} is reserved for the manifest")
    return checked


def _check_description(description: object) -> str:
    try:
        return specs.check_description(description)
    except specs.SpecError as e:
        raise PublishError(str(e)) from e


def _read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    if not path.exists():
        return {"version": MANIFEST_VERSION, "outputs": []}
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise PublishError(f"{MANIFEST} cannot be read: {e}") from e
    if (
        not isinstance(loaded, dict)
        or loaded.get("version") != MANIFEST_VERSION
        or not isinstance(loaded.get("outputs"), list)
    ):
        raise PublishError(f"{MANIFEST} was not written by this SDK")
    return loaded


def _write_atomically(path: Path, content: bytes) -> None:
    """Write ``content`` to a hidden temporary file, then rename it to ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".publish-")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _free_name(directory: Path, manifest: dict[str, Any], name: str) -> None:
    if any(isinstance(e, dict) and e.get("file") == name for e in manifest["outputs"]):
        raise PublishError(f"{name!r} is already published")
    if os.path.lexists(directory / name):
        raise PublishError(f"{name!r} already exists in the output directory")


def _append(directory: Path, manifest: dict[str, Any], entry: dict[str, Any]) -> None:
    manifest["outputs"].append(entry)
    text = json.dumps(manifest, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    _write_atomically(directory / MANIFEST, text.encode("utf-8"))


def _publish(
    output_dir: OutputDir, name: str, content: bytes, entry: dict[str, Any]
) -> dict[str, Any]:
    """Write ``content`` as ``name`` and append its manifest entry; return the entry."""
    directory = _output_dir(output_dir)
    manifest = _read_manifest(directory)
    _free_name(directory, manifest, name)
    full = {
        "file": name,
        **entry,
        "sha256": hashlib.sha256(content).hexdigest(),
        "bytes": len(content),
    }
    _write_atomically(directory / name, content)
    _append(directory, manifest, full)
    return dict(full)


def _publish_spec(output_dir: OutputDir, spec: specs.QuerySpec | specs.ModelSpec) -> dict[str, Any]:
    """Append a specification's manifest entry (no file is written); return the entry."""
    directory = _output_dir(output_dir)
    manifest = _read_manifest(directory)
    _free_name(directory, manifest, spec.file)
    entry: dict[str, Any] = specs.spec_entry(spec)
    _append(directory, manifest, entry)
    return dict(entry)


def _column_list(value: object, what: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise PublishError(f"{what} must be a list of column names")
    if not all(isinstance(c, str) for c in value):
        raise PublishError(f"{what} must contain column names (strings) only")
    if len(set(value)) != len(value):
        raise PublishError(f"{what} names a column twice")
    return list(value)


# -- tables ----------------------------------------------------------------


def _as_dataframe(data: object) -> Any:
    module = type(data).__module__.split(".")[0]
    if module == "pyarrow" and isinstance(data, _module("pyarrow").Table):
        return data.to_pandas()
    if module == "pandas":
        pd = _module("pandas")
        if isinstance(data, pd.DataFrame):
            return data
    raise PublishError(
        f"data must be a pandas DataFrame or a pyarrow Table, not {type(data).__name__}"
    )


def _check_count_column(frame: Any, count: str) -> None:
    pd = _module("pandas")
    values = frame[count]
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise PublishError(f"count column {count!r} must be numeric")
    if values.isna().any():
        raise PublishError(f"count column {count!r} has missing values")
    if (values < 0).any() or (values != values.round()).any():
        raise PublishError(f"count column {count!r} must hold non-negative whole numbers")


def publish_table(
    name: str,
    data: Any,
    *,
    group_by: Sequence[str],
    measures: Sequence[str],
    count: str | None = None,
    description: str = "",
    output_dir: OutputDir = None,
) -> dict[str, Any]:
    """Publish a table as CSV (UTF-8, header, no index); return its manifest entry.

    ``data`` is a pandas DataFrame or a pyarrow Table. Every column must be
    declared in exactly one of ``group_by`` (the keys of a row), ``measures``
    (values computed per group) or ``count`` (the number of records behind
    each row): an output says what each of its columns is.
    """
    _check_name(name, ".csv")
    description = _check_description(description)
    group_cols = _column_list(group_by, "group_by")
    measure_cols = _column_list(measures, "measures")
    if count is not None and not isinstance(count, str):
        raise PublishError("count must be a column name or None")
    count_cols = [] if count is None else [count]
    frame = _as_dataframe(data)

    if frame.columns.nlevels != 1:
        raise PublishError("columns must be flat (one level), not a MultiIndex")
    columns = list(frame.columns)
    if not all(isinstance(c, str) for c in columns):
        raise PublishError("every column name must be a string")
    if len(set(columns)) != len(columns):
        raise PublishError("the table has duplicate column names")
    if any(n is not None for n in frame.index.names):
        raise PublishError(
            "the table has a named index, which would be dropped: call .reset_index() "
            "and declare its columns"
        )

    declared = group_cols + measure_cols + count_cols
    twice = sorted({c for c in declared if declared.count(c) > 1})
    if twice:
        raise PublishError(f"columns declared more than once: {twice}")
    missing = [c for c in declared if c not in columns]
    if missing:
        raise PublishError(f"declared columns not in the table: {missing}")
    undeclared = [c for c in columns if c not in declared]
    if undeclared:
        raise PublishError(
            f"undeclared columns {undeclared}: declare each as group_by, measures or count"
        )
    if count is not None:
        _check_count_column(frame, count)

    content = frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
    entry = {
        "kind": "table",
        "format": "csv",
        "rows": len(frame),
        "columns": columns,
        "group_by": group_cols,
        "measures": measure_cols,
        "count": count,
        "description": description,
    }
    return _publish(output_dir, name, content, entry)


# -- specifications --------------------------------------------------------


def publish_query(
    name: str, sql: str, *, description: str = "", output_dir: OutputDir = None
) -> dict[str, Any]:
    """Ask the trusted side for a table: the result of ``sql`` over the views.

    Nothing the job computed is used, and no file is written: only the
    manifest entry ``{"file", "kind": "query", "sql", "description"}``. The
    trusted side runs the job on dummy data to collect this specification,
    then runs ``sql`` itself on the real data through the SQL-product path
    (static check, evidence rewrite, output rules, ledger) and publishes its
    own result as ``name`` (a ``.csv`` name). Returns the entry.
    """
    try:
        spec = specs.query_spec(name, sql, description)
    except specs.SpecError as e:
        raise PublishError(str(e)) from e
    _check_name(spec.file, ".csv")
    return _publish_spec(output_dir, spec)


def publish_model(
    name: str,
    formula: str,
    sql: str,
    family: str = "gaussian",
    *,
    description: str = "",
    output_dir: OutputDir = None,
) -> dict[str, Any]:
    """Ask the trusted side for a GLM ``formula`` fitted on the rows of ``sql``.

    Nothing the job computed is used, and no file is written: only the
    manifest entry ``{"file", "kind": "glm", "sql", "formula", "family",
    "description"}``. The trusted side collects the specification from a run
    on dummy data, runs ``sql`` on the real data, fits the model with its own
    code in a fresh sandbox and publishes the coefficients, standard errors
    and sizes as ``name`` (a ``.json`` name) once they pass the checks.

    ``formula`` follows a small grammar (``y ~ x + C(d) + np.log(z) + a:b +
    a*b``, ``- 1``; see ``sandbox/container/sdk/specs.py``) and ``family`` is one of
    gaussian, binomial, poisson or gamma. Returns the entry.
    """
    try:
        spec = specs.model_spec(name, formula, sql, family, description)
    except specs.SpecError as e:
        raise PublishError(str(e)) from e
    _check_name(spec.file, ".json")
    return _publish_spec(output_dir, spec)


# -- model summaries (held for review) ---------------------------------------


def _finite_mapping(values: object, what: str) -> dict[str, float]:
    if not isinstance(values, Mapping):
        raise PublishError(f"{what} must be a mapping of term name to number")
    out: dict[str, float] = {}
    for key, value in values.items():
        if not isinstance(key, str) or not key:
            raise PublishError(f"{what}: term names must be non-empty strings")
        if isinstance(value, bool):
            raise PublishError(f"{what}[{key!r}] must be a number")
        try:
            number = float(value)
        except (TypeError, ValueError) as e:
            raise PublishError(f"{what}[{key!r}] must be a number") from e
        if not math.isfinite(number):
            raise PublishError(f"{what}[{key!r}] is not finite")
        out[key] = number
    return out


def _whole(value: object, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PublishError(f"{what} must be an integer of at least {minimum}")
    return int(value)


def publish_model_summary(
    name: str,
    *,
    coefficients: Mapping[str, float],
    std_errors: Mapping[str, float] | None,
    n: int,
    df_resid: int,
    kind: str = "ols",
    description: str = "",
    output_dir: OutputDir = None,
) -> dict[str, Any]:
    """Publish a model summary the job computed itself as JSON; return its entry.

    The summary is held for a reviewer: its numbers come from the job's own
    code. For a model that can be released without review, use
    :func:`publish_model`. Only coefficients, their standard errors (same terms, or None), the
    number of observations ``n`` and the residual degrees of freedom are
    written; never per-row predictions or residuals.
    """
    _check_name(name, ".json")
    description = _check_description(description)
    if not isinstance(kind, str) or not MODEL_KIND_PATTERN.fullmatch(kind):
        raise PublishError(f"invalid model kind {kind!r}: lower-case letters, digits and '_'")
    coefs = _finite_mapping(coefficients, "coefficients")
    if not coefs:
        raise PublishError("coefficients is empty")
    errors = None if std_errors is None else _finite_mapping(std_errors, "std_errors")
    if errors is not None and set(errors) != set(coefs):
        raise PublishError("std_errors must have exactly the terms of coefficients")
    n = _whole(n, "n", 1)
    df_resid = _whole(df_resid, "df_resid", 0)
    if df_resid >= n:
        raise PublishError("df_resid must be smaller than n")
    document = {
        "kind": kind,
        "coefficients": coefs,
        "std_errors": errors,
        "n": n,
        "df_resid": df_resid,
        "description": description,
    }
    content = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    entry = {
        "kind": "model",
        "format": "json",
        "model_kind": kind,
        "terms": list(coefs),
        "n": n,
        "df_resid": df_resid,
        "description": description,
    }
    return _publish(output_dir, name, content, entry)


def _named(values: Any, names: Sequence[str]) -> dict[str, float]:
    if hasattr(values, "index") and hasattr(values, "to_numpy"):  # a pandas Series
        return {str(k): float(v) for k, v in zip(values.index, values.to_numpy(), strict=True)}
    flat = list(values)
    if len(flat) != len(names):
        raise PublishError("the results' parameters do not match the model's term names")
    return {str(k): float(v) for k, v in zip(names, flat, strict=True)}


def publish_model_from(
    name: str, results: Any, description: str = "", *, output_dir: OutputDir = None
) -> dict[str, Any]:
    """Publish a fitted statsmodels results object through :func:`publish_model_summary`.

    Takes ``params``, ``bse``, ``nobs`` and ``df_resid``; the kind is the
    model class's name in lower case (``ols``, ``logit``, ``glm`` ...).
    """
    base = _module("statsmodels.base.model")
    wrapper = _module("statsmodels.base.wrapper")
    if not isinstance(results, (base.Results, wrapper.ResultsWrapper)):
        raise PublishError(
            f"results must be a fitted statsmodels results object, not {type(results).__name__}"
        )
    try:
        names = [str(x) for x in results.model.exog_names]
        coefficients = _named(results.params, names)
        std_errors = _named(results.bse, names)
        nobs, df_resid = float(results.nobs), float(results.df_resid)
    except (AttributeError, TypeError, ValueError) as e:
        raise PublishError(f"cannot read the fitted model: {e}") from e
    if not (nobs.is_integer() and df_resid.is_integer()):
        raise PublishError(
            "nobs and df_resid must be whole numbers (weighted fits are not supported)"
        )
    return publish_model_summary(
        name,
        coefficients=coefficients,
        std_errors=std_errors,
        n=int(nobs),
        df_resid=int(df_resid),
        kind=type(results.model).__name__.lower(),
        description=description,
        output_dir=output_dir,
    )


# -- figures and text ------------------------------------------------------


def publish_figure(
    name: str, figure: Any = None, *, description: str = "", output_dir: OutputDir = None
) -> dict[str, Any]:
    """Publish a matplotlib Figure (default: the current one) as PNG at 100 dpi.

    Rendered with the Agg backend whatever the figure's own; figures larger
    than 4000 pixels on a side are refused.
    """
    _check_name(name, ".png")
    description = _check_description(description)
    if figure is None:
        plt = _module("matplotlib.pyplot")
        if not plt.get_fignums():
            raise PublishError("there is no current figure to publish")
        figure = plt.gcf()
    if not isinstance(figure, _module("matplotlib.figure").Figure):
        raise PublishError(f"figure must be a matplotlib Figure, not {type(figure).__name__}")
    width_in, height_in = figure.get_size_inches()
    width, height = round(width_in * FIGURE_DPI), round(height_in * FIGURE_DPI)
    if width > FIGURE_MAX_PIXELS or height > FIGURE_MAX_PIXELS:
        raise PublishError(
            f"figure is {width}x{height} px; at most {FIGURE_MAX_PIXELS} px a side is allowed"
        )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=FIGURE_DPI, backend="agg", metadata={"Software": None})
    content = buffer.getvalue()
    # The PNG header's IHDR chunk holds the size actually rendered.
    width, height = int.from_bytes(content[16:20], "big"), int.from_bytes(content[20:24], "big")
    entry = {
        "kind": "figure",
        "format": "png",
        "width": width,
        "height": height,
        "description": description,
    }
    return _publish(output_dir, name, content, entry)


def publish_text(
    name: str, text: str, *, description: str = "", output_dir: OutputDir = None
) -> dict[str, Any]:
    """Publish UTF-8 text as ``.txt`` (at most 64 KiB encoded), held for a reviewer."""
    _check_name(name, ".txt")
    description = _check_description(description)
    if not isinstance(text, str):
        raise PublishError("text must be a string")
    try:
        content = text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise PublishError(f"text cannot be encoded as UTF-8: {e}") from e
    if len(content) > TEXT_MAX_BYTES:
        raise PublishError(f"text is {len(content)} bytes; at most {TEXT_MAX_BYTES} allowed")
    entry = {"kind": "text", "format": "txt", "description": description}
    return _publish(output_dir, name, content, entry)
