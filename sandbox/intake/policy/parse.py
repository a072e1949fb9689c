"""From a provider's YAML to a checked policy: parse, validate, fit to the dataset, version.

``parse_policy`` validates the YAML against ``model`` and reports every
problem at once with its field and line; ``check_against_schema`` checks the
policy against the dataset's columns and types; ``policy_version`` is the
content hash a stored version is named by; ``check_grading`` checks each column's
visibility against its security level's row of the grading table (``grading``).
"""

from __future__ import annotations

import hashlib
import json

import yaml
from pydantic import ValidationError

from sandbox.errors import PolicyError
from sandbox.intake.policy.grading import GradingTable, grading_problems
from sandbox.intake.policy.model import Bands, ExposurePolicy, Prefix, Truncate, Width


def _node_line(root: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the YAML node at ``loc`` (or of its nearest parent)."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            found = None
            for k_node, v_node in node.value:
                if k_node.value == key:
                    found = v_node
                    line = k_node.start_mark.line + 1
                    break
            node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            node = node.value[key] if key < len(node.value) else None
            if node is not None:
                line = node.start_mark.line + 1
        else:
            break
        if node is None:
            break
    return line


def _where(loc: tuple[int | str, ...]) -> str:
    # Pydantic adds union member names to the location; they mean nothing to a provider.
    parts = [str(p) for p in loc if not (isinstance(p, str) and p[:1].isupper())]
    parts = [p for p in parts if p not in ("function-after",)]
    return ".".join(parts) or "(top level)"


def parse_policy(text: str, source: str = "policy") -> ExposurePolicy:
    """Parse and validate a policy's YAML text (no dataset needed)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise PolicyError(
            f"{source} is not valid YAML{where}: {getattr(e, 'problem', None) or e}"
        ) from e
    if not isinstance(data, dict):
        raise PolicyError(f"{source} must be a YAML mapping")
    try:
        return ExposurePolicy.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            loc = tuple(err["loc"])
            line = _node_line(
                root, tuple(p for p in loc if not (isinstance(p, str) and p[:1].isupper()))
            )
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{_where(loc)} (line {line}): {msg}")
        raise PolicyError(f"{source} is invalid", sorted(set(problems))) from e


_TYPE_FAMILY = {
    "number": (
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "FLOAT",
        "DOUBLE",
        "DECIMAL",
    ),
    "date": (
        "DATE",
        "TIMESTAMP",
        "TIMESTAMP WITH TIME ZONE",
        "TIMESTAMP_NS",
        "TIMESTAMP_MS",
        "TIMESTAMP_S",
    ),
}


def _family(duckdb_type: str) -> str:
    base = duckdb_type.upper().split("(")[0].strip()
    for family, names in _TYPE_FAMILY.items():
        if base in names:
            return family
    return "text" if base in ("VARCHAR", "TEXT", "STRING") else "other"


def check_against_schema(
    policy: ExposurePolicy, columns: dict[str, str], dataset: str | None = None
) -> None:
    """Check a parsed policy against a dataset's columns ``{name: DuckDB type}``."""
    problems = []
    if dataset is not None and policy.dataset != dataset:
        problems.append(f"dataset: the policy is for {policy.dataset!r}, not {dataset!r}")
    for name in policy.columns:
        if name not in columns:
            problems.append(f"columns.{name}: the dataset has no column {name!r}")
    for name in columns:
        if name not in policy.columns:
            problems.append(
                f"columns.{name}: column {name!r} is not classified "
                "(every column needs a class, level and visibility)"
            )
    for name, col in policy.columns.items():
        family = _family(columns.get(name, ""))
        if name not in columns or col.generalise is None:
            continue
        g = col.generalise
        if isinstance(g, Bands | Width) and family != "number":
            problems.append(f"columns.{name}.generalise: bands need a numeric column")
        if isinstance(g, Truncate) and family != "date":
            problems.append(f"columns.{name}.generalise: truncate needs a date column")
        if isinstance(g, Prefix) and family not in ("text", "number"):
            problems.append(f"columns.{name}.generalise: prefix needs a code column")
    for i, f in enumerate(policy.row_filters):
        if f.column not in columns:
            problems.append(f"row_filters.{i}.column: the dataset has no column {f.column!r}")
    if problems:
        raise PolicyError(f"policy for {policy.dataset!r} does not fit the dataset", problems)


def check_grading(policy: ExposurePolicy, table: GradingTable, text: str | None = None) -> None:
    """Refuse a policy whose columns break the grading table, naming column, level and rule.

    ``text``: the policy's YAML, to give each problem its line.
    """
    found = grading_problems(policy, table)
    if not found:
        return
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader) if text is not None else None
    except yaml.YAMLError:
        root = None
    problems = []
    for name, field, problem in found:
        line = _node_line(root, ("columns", name, field)) if root is not None else None
        where = f" (line {line})" if line is not None else ""
        problems.append(f"columns.{name}.{field}{where}: {problem}")
    raise PolicyError(f"policy for {policy.dataset!r} breaks the grading table", problems)


def policy_version(policy: ExposurePolicy) -> str:
    """Content hash of the validated policy (not of its formatting)."""
    canonical = json.dumps(policy.model_dump(mode="json", by_alias=True), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
