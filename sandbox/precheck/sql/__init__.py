"""Stage 2 of the data flow: static checks of an SQL product, before anything runs.

An operator submits one SELECT over the views of its grant. It is parsed
with sqlglot (DuckDB dialect) and checked column by column, in every clause
and every subquery, against the exposure policies of those views:

1. ``grammar``: exactly one SELECT (WITH and UNION / INTERSECT / EXCEPT
   allowed) built from allowlisted nodes, functions and aggregates; no table
   functions, file scans, catalogs, settings, parameters or ``*``.
2. ``qualify`` (sqlglot): every column reference gets its source.
3. ``lineage``: each reference is resolved through aliases, CTEs, derived
   tables and subqueries (``relations``) to the view columns it derives
   from, and each use is checked by ``rules``: hidden columns nowhere;
   aggregate-only columns only inside allowed aggregates, in linear forms
   (``linear``); join keys (and the entity column) only in JOIN equalities
   and COUNT(DISTINCT ...); no aggregate singling out entities; no windowed
   aggregates; the outer query aggregates.

What goes out: a ``CheckedQuery`` (``model``), or ``SqlRejected`` with every
``Rejection``. Before it runs, ``evidence`` rewrites the checked query so it
also returns trusted evidence per output row, following entities through
its sources (``entities``), the conditions inside its aggregates
(``conditions``) and its groups (``groups``).

Invariants:
- Deny by default: what is not allowlisted, or does not resolve to exactly
  one view column, is rejected.
- Every problem found is reported at once (``SqlRejected.rejections``);
  grammar problems stop the check before columns are looked at.
- No message echoes a literal value of the query.
- ``CheckedQuery.sql`` is the text that was checked: run it, never the submission.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.qualify import qualify

from sandbox.errors import SqlRejected
from sandbox.intake.policy import ExposurePolicy
from sandbox.precheck.sql.grammar import (
    ALLOWED_AGGREGATES,
    DIALECT,
    check_grammar,
    clause_of,
    parse_statement,
)
from sandbox.precheck.sql.lineage import Analyzer
from sandbox.precheck.sql.model import RULES, CheckedQuery, Rejection
from sandbox.precheck.sql.relations import view_relation, view_schema

__all__ = [
    "ALLOWED_AGGREGATES",
    "RULES",
    "CheckedQuery",
    "Rejection",
    "SqlRejected",
    "can_run_sql",
    "check_sql",
]


def check_sql(
    code: str,
    policies: Mapping[str, ExposurePolicy],
    *,
    allowed_aggregates: frozenset[str] = ALLOWED_AGGREGATES,
    row_level: bool = False,
) -> CheckedQuery:
    """Check one SQL product against the exposure policies of the grant's views.

    Rule: a query runs only if every column it touches is used as its view's
    exposure policy allows. Raises ``SqlRejected`` listing every problem.

    ``row_level``: the query selects model inputs, one row per row of the
    views (for a model fitted on the trusted side): the outer query need not
    aggregate and may output aggregate-only columns (as linear forms), but
    never keys or hidden columns, never a condition on an aggregate-only
    column, and never LIMIT/OFFSET.
    """
    tree, problems = parse_statement(code)
    if tree is None:
        raise SqlRejected(problems)
    if problems := check_grammar(code, tree):
        raise SqlRejected(_unique(problems))
    views = {p.dataset: view_relation(p) for p in policies.values()}
    schema: dict[str, object] = {p.dataset: view_schema(p) for p in policies.values()}
    try:
        qualified = qualify(
            tree.copy(), dialect=DIALECT, schema=schema, validate_qualify_columns=False
        )
    except SqlglotError as e:
        raise SqlRejected([_unqualifiable(tree, e)]) from e
    analyzer = Analyzer(views, allowed_aggregates, row_level=row_level)
    relation = analyzer.query(qualified, None, {}, top=True, where="")
    if analyzer.rejections:
        raise SqlRejected(_unique(analyzer.rejections))
    return CheckedQuery(
        sql=qualified.sql(dialect=DIALECT),
        views=tuple(sorted(analyzer.views_used)),
        columns=tuple(sorted(analyzer.lineage)),
        output_columns=tuple(name for name, _ in relation.columns),
        output_kinds={
            name: frozenset(str(o.kind) for o in value) for name, value in relation.columns
        },
    )


def can_run_sql(code: str, policies: Mapping[str, ExposurePolicy]) -> bool:
    """Whether ``check_sql`` accepts ``code``."""
    try:
        check_sql(code, policies)
    except SqlRejected:
        return False
    return True


def _unqualifiable(tree: exp.Query, error: SqlglotError) -> Rejection:
    # sqlglot's messages may quote the query; only a column's name is taken from them.
    text = str(error)
    for prefix in ("Unknown column: ", "Unknown output column: "):
        if text.startswith(prefix):
            name = text.removeprefix(prefix)
            clause = next(
                (clause_of(c) for c in tree.find_all(exp.Column) if c.name == name),
                "STATEMENT",
            )
            return Rejection(
                clause, "unknown_column", f"{clause}: column {name} cannot be resolved"
            )
    if text.startswith("Alias already used: "):
        name = text.removeprefix("Alias already used: ")
        msg = f"FROM: alias {name} is used twice"  # message, not SQL
        return Rejection("FROM", "ambiguous_column", msg)
    return Rejection("STATEMENT", "unknown_column", "STATEMENT: a reference cannot be resolved")


def _unique(rejections: list[Rejection]) -> list[Rejection]:
    return list(dict.fromkeys(rejections))
