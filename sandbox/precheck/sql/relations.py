"""What a source of a query yields: its columns, each with the view columns its value derives from.

A view's relation and its schema (for sqlglot's ``qualify``) come from the
exposure policy of its dataset; CTEs and derived tables get theirs from
``lineage`` as it walks them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.intake.policy import (
    Bands,
    DateRange,
    ExposurePolicy,
    NumberRange,
    Prefix,
    Truncate,
    Visibility,
    Width,
)
from sandbox.precheck.sql.rules import Origin, kind_of

Value = frozenset[Origin]
NONE: Value = frozenset()


@dataclass(frozen=True)
class Relation:
    """What a source yields: its columns with their origins."""

    columns: tuple[tuple[str, Value], ...]
    row_level: bool  # one row per row of a view: nothing aggregated it
    opaque: bool = False  # an unknown table, already rejected: resolve silently to nothing

    def get(self, name: str) -> Value | None:
        return next((v for n, v in self.columns if n == name), None)


def view_relation(policy: ExposurePolicy) -> Relation:
    """The view of ``policy``'s dataset: every column, hidden ones included (to say so)."""
    columns = tuple(
        (name.lower(), frozenset({Origin(policy.dataset, name, kind_of(policy, name))}))
        for name in policy.columns
    )
    return Relation(columns, row_level=True)


def view_schema(policy: ExposurePolicy) -> dict[str, str]:
    """``{column: DuckDB type}`` of the view, as far as the policy tells."""
    types = {}
    for name, col in policy.columns.items():
        g, d = col.generalise, col.domain
        if name == policy.entity_column or col.visibility == Visibility.JOIN_KEY:
            types[name] = "VARCHAR"  # a hex pseudonym
        elif isinstance(g, Truncate) or (g is None and isinstance(d, DateRange)):
            types[name] = "DATE"
        elif isinstance(g, Width) or (g is None and isinstance(d, NumberRange)):
            types[name] = "DOUBLE"
        else:
            assert g is None or isinstance(g, Bands | Prefix)
            types[name] = "VARCHAR"
    return types
