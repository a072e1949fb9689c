"""The exposure policy as data: column classes, visibilities, generalisations, domains, rules.

Frozen pydantic models; unknown fields are refused. The validators hold the
rules a policy obeys on its own (band edges increasing, an identifier
``plain`` only with a reasoned override, the entity column hidden or a join
key); what needs the dataset is ``parse.check_against_schema``'s.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
