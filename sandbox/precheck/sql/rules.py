"""The column rules: may this value be used here? Small pure functions.

A value is the set of ``Origin``s it derives from: the view columns it was
computed from, each with its kind (from the column's visibility) and
whether it has already gone through an aggregate. A ``Use`` describes the
place it is used at: the clause, the enclosing aggregate, whether it sits
in a condition. ``check_use`` says whether one origin may be used there.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sandbox.intake.policy import ExposurePolicy, Visibility
from sandbox.precheck.sql.model import Rejection


class Kind(StrEnum):
    HIDDEN = "hidden"
    KEY = "key"  # join_key columns and the entity column (a pseudonym in the view)
    MEASURE = "measure"  # aggregate_only
    DIMENSION = "dimension"  # group_key and plain


@dataclass(frozen=True, order=True)
class Origin:
    view: str
    column: str
    kind: Kind
    aggregated: bool = False  # already reduced by an aggregate in a subquery

    @property
    def name(self) -> str:
        return f"{self.view}.{self.column}"


@dataclass(frozen=True)
class Use:
    """Where a value is used."""

    clause: str
    # False only for the SELECT items of a subquery over rows: they are
    # checked where the subquery's output is used.
    strict: bool = True
    aggregate: str | None = None  # the innermost enclosing aggregate, e.g. "SUM"
    aggregate_allowed: bool = False  # ... and it may take aggregate_only columns
    condition: bool = False  # inside a predicate, a CASE / IF condition or a FILTER
    # This very reference may be a join key: COUNT(DISTINCT k), k = k in
    # JOIN ... ON, or a key passed through a subquery's SELECT list.
    key_ok: bool = False
    # A SELECT item of the outer query in row-level mode (model inputs):
    # aggregate-only columns may be output as they are.
    row_output: bool = False
    where: str = ""  # " (in CTE t)", for messages


def kind_of(policy: ExposurePolicy, column: str) -> Kind:
    """The kind of a view column: the entity column is a key whatever its visibility."""
    if column == policy.entity_column:
        return Kind.KEY
    return {
        Visibility.HIDDEN: Kind.HIDDEN,
        Visibility.JOIN_KEY: Kind.KEY,
        Visibility.AGGREGATE_ONLY: Kind.MEASURE,
        Visibility.GROUP_KEY: Kind.DIMENSION,
        Visibility.PLAIN: Kind.DIMENSION,
    }[policy.columns[column].visibility]


def check_use(origin: Origin, use: Use) -> Rejection | None:
    """A rejection if ``origin`` may not be used at ``use``."""
    if origin.kind is Kind.HIDDEN:
        return _reject(use, "hidden_column", f"column {origin.name} is hidden")
    if origin.kind is Kind.KEY:
        return _check_key(origin, use)
    if origin.kind is Kind.MEASURE:
        return _check_measure(origin, use)
    return None


def _check_key(origin: Origin, use: Use) -> Rejection | None:
    """Join keys only in JOIN equalities, COUNT(DISTINCT ...) and subquery pass-through."""
    if use.key_ok:
        return None
    if use.aggregate is not None and use.condition:
        what = (
            f"join key {origin.name} in a condition inside {use.aggregate}: "
            "an aggregate must not single out entities"
        )
        return _reject(use, "entity_condition_in_aggregate", what)
    what = (
        f"join key {origin.name} may appear only in JOIN equality conditions "  # message, not SQL
        "and COUNT(DISTINCT ...)"
    )
    return _reject(use, "join_key_misuse", what)


def _check_measure(origin: Origin, use: Use) -> Rejection | None:
    """Aggregate-only columns only inside allowed aggregates (or, once aggregated, as results)."""
    if use.aggregate is not None:
        if use.aggregate_allowed:
            return None
        what = (
            f"column {origin.name} is aggregate-only; {use.aggregate} is not an allowed aggregate"
        )
        return _reject(use, "aggregate_only", what)
    if origin.aggregated:
        # An aggregate computed in a subquery is a result: it may be output and
        # sorted on, but not grouped, partitioned or joined on, nor pick rows:
        # the subquery's groups are not judged, so a filter on them would be
        # an oracle on one entity's value.
        if use.clause in ("GROUP BY", "WINDOW", "JOIN"):
            what = f"an aggregate of aggregate-only column {origin.name} cannot be used here"
            return _reject(use, "aggregate_only", what)
        if is_filter(use):
            what = (
                f"an aggregate of aggregate-only column {origin.name} from a subquery "
                "cannot pick rows or groups"
            )
            return _reject(use, "measure_filter", what)
        return None
    if use.row_output and not use.condition:
        return None
    if not use.strict:
        return None
    what = f"column {origin.name} is aggregate-only and appears outside an allowed aggregate"
    return _reject(use, "aggregate_only", what)


def is_filter(use: Use) -> bool:
    """Whether a value used at ``use`` decides which rows or groups are returned."""
    return use.condition or use.clause in ("WHERE", "HAVING", "QUALIFY", "JOIN")


def _reject(use: Use, rule: str, what: str) -> Rejection:
    return Rejection(use.clause, rule, f"{use.clause}: {what}{use.where}")
