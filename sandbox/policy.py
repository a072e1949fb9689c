"""Exposure policies: what of a dataset may be seen, and how (written by its provider).

One YAML file per dataset classifies every column (class, security level,
visibility, optional generalisation and value domain) and sets the
dataset's release rules (``k``, dominance, small-cell action, auto-release,
output caps, row filters). See ``policies/exposure/`` for examples.

Invariants:
- Deny by default: every column of the dataset must be classified, and a
  policy naming a column the dataset does not have is rejected.
- An identifier is never ``plain`` without an explicit, reasoned override.
- A rejected policy stores nothing; every problem is reported at once,
  naming the field and its line in the YAML.
- Policies are versioned by content; a stored version never changes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sandbox.errors import PolicyError
from sandbox.fsutil import write_atomic

DOMINANCE_DEFAULTS = {"p": 0.10, "n": 2, "k": 0.90}


class ColumnClass(StrEnum):
    IDENTIFIER = "identifier"
    QUASI_IDENTIFIER = "quasi_identifier"
    SENSITIVE = "sensitive"
    ATTRIBUTE = "attribute"


class Visibility(StrEnum):
    HIDDEN = "hidden"  # absent from views and outputs
    JOIN_KEY = "join_key"  # keyed pseudonym per grant; never in outputs
    AGGREGATE_ONLY = "aggregate_only"  # only through allowed aggregates of k+ entities
    GROUP_KEY = "group_key"  # a dimension, optionally generalised
    PLAIN = "plain"  # public attribute


# General data levels 1-4, then important and core data (分类分级).
SecurityLevel = Literal[1, 2, 3, 4, "important", "core"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Bands(_Strict):
    """Numeric bands: ``edges`` [0, 18, 35, 60] gives [0,18) [18,35) [35,60) [60,...)."""

    bands: Annotated[list[float], Field(min_length=2)]

    @model_validator(mode="after")
    def _increasing(self) -> Bands:
        if any(b <= a for a, b in zip(self.bands, self.bands[1:], strict=False)):
            raise ValueError("band edges must be strictly increasing")
        return self


class Width(_Strict):
    """Numeric bins of a fixed width: 10 gives 0, 10, 20, ..."""

    width: Annotated[float, Field(gt=0)]


class Truncate(_Strict):
    """Dates truncated to the year or the month."""

    truncate: Literal["year", "month"]


class Prefix(_Strict):
    """Codes cut to their first ``prefix`` characters (e.g. 4 of a 6-digit division code)."""

    prefix: Annotated[int, Field(ge=1, le=64)]


Generalisation = Bands | Width | Truncate | Prefix


class Categories(_Strict):
    categories: Annotated[list[str | int | float | bool], Field(min_length=1)]


class NumberRange(_Strict):
    min: float
    max: float
    integer: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> NumberRange:
        if self.max < self.min:
            raise ValueError("max must not be below min")
        return self


class DateRange(_Strict):
    min_date: date
    max_date: date

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.max_date < self.min_date:
            raise ValueError("max_date must not be before min_date")
        return self


class Format(_Strict):
    """A value of a known form: dummy data generates realistic ones."""

    format: Literal[
        "resident_id", "credit_code", "mobile", "person_name", "company_name", "text", "uuid"
    ]


Domain = Categories | NumberRange | DateRange | Format


class ColumnPolicy(_Strict):
    column_class: ColumnClass = Field(alias="class")
    level: SecurityLevel
    visibility: Visibility
    generalise: Generalisation | None = None
    domain: Domain | None = None
    nullable: bool = False
    # Required (with the reason) to give an identifier ``plain`` visibility.
    plain_override: str | None = None
    description: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> ColumnPolicy:
        if self.generalise is not None and self.visibility != Visibility.GROUP_KEY:
            raise ValueError("generalise applies to group_key columns only")
        if (
            self.column_class == ColumnClass.IDENTIFIER
            and self.visibility == Visibility.PLAIN
            and not (self.plain_override and self.plain_override.strip())
        ):
            raise ValueError("an identifier may be plain only with plain_override: <reason>")
        return self


class Dominance(_Strict):
    p: Annotated[float, Field(gt=0, lt=1)] = DOMINANCE_DEFAULTS["p"]
    n: Annotated[int, Field(ge=1)] = int(DOMINANCE_DEFAULTS["n"])
    k: Annotated[float, Field(gt=0, le=1)] = DOMINANCE_DEFAULTS["k"]


class OutputCaps(_Strict):
    max_rows: Annotated[int, Field(ge=1)] = 10_000
    max_bytes: Annotated[int, Field(ge=1)] = 10 * 1024 * 1024
    max_files: Annotated[int, Field(ge=1)] = 20


class ModelRules(_Strict):
    """When a model summary is held: too few residual degrees of freedom, or too many
    parameters for its number of observations (a model that can restore its rows)."""

    min_df: Annotated[int, Field(ge=1)] = 10
    max_params_fraction: Annotated[float, Field(gt=0, le=1)] = 0.2


class RowFilter(_Strict):
    """Rows kept in every view: ``column op value`` (structured, never raw SQL)."""

    column: str
    op: Literal["=", "!=", "<", "<=", ">", ">=", "in", "not_in", "prefix"]
    value: str | int | float | bool | date | list[str | int | float | bool | date]

    @model_validator(mode="after")
    def _shape(self) -> RowFilter:
        is_list = isinstance(self.value, list)
        if self.op in ("in", "not_in") and not (is_list and self.value):
            raise ValueError(f"'{self.op}' takes a non-empty list")
        if self.op not in ("in", "not_in") and is_list:
            raise ValueError(f"'{self.op}' takes a single value")
        if self.op == "prefix" and not isinstance(self.value, str):
            raise ValueError("'prefix' takes a string")
        return self


class ExposurePolicy(_Strict):
    dataset: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
    entity_column: str
    k: Annotated[int, Field(ge=2)] = 10
    dominance: Dominance = Dominance()
    small_cell_action: Literal["suppress", "block"] = "suppress"
    auto_release: Literal["sql_only", "checked", "never"] = "sql_only"
    output_caps: OutputCaps = OutputCaps()
    models: ModelRules = ModelRules()
    # Run Python jobs under RestrictedPython's guards in the container too (a second
    # layer over the container, never instead of it).
    restricted_python: bool = False
    row_filters: list[RowFilter] = []
    columns: Annotated[dict[str, ColumnPolicy], Field(min_length=1)]

    @model_validator(mode="after")
    def _entity(self) -> ExposurePolicy:
        if self.entity_column not in self.columns:
            raise ValueError(f"entity_column {self.entity_column!r} is not among the columns")
        entity = self.columns[self.entity_column]
        if entity.visibility not in (Visibility.HIDDEN, Visibility.JOIN_KEY):
            raise ValueError("the entity column must be hidden or join_key")
        return self

    def visible_columns(self) -> list[str]:
        return [n for n, c in self.columns.items() if c.visibility != Visibility.HIDDEN]


# -- loading with line numbers ---------------------------------------------------


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


def policy_version(policy: ExposurePolicy) -> str:
    """Content hash of the validated policy (not of its formatting)."""
    canonical = json.dumps(policy.model_dump(mode="json", by_alias=True), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# -- the store ----------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyVersion:
    dataset: str
    version: str
    policy: ExposurePolicy
    text: str  # the YAML as the provider wrote it
    author: str
    applied_at: datetime
    path: Path


class PolicyStore:
    """Versioned exposure policies under ``root/policies/<dataset>/``."""

    def __init__(self, root: Path) -> None:
        self._root = root / "policies"

    def apply(
        self, text: str, columns: dict[str, str], *, dataset: str, author: str
    ) -> PolicyVersion:
        """Validate ``text`` against the dataset's columns and store it as a new version.

        Applying a policy identical in content to a stored version returns that
        version. Nothing is stored when the policy is invalid.
        """
        policy = parse_policy(text, source=f"policy for {dataset!r}")
        check_against_schema(policy, columns, dataset)
        version = policy_version(policy)
        directory = self._root / dataset
        meta_path = directory / f"{version}.json"
        if meta_path.exists():
            return self._load(meta_path)
        directory.mkdir(parents=True, exist_ok=True)
        applied = datetime.now(UTC)
        meta = {
            "dataset": dataset,
            "version": version,
            "author": author,
            "applied_at": applied.isoformat(),
            "text": text,
        }
        write_atomic(meta_path, json.dumps(meta, ensure_ascii=False, indent=2).encode())
        return PolicyVersion(dataset, version, policy, text, author, applied, meta_path)

    def _load(self, meta_path: Path) -> PolicyVersion:
        meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        policy = parse_policy(meta["text"])
        return PolicyVersion(
            meta["dataset"],
            meta["version"],
            policy,
            meta["text"],
            meta["author"],
            datetime.fromisoformat(meta["applied_at"]),
            meta_path,
        )

    def versions(self, dataset: str) -> list[PolicyVersion]:
        """Every stored version, oldest first."""
        directory = self._root / dataset
        found = [self._load(p) for p in directory.glob("*.json")] if directory.is_dir() else []
        return sorted(found, key=lambda v: v.applied_at)

    def get(self, dataset: str, version: str | None = None) -> PolicyVersion:
        """A stored version, or the newest one."""
        if version is not None:
            path = self._root / dataset / f"{version}.json"
            if not path.is_file() or not version.isalnum():
                raise PolicyError(f"no policy version {version!r} for dataset {dataset!r}")
            return self._load(path)
        versions = self.versions(dataset)
        if not versions:
            raise PolicyError(f"dataset {dataset!r} has no exposure policy")
        return versions[-1]
