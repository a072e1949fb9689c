"""The conditions inside an aggregate: the subpopulations it describes.

Used by the evidence rewrite (``sandbox.precheck.sql.evidence``). After the
static check, a condition inside an aggregate can only be on dimensions
(group keys, plain columns) or on aggregates of a subquery: conditions on
aggregate-only values and on keys were refused. Such a condition splits a
group into the entities for which it holds and the rest; the output rules
ask that each part be empty or hold at least k entities.

An aggregate's argument is followed through columns, literals, arithmetic,
casts and the parts of a date (``year``, ``quarter``, ``month``, ``day``);
CASE, IF, NULLIF, COALESCE, comparisons, boolean connectives and FILTER
clauses are conditions. Anything else that reads a column (a
function such as GREATEST or FLOOR, a subquery) cannot be followed, and the
rewrite raises ``EvidenceUnavailable``: the output is held for review.
"""

from __future__ import annotations

from collections.abc import Mapping, Set

from sqlglot import exp, parse_one

from sandbox.errors import EvidenceUnavailable
from sandbox.precheck.sql.grammar import DIALECT

_CONDITIONS = (exp.Predicate, exp.Connector, exp.Not)
# Nodes an aggregate's argument is followed through.
_FOLLOWED: tuple[type[exp.Expr], ...] = (
    *(exp.Column, exp.Identifier, exp.Alias, exp.Paren, exp.Add, exp.Sub, exp.Neg),
    *(exp.Mul, exp.Div, exp.Cast, exp.DataType, exp.DataTypeParam, exp.Literal),
    *(exp.Null, exp.Boolean, exp.Distinct, exp.Star),
    # The parts of a date: a coarser dimension, never a test on a value
    # (an average birth year is an aggregate like any other).
    *(exp.Year, exp.Quarter, exp.Month, exp.Day),
)


def outer_aggregates(node: exp.Expr) -> list[exp.Expr]:
    """The aggregates of ``node``'s own query: not in a subquery, not windowed."""
    found: list[exp.Expr] = []
    for agg in node.find_all(exp.AggFunc):
        if agg is node:
            found.append(agg)
            continue
        parent = agg.parent
        while parent is not None and parent is not node:
            if isinstance(parent, exp.Subquery | exp.Select | exp.Window):
                break
            parent = parent.parent
        else:
            found.append(agg)
    return found


def filter_condition(agg: exp.Expr) -> exp.Expr | None:
    """The condition of ``agg``'s FILTER (WHERE ...) clause, if it has one."""
    if not isinstance(agg.parent, exp.Filter) or agg.arg_key != "this":
        return None
    where: exp.Expr = agg.parent.expression
    condition: exp.Expr = where.this if isinstance(where, exp.Where) else where
    return condition


def conditions(agg: exp.Expr, conditional: Mapping[str, Set[str]]) -> list[exp.Expr]:
    """The conditions of one aggregate (copies), in its argument and FILTER clause.

    ``conditional``: per source alias, its columns computed by a condition
    or a function in a subquery (``conditional_outputs``); an aggregate of
    one cannot be followed.
    """
    found: list[exp.Expr] = []
    if (condition := filter_condition(agg)) is not None:
        found.append(condition.copy())
    stack: list[exp.Expr | None] = list(agg.iter_expressions())
    while stack:
        node = stack.pop()
        if node is None:
            continue
        if isinstance(node, exp.Case):
            for branch in node.args.get("ifs") or []:
                test = branch.this
                if node.this is not None:  # CASE <operand> WHEN <value>
                    test = exp.EQ(this=node.this.copy(), expression=test.copy())
                found.append(test.copy())
                stack.append(branch.args.get("true"))
            stack.append(node.args.get("default"))
        elif isinstance(node, exp.If):
            found.append(node.this.copy())
            stack += [node.args.get("true"), node.args.get("false")]
        elif isinstance(node, exp.Nullif):
            found.append(exp.EQ(this=node.this.copy(), expression=node.expression.copy()))
            stack.append(node.this)
        elif _merged_key(node):
            continue  # USING's merged join key (qualify writes COALESCE(a.k, b.k))
        elif isinstance(node, exp.Coalesce):
            first = node.this.sql(dialect=DIALECT)
            found.append(parse_one(f"({first}) IS NOT NULL", dialect=DIALECT))
            stack += list(node.iter_expressions())
        elif isinstance(node, _CONDITIONS):
            found.append(node.copy())
        elif isinstance(node, exp.Column) and node.name in conditional.get(node.table, ()):
            raise EvidenceUnavailable("an aggregate of a computed column cannot be followed")
        elif isinstance(node, _FOLLOWED):
            stack += list(node.iter_expressions())
        elif node.find(exp.Column) is not None:
            raise EvidenceUnavailable("a function inside an aggregate cannot be followed")
    for condition in found:
        _check_followable(condition, conditional)
    return found


def _merged_key(node: exp.Expr) -> bool:
    if not isinstance(node, exp.Coalesce):
        return False
    args = list(node.iter_expressions())
    return all(isinstance(a, exp.Column) for a in args) and len({a.name for a in args}) == 1


def _check_followable(condition: exp.Expr, conditional: Mapping[str, Set[str]]) -> None:
    for column in condition.find_all(exp.Column):
        if column.name in conditional.get(column.table, ()):
            raise EvidenceUnavailable("a condition on a computed column cannot be followed")


def conditional_outputs(select: exp.Select, conditional: Mapping[str, Set[str]]) -> set[str]:
    """The output columns of a subquery over rows that are not plain arithmetic of
    columns (a condition or a function of them), or derive from such a column."""
    found = set()
    for projection in select.expressions:
        for node in projection.walk():
            computed = not isinstance(node, _FOLLOWED)
            derived = isinstance(node, exp.Column) and node.name in conditional.get(node.table, ())
            if computed or derived:
                found.add(projection.alias_or_name)
                break
    return found


def has_conditions(select: exp.Select, conditional: Mapping[str, Set[str]]) -> bool:
    """Whether an aggregate of ``select`` (an aggregated subquery) holds a condition."""
    for part in [*select.expressions, select.args.get("having"), select.args.get("order")]:
        if part is None:
            continue
        for agg in outer_aggregates(part):
            if conditions(agg, conditional):
                return True
    return False
