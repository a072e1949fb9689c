"""Linear forms: where an aggregate-only value may flow.

An aggregate-only column may be summed, differenced and scaled by constants,
inside an aggregate (or in row-level output); anything else (a product of
two such values, a division by a row's value, a rounding cast, a condition)
could single out rows by value, and is rejected by ``lineage``.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import exp

from sandbox.precheck.sql.grammar import AGGREGATES, function_name
from sandbox.precheck.sql.relations import NONE, Value
from sandbox.precheck.sql.rules import Kind

CONDITIONS = (exp.Predicate, exp.Connector, exp.Not)
# Where an aggregate-only value may flow without a condition on it: sums and
# scalings. (Casts to integer or decimal types round, which is a threshold.)
_LINEAR = (exp.Column, exp.Paren, exp.Alias, exp.Add, exp.Sub, exp.Neg, exp.Subquery)
_CONSTANT: tuple[type[exp.Expr], ...] = (
    *(exp.Literal, exp.Paren, exp.Neg, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Cast),
    *(exp.DataType, exp.DataTypeParam),
)
_REAL_TYPES = frozenset({exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT})


def has_measure(value: Value) -> bool:
    """Whether ``value`` derives from an aggregate-only column."""
    return any(o.kind is Kind.MEASURE for o in value)


def linear_problem(node: exp.Expr, values: Mapping[int, Value], *, per_row: bool) -> bool:
    """Whether ``node`` (touching an aggregate-only value) is not a linear form of it.

    Children were checked on their own; here only the node itself: its type,
    and for products, quotients, casts and conditionals the operands that
    must not touch the value. ``per_row``: the value is a row's (inside an
    aggregate, or row-level output), so it may be divided by constants only;
    an aggregated value may be divided by anything that does not touch one.
    """

    def touches(child: exp.Expr | None) -> bool:
        if child is None:
            return False
        if id(child) in values:
            return has_measure(values[id(child)])
        return any(has_measure(values.get(id(c), NONE)) for c in child.find_all(exp.Column))

    if type(node) in AGGREGATES or isinstance(node, exp.Filter | exp.Window):
        return False  # the aggregate itself: its argument and FILTER are checked apart
    if isinstance(node, _LINEAR):
        return False
    if isinstance(node, exp.Mul):
        return touches(node.this) and touches(node.expression)
    if isinstance(node, exp.Div):
        return touches(node.expression) or (per_row and not _is_constant(node.expression))
    if isinstance(node, exp.Cast):  # TryCast is a Cast
        to = node.args.get("to")
        return not (isinstance(to, exp.DataType) and to.this in _REAL_TYPES)
    if isinstance(node, exp.Case):
        tests = [node.this, *(i.this for i in node.args.get("ifs") or [])]
        return any(touches(t) for t in tests)
    if isinstance(node, exp.If):
        return touches(node.this)
    return True


def _is_constant(node: exp.Expr) -> bool:
    return all(isinstance(n, _CONSTANT) for n in node.walk())


def describe(node: exp.Expr) -> str:
    if isinstance(node, exp.Case | exp.If):
        return "in a condition"
    if isinstance(node, CONDITIONS):
        return "in a comparison"
    if isinstance(node, exp.Func):
        return f"in {function_name(node)}"
    return f"in {type(node).__name__.upper()}"
