"""The grammar of an SQL product: one SELECT built only from allowlisted parts.

Everything here is an allowlist, matched on the exact sqlglot node type (a
subclass of an allowed node is not allowed): statements, syntax nodes, the
arguments a SELECT / JOIN / table may carry, scalar functions and
aggregates. Anything else (table functions, file scans, catalogs, settings,
parameters, lambdas, struct access ...) is rejected before any column is
looked at.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.tokenizer_core import TokenType

from sandbox.precheck.sql.model import Rejection

DIALECT = "duckdb"

# Aggregates that may take aggregate_only columns. A policy may widen this set
# later, but only with names from AGGREGATES. (DuckDB's VAR_SAMP parses as VARIANCE.)
ALLOWED_AGGREGATES: frozenset[str] = frozenset(
    {"COUNT", "SUM", "AVG", "STDDEV", "STDDEV_SAMP", "STDDEV_POP", "VARIANCE", "VAR_POP"}
)

# Every aggregate the checker understands. Those outside ALLOWED_AGGREGATES
# pick or order individual values: they take group keys and plain columns only.
AGGREGATES: dict[type[exp.Expr], str] = {
    exp.Count: "COUNT",
    exp.Sum: "SUM",
    exp.Avg: "AVG",
    exp.Stddev: "STDDEV",
    exp.StddevSamp: "STDDEV_SAMP",
    exp.StddevPop: "STDDEV_POP",
    exp.Variance: "VARIANCE",
    exp.VariancePop: "VAR_POP",
    exp.Min: "MIN",
    exp.Max: "MAX",
    exp.Median: "MEDIAN",
    exp.Mode: "MODE",
    exp.Quantile: "QUANTILE",
    exp.PercentileCont: "QUANTILE_CONT",
    exp.PercentileDisc: "QUANTILE_DISC",
    exp.First: "FIRST",
    exp.Last: "LAST",
    exp.ArgMin: "ARG_MIN",
    exp.ArgMax: "ARG_MAX",
    exp.AnyValue: "ANY_VALUE",
    exp.ArrayAgg: "LIST",
    exp.GroupConcat: "STRING_AGG",
}
# Aggregates whose result is the group's row values themselves: never allowed.
ROW_VALUE_AGGREGATES: frozenset[str] = frozenset({"LIST", "STRING_AGG"})

# The only window functions, and only over aggregated rows (see lineage.py).
RANKING: dict[type[exp.Expr], str] = {
    exp.RowNumber: "ROW_NUMBER",
    exp.Rank: "RANK",
    exp.DenseRank: "DENSE_RANK",
    exp.Ntile: "NTILE",
    exp.PercentRank: "PERCENT_RANK",
    exp.CumeDist: "CUME_DIST",
}

SCALAR_FUNCTIONS: frozenset[type[exp.Expr]] = frozenset(
    {
        *(exp.Abs, exp.Round, exp.Floor, exp.Ceil, exp.Sqrt, exp.Ln, exp.Log, exp.Exp, exp.Pow),
        *(exp.Coalesce, exp.Nullif, exp.Greatest, exp.Least, exp.If, exp.Case),
        *(exp.Cast, exp.TryCast, exp.Lower, exp.Upper, exp.Length, exp.Substring),
        *(exp.Left, exp.Right, exp.Concat, exp.DPipe, exp.Trim, exp.StartsWith),
        *(exp.Year, exp.Quarter, exp.Month, exp.Day, exp.Extract, exp.DateTrunc),
        *(exp.TimestampTrunc, exp.DateDiff, exp.TimeToStr),
    }
)

SYNTAX: frozenset[type[exp.Expr]] = frozenset(
    {
        *(exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery, exp.With, exp.CTE),
        *(exp.From, exp.Join, exp.Table, exp.TableAlias, exp.Identifier, exp.Column),
        *(exp.Alias, exp.Where, exp.Group, exp.Rollup, exp.Cube, exp.GroupingSets),
        *(exp.Having, exp.Qualify, exp.Order, exp.Ordered, exp.Limit, exp.Offset),
        *(exp.Distinct, exp.Literal, exp.Null, exp.Boolean, exp.Paren, exp.Tuple),
        *(exp.Neg, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod),
        *(exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ),
        *(exp.Is, exp.In, exp.Between, exp.Like, exp.ILike, exp.And, exp.Or, exp.Not),
        *(exp.Exists, exp.Filter, exp.IgnoreNulls, exp.Window, exp.WindowSpec),
        *(exp.DataType, exp.DataTypeParam, exp.Interval, exp.Var, exp.Star),
    }
)
ALLOWED_NODES = SYNTAX | SCALAR_FUNCTIONS | set(AGGREGATES) | set(RANKING)

# Arguments the container nodes may carry; any other (SAMPLE, named WINDOW,
# INTO, PIVOT, LATERAL, DISTINCT ON, RECURSIVE, POSITIONAL/ASOF/NATURAL ...) is refused.
_QUERY_ARGS = {"with_", "expressions", "distinct", "from_", "joins", "where", "group"}
# Not "by_name": UNION BY NAME matches columns by name, lineage follows positions.
_QUERY_ARGS |= {"having", "qualify", "order", "limit", "offset", "this", "expression"}
_ARGS: dict[type[exp.Expr], set[str]] = {
    **dict.fromkeys((exp.Select, exp.Union, exp.Intersect, exp.Except), _QUERY_ARGS),
    exp.Join: {"this", "on", "side", "kind", "using"},
    exp.Table: {"this", "alias"},
    exp.Distinct: {"expressions"},
    exp.With: {"expressions"},
    exp.Group: {"expressions", "rollup", "cube", "grouping_sets", "all"},
    exp.Window: {"this", "partition_by", "order", "spec", "over"},
}
_VAR_PARENTS = (exp.Extract, exp.DateTrunc, exp.TimestampTrunc, exp.DateDiff, exp.Interval)
_CLAUSES = {"expressions": "SELECT", "from_": "FROM", "joins": "FROM", "where": "WHERE"}
_CLAUSES |= {"group": "GROUP BY", "having": "HAVING", "qualify": "QUALIFY", "order": "ORDER BY"}
_CLAUSES |= {"limit": "LIMIT", "offset": "LIMIT", "with_": "WITH"}
_FILE_CHARS = frozenset("./\\:*?~")
_FILE_MESSAGE = "a file path or quoted string cannot be read; only views of the grant may appear"


def parse_statement(code: str) -> tuple[exp.Query | None, list[Rejection]]:
    """The one SELECT statement in ``code``, or the reasons there is none."""
    try:
        statements = [s for s in sqlglot.parse(code, read=DIALECT) if s is not None]
    except SqlglotError:
        # sqlglot's message quotes the query: it is not repeated.
        return None, [_reject("STATEMENT", "parse_error", "cannot parse the statement")]
    if len(statements) != 1:
        msg = f"exactly one statement is allowed, found {len(statements)}"
        return None, [_reject("STATEMENT", "forbidden_statement", msg)]
    tree = statements[0]
    while isinstance(tree, exp.Subquery) and not tree.alias:
        tree = tree.this
    if not isinstance(tree, exp.Select | exp.SetOperation):
        kind = type(tree).__name__.upper() if not isinstance(tree, exp.Command) else tree.name
        msg = f"only a SELECT may be submitted, not {kind}"  # message, not SQL
        return None, [_reject("STATEMENT", "forbidden_statement", msg)]
    return tree, []


def check_grammar(code: str, tree: exp.Expr) -> list[Rejection]:
    """Every node of ``tree`` not built from the allowlists, and every file scan in ``code``."""
    problems = list(_file_scans(code))
    stack = [tree]
    while stack:
        node = stack.pop()
        children = list(node.iter_expressions())
        problem = _check_node(node)
        if problem is not None:
            problems.append(problem)
            # One finding per construct: skip what is inside a refused node or argument.
            allowed = _ARGS.get(type(node), set()) if type(node) is not exp.Table else set()
            children = [c for c in children if c.arg_key in allowed]
        stack.extend(reversed(children))
    return problems


def clause_of(node: exp.Expr) -> str:
    """The clause of the nearest enclosing query that ``node`` sits in."""
    child, parent = node, node.parent
    while parent is not None:
        if isinstance(parent, exp.Window) and child.arg_key in ("partition_by", "order"):
            return "WINDOW"
        if isinstance(parent, exp.Join) and child.arg_key in ("on", "using"):
            return "JOIN"
        if isinstance(parent, exp.Select | exp.SetOperation):
            return _CLAUSES.get(child.arg_key or "", "STATEMENT")
        child, parent = parent, parent.parent
    return "STATEMENT"


def function_name(node: exp.Expr) -> str:
    if isinstance(node, exp.Anonymous):
        return node.name.upper()
    if isinstance(node, exp.Func):
        return node.sql_name()
    return type(node).__name__.upper()


def _check_node(node: exp.Expr) -> Rejection | None:
    clause, kind = clause_of(node), type(node)
    if kind is exp.Star:
        if isinstance(node.parent, exp.Count) and not any(node.args.values()):
            return None  # COUNT(*)
        return _reject(clause, "select_star", "* is not allowed; name the columns")
    if isinstance(node, exp.Table) and kind is exp.Table:
        return _check_table(node, clause)
    if kind not in ALLOWED_NODES:
        if isinstance(node, exp.Func):
            what = f"function {function_name(node)} is not allowed"
            return _reject(clause, "forbidden_function", what)
        return _reject(clause, "forbidden_syntax", f"{_describe(node)} is not allowed")
    extra = sorted(k for k, v in node.args.items() if v not in (None, False, []))
    extra = [k for k in extra if kind in _ARGS and k not in _ARGS[kind]]
    if extra:
        return _reject(clause, "forbidden_syntax", f"{_describe(node, extra[0])} is not allowed")
    if kind in (exp.Limit, exp.Offset):
        value = node.expression
        if not (isinstance(value, exp.Literal) and value.is_int):
            return _reject(clause, "forbidden_syntax", f"{clause} takes a whole number")
    if kind is exp.Var and not isinstance(node.parent, _VAR_PARENTS):
        return _reject(clause, "forbidden_syntax", "a bare keyword is not allowed here")
    return None


def _check_table(node: exp.Table, clause: str) -> Rejection | None:
    if not isinstance(node.this, exp.Identifier):
        what = f"table function {function_name(node.this)} is not allowed"
        return _reject(clause, "forbidden_function", what)
    if node.args.get("db") or node.args.get("catalog"):
        name = ".".join(p.name for p in node.parts)
        what = f"{name} is not a view of this grant (no catalogs or schemas)"
        return _reject(clause, "unknown_table", what)
    if _FILE_CHARS & set(node.name):
        return _reject(clause, "file_access", _FILE_MESSAGE)
    alias = node.args.get("alias")
    if alias is not None and alias.columns:
        # `FROM residents AS r(gender)` renames person_id to gender.
        what = "renaming a table's columns (AS t(a, ...)) is not allowed; alias them in SELECT"
        return _reject(clause, "forbidden_syntax", what)
    extra = sorted(k for k, v in node.args.items() if v not in (None, False, []))
    extra = [k for k in extra if k not in _ARGS[exp.Table]]
    if extra:
        return _reject(clause, "forbidden_syntax", f"table modifier ({extra[0]}) is not allowed")
    return None


def _file_scans(code: str) -> Iterator[Rejection]:
    # `FROM 'name'` is a DuckDB replacement scan of a file. sqlglot turns the
    # string into a quoted identifier, so it is caught on the tokens.
    tokens = Dialect.get_or_raise(DIALECT).tokenize(code)
    for before, token in itertools.pairwise(tokens):
        if token.token_type == TokenType.STRING and before.token_type in (
            TokenType.FROM,
            TokenType.JOIN,
        ):
            yield _reject("FROM", "file_access", _FILE_MESSAGE)


_NAMES: dict[type[exp.Expr], str] = {
    exp.Placeholder: "a parameter",
    exp.Parameter: "a parameter",
    exp.Lateral: "LATERAL",
    exp.Pivot: "PIVOT",
    exp.Unnest: "UNNEST",
    exp.Bracket: "subscripting",
    exp.Dot: "struct access",
    exp.Lambda: "a lambda",
    exp.Columns: "COLUMNS(...)",
    exp.PositionalColumn: "a positional column",
    exp.TableSample: "sampling",
}


_ARG_NAMES = {
    "sample": "USING SAMPLE",
    "windows": "a named WINDOW",
    "into": "SELECT INTO",
    "pivots": "PIVOT",
    "laterals": "LATERAL",
    "recursive": "WITH RECURSIVE",
    "on": "DISTINCT ON",
    "by_name": "BY NAME",
    "alias": "a named window",
}


def _describe(node: exp.Expr, arg: str | None = None) -> str:
    if isinstance(node, exp.Join) and node.args.get("method"):
        return f"{str(node.args['method']).upper()} JOIN"  # message, not SQL
    if arg is not None:
        return _ARG_NAMES.get(arg, f"{type(node).__name__.upper()} ... {arg.upper()}")
    return _NAMES.get(type(node), type(node).__name__)


def _reject(clause: str, rule: str, what: str) -> Rejection:
    return Rejection(clause, rule, f"{clause}: {what}")
