"""The grading table (分类分级): what a column's security level means for its exposure.

Serves 001 art. 32-33 and 004 art. 5, 26 (落实数据分类分级保护制度要求), with 004 art. 19
and the "原始数据不出域, 数据可用不可见" requirement (000, 七) for important and core data.
The table is data (``policies/grading.yaml``, the deployment's to edit); this module
loads and validates it and answers three questions:

- at apply time, ``grading_problems``: which columns of a policy break their level's
  row (a visibility the level does not allow, for any column or for identifiers; a
  ``synthetic`` level listing its values as categories, which the catalogue shows);
- at checking time, ``Grade.k_multiplier`` and ``Grade.auto_release``: how much larger
  a cell's minimum k is, and whether a reviewer must release what touches the level;
- for dummy views, ``Grade.dummy``: ``synthetic`` levels get values drawn neither from
  the policy's declared domain nor from the real column.

Invariants:
- Every level of ``SecurityLevel`` has exactly one row; a table missing one is refused.
- Levels are ordered 1 < 2 < 3 < 4 < important < core, and a higher level is never
  laxer than a lower one: its visibilities (and identifier visibilities) are a subset,
  its multiplier is no smaller, it is auto-released only if the lower one is, and once
  dummy values are synthetic they stay so.
"""

from __future__ import annotations

import functools
import itertools
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sandbox.errors import PolicyError
from sandbox.intake.policy.model import (
    Categories,
    ColumnClass,
    ExposurePolicy,
    SecurityLevel,
    Visibility,
)

#: From least to most protected (the order "highest level" is taken in).
LEVELS: tuple[str, ...] = tuple(str(v) for v in typing.get_args(SecurityLevel))

#: The repository's table; a deployment edits this file (see policies/README.md).
DEFAULT_GRADING_FILE = Path(__file__).resolve().parents[3] / "policies" / "grading.yaml"


def level_name(level: SecurityLevel | str) -> str:
    """A level as the table names it: "1" .. "4", "important", "core"."""
    return str(level)


class Grade(BaseModel):
    """One row of the table: the consequences of one security level."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    visibilities: frozenset[Visibility]
    # Narrower visibilities for identifier columns; None: the same as ``visibilities``.
    identifier_visibilities: frozenset[Visibility] | None = None
    k_multiplier: Annotated[int, Field(ge=1, le=100)] = 1
    auto_release: bool = True
    dummy: Literal["declared", "synthetic"] = "declared"
    basis: Annotated[str, Field(min_length=1)]  # the articles the row serves, for messages

    @field_validator("visibilities")
    @classmethod
    def _hidden_allowed(cls, value: frozenset[Visibility]) -> frozenset[Visibility]:
        if Visibility.HIDDEN not in value:
            raise ValueError("every level allows hidden (a column can always be withheld)")
        return value

    def allowed(self, column_class: ColumnClass) -> frozenset[Visibility]:
        """The visibilities a column of this level and class may have."""
        if column_class == ColumnClass.IDENTIFIER and self.identifier_visibilities is not None:
            return self.visibilities & self.identifier_visibilities
        return self.visibilities


class GradingTable(BaseModel):
    """Every level's row, validated as a whole (see the module's invariants)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    levels: Mapping[str, Grade]

    @field_validator("levels", mode="before")
    @classmethod
    def _names(cls, value: object) -> object:
        if isinstance(value, Mapping):
            return {level_name(k): v for k, v in value.items()}
        return value

    @field_validator("levels")
    @classmethod
    def _complete_and_monotone(cls, value: Mapping[str, Grade]) -> Mapping[str, Grade]:
        missing = [lv for lv in LEVELS if lv not in value]
        unknown = sorted(set(value) - set(LEVELS))
        if missing or unknown:
            raise ValueError(
                f"the table needs one row per level {list(LEVELS)}"
                + (f"; missing {missing}" if missing else "")
                + (f"; unknown {unknown}" if unknown else "")
            )
        for lower, higher in itertools.pairwise(LEVELS):
            a, b = value[lower], value[higher]
            laxer = [
                what
                for what, bad in (
                    ("visibilities", not b.visibilities <= a.visibilities),
                    (
                        "identifier visibilities",
                        not b.allowed(ColumnClass.IDENTIFIER) <= a.allowed(ColumnClass.IDENTIFIER),
                    ),
                    ("k_multiplier", b.k_multiplier < a.k_multiplier),
                    ("auto_release", b.auto_release and not a.auto_release),
                    ("dummy", a.dummy == "synthetic" and b.dummy != "synthetic"),
                )
                if bad
            ]
            if laxer:
                raise ValueError(
                    f"level {higher} is laxer than level {lower} in: {', '.join(laxer)}"
                )
        return dict(value)

    def grade(self, level: SecurityLevel | str) -> Grade:
        return self.levels[level_name(level)]

    def highest(self, levels: Iterable[SecurityLevel | str]) -> str:
        """The most protected of ``levels`` ("1" when there is none)."""
        names = [level_name(lv) for lv in levels]
        return max(names, key=LEVELS.index, default=LEVELS[0])


def parse_grading(text: str, source: str = "grading table") -> GradingTable:
    """Parse and validate a grading table's YAML (``PolicyError`` naming each problem)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise PolicyError(f"{source} is not valid YAML: {e}") from e
    try:
        return GradingTable.model_validate(data)
    except ValidationError as e:
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: "
            + err["msg"].removeprefix("Value error, ")
            for err in e.errors()
        ]
        raise PolicyError(f"{source} is invalid", problems) from e


def load_grading(path: Path = DEFAULT_GRADING_FILE) -> GradingTable:
    """The table in ``path`` (the repository's ``policies/grading.yaml`` by default)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise PolicyError(f"the grading table {path.name} cannot be read") from e
    return parse_grading(text, source=f"grading table {path.name}")


@functools.cache
def default_grading() -> GradingTable:
    """The repository's table, read once per process."""
    return load_grading()


def grading_problems(policy: ExposurePolicy, table: GradingTable) -> list[tuple[str, str, str]]:
    """``(column, field, problem)`` for each column that breaks its level's row."""
    problems = []
    for name, col in policy.columns.items():
        level = level_name(col.level)
        grade = table.grade(level)
        if grade.dummy == "synthetic" and isinstance(col.domain, Categories):
            problems.append(
                (
                    name,
                    "domain",
                    f"a column of level {level} may not list its values as categories (the "
                    f"catalogue and the dummy data would show them verbatim): {grade.basis}",
                )
            )
        allowed = grade.allowed(col.column_class)
        if col.visibility in allowed:
            continue
        who = "an identifier" if allowed != grade.visibilities else "a column"
        shown = ", ".join(v.value for v in Visibility if v in allowed)
        problems.append(
            (
                name,
                "visibility",
                f"{who} of level {level} may not be {col.visibility.value} "
                f"(level {level} allows {shown}): {grade.basis}",
            )
        )
    return problems
