"""What the static SQL check hands on: a checked query, or every rejection found."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Rejection:
    """One problem with a submitted SQL product.

    ``message`` names the clause, the column (``view.column``) and the rule;
    it never echoes a literal value from the query.
    """

    clause: str  # "SELECT", "WHERE", "JOIN", "GROUP BY", "HAVING", "ORDER BY", "WINDOW", ...
    rule: str  # a stable id: see RULES
    message: str


# Every rule id a Rejection may carry, with the one-sentence rule it enforces.
RULES: dict[str, str] = {
    "parse_error": "the submission must parse as DuckDB SQL",
    "forbidden_statement": "exactly one SELECT statement (WITH and set operations allowed)",
    "forbidden_syntax": "only allowlisted SQL constructs may appear",
    "forbidden_function": "only allowlisted functions and aggregates may be called",
    "file_access": "no file, URL or quoted string may be read as a table",
    "select_star": "columns are named, never selected with *",
    "unknown_table": "only the views of the grant (and the query's own CTEs) may be read",
    "unknown_column": "every column reference resolves to a column of a source",
    "ambiguous_column": "every column reference resolves to exactly one source",
    "hidden_column": "hidden columns are never referenced",
    "aggregate_only": "aggregate-only columns appear only inside allowed aggregates",
    "join_key_misuse": "join keys appear only in JOIN equalities and COUNT(DISTINCT ...)",
    "entity_condition_in_aggregate": "no aggregate singles out entities by a join key",
    "nonlinear_measure": (
        "an aggregate-only column is aggregated only as itself or a linear expression of it "
        "(no conditions, comparisons or non-linear functions on its values)"
    ),
    "measure_filter": (
        "rows or groups are never picked by an aggregate of an aggregate-only column, "
        "except in the outer query's HAVING, QUALIFY and ORDER BY (every group is then judged)"
    ),
    "window_aggregate": "aggregates are never used as window functions",
    "window_function": "only ranking functions, and only over aggregated rows",
    "row_selection": (
        "a subquery over rows (or a row-level query) never picks rows by position (LIMIT/OFFSET)"
    ),
    "row_level_output": "the outer query aggregates: no row-level output",
}


@dataclass(frozen=True)
class CheckedQuery:
    """A query that passed every static check, with what it reads.

    ``sql`` is the normalised, fully qualified SQL (sqlglot, DuckDB dialect):
    run this text, never the submitted one.
    """

    sql: str
    views: tuple[str, ...]  # views referenced, sorted
    columns: tuple[tuple[str, str], ...]  # (view, column) referenced anywhere: the lineage
    output_columns: tuple[str, ...]
    # Per output column, the kinds of the view columns it derives from
    # ("dimension", "measure", "key", "hidden"): what a model may make levels of.
    output_kinds: Mapping[str, frozenset[str]] = field(default_factory=dict)
