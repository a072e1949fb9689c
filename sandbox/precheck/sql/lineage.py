"""Column lineage: resolve every column reference of a qualified query to the
view columns it derives from, and check every use against the rules.

Runs on the tree sqlglot's ``qualify`` produced (every column carries its
source alias; GROUP BY ordinals, lateral aliases and USING are expanded).
Sources are views, CTEs and derived tables; a CTE or subquery column
carries the origins of the expression that produced it, so a rule applies
where a value is used however many subqueries it went through. The SELECT
items of a subquery over rows are checked where its output is used; every
other clause is checked where it stands. Deny by default: a reference that
resolves to nothing, or to two sources, is rejected.

What sources yield is in ``relations``; which forms an aggregate-only value
may take, in ``linear``. The rest is one recursive walk (``Analyzer``, its
methods calling each other per node type), kept whole in one module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from sqlglot import exp

from sandbox.precheck.sql.grammar import AGGREGATES, RANKING, ROW_VALUE_AGGREGATES, function_name
from sandbox.precheck.sql.linear import CONDITIONS, describe, has_measure, linear_problem
from sandbox.precheck.sql.model import Rejection
from sandbox.precheck.sql.relations import NONE, Relation, Value
from sandbox.precheck.sql.rules import Kind, Use, check_use, is_filter


@dataclass
class Frame:
    """The sources of one SELECT; ``parent`` is the enclosing one (correlated references)."""

    sources: dict[str, Relation]
    parent: Frame | None
    aggregating: bool = False
    # The outer query (or a branch of its set operation): its groups are the
    # ones judged by the output rules, so they may be filtered on aggregates.
    top: bool = False
    outputs: dict[str, Value] = field(default_factory=dict)  # for ORDER BY <alias>


class Analyzer:
    """Walks a qualified query once, collecting rejections, views read and lineage."""

    def __init__(
        self,
        views: Mapping[str, Relation],
        allowed_aggregates: frozenset[str],
        *,
        row_level: bool = False,
    ) -> None:
        self._views = views
        self._allowed = allowed_aggregates
        self._row_level = row_level
        self._values: dict[int, Value] = {}  # id(node) -> its origins, as found
        self.rejections: list[Rejection] = []
        self.views_used: set[str] = set()
        self.lineage: set[tuple[str, str]] = set()

    # -- queries and their sources ------------------------------------------------

    def query(
        self,
        node: exp.Expr,
        outer: Frame | None,
        ctes: Mapping[str, Relation],
        *,
        top: bool,
        where: str,
    ) -> Relation:
        if isinstance(node, exp.Subquery):
            return self.query(node.this, outer, ctes, top=top, where=where)
        scoped = dict(ctes)
        with_ = node.args.get("with_")
        for cte in with_.expressions if with_ else []:
            name = cte.alias_or_name
            scoped[name] = self.query(cte.this, outer, scoped, top=False, where=f" (in CTE {name})")
        if isinstance(node, exp.Select):
            return self._select(node, outer, scoped, top=top, where=where)
        assert isinstance(node, exp.SetOperation)  # the grammar admits no other query
        left = self.query(node.left, outer, scoped, top=top, where=where)
        right = self.query(node.right, outer, scoped, top=top, where=where)
        columns = tuple(
            (n, v | w) for (n, v), (_, w) in zip(left.columns, right.columns, strict=False)
        )
        for (name, v), (_, w) in zip(left.columns, right.columns, strict=False):
            if _has_key(v) != _has_key(w):  # a key united with anything else, e.g. a literal
                what = f"column {name} is a join key in one branch only"
                self._reject("SELECT", "join_key_misuse", what + where)
        relation = Relation(columns, left.row_level or right.row_level)
        self._order(node, Frame({}, outer, top=top, outputs=dict(columns)), scoped, where)
        self._limit(node, relation, top, where)
        return relation

    def _select(
        self,
        node: exp.Select,
        outer: Frame | None,
        ctes: Mapping[str, Relation],
        *,
        top: bool,
        where: str,
    ) -> Relation:
        frame = Frame({}, outer, top=top)
        joins: list[exp.Join] = node.args.get("joins") or []
        from_ = node.args.get("from_")
        for source in ([from_.this] if from_ else []) + [j.this for j in joins]:
            frame.sources[source.alias_or_name] = self._source(source, outer, ctes, where)
        frame.aggregating = bool(node.args.get("group")) or _has_aggregate(node)
        for join in joins:
            self._join(join, frame, ctes, where)
        if (filter_ := node.args.get("where")) is not None:
            self.expr(filter_.this, Use("WHERE", where=where), frame, ctes)
        if (group := node.args.get("group")) is not None:
            for e in group.iter_expressions():  # plain keys, ROLLUP, CUBE, GROUPING SETS
                self.expr(e, Use("GROUP BY", where=where), frame, ctes)
        strict = top or frame.aggregating
        row_output = top and self._row_level and not frame.aggregating
        outputs = []
        for item in node.expressions:
            passthrough = not strict and _is_ref(item.unalias())
            use = Use("SELECT", strict, key_ok=passthrough, row_output=row_output, where=where)
            value = self.expr(item, use, frame, ctes)
            if frame.aggregating:
                value = frozenset(replace(o, aggregated=True) for o in value)
            outputs.append((item.alias_or_name, value))
        frame.outputs = dict(outputs)
        for key, clause in (("having", "HAVING"), ("qualify", "QUALIFY")):
            if (part := node.args.get(key)) is not None:
                self.expr(part.this, Use(clause, where=where), frame, ctes)
        self._order(node, frame, ctes, where)
        row_level = not frame.aggregating and (
            any(r.row_level for r in frame.sources.values())
            or any(not o.aggregated for _, v in outputs for o in v)
        )
        relation = Relation(tuple(outputs), row_level)
        self._limit(node, relation, top, where)
        if top and row_level and not self._row_level:
            self._reject(
                "SELECT", "row_level_output", "row-level output; an SQL product must aggregate"
            )
        return relation

    def _source(
        self, node: exp.Expr, outer: Frame | None, ctes: Mapping[str, Relation], where: str
    ) -> Relation:
        name = node.alias_or_name
        if isinstance(node, exp.Subquery):
            return self.query(node.this, outer, ctes, top=False, where=f" (in subquery {name})")
        if isinstance(node, exp.Table) and node.name in ctes:
            return ctes[node.name]
        if isinstance(node, exp.Table) and node.name in self._views:
            self.views_used.add(node.name)
            return self._views[node.name]
        self._reject("FROM", "unknown_table", f"{node.name} is not a view of this grant{where}")
        return Relation((), row_level=True, opaque=True)

    def _join(self, join: exp.Join, frame: Frame, ctes: Mapping[str, Relation], where: str) -> None:
        on = join.args.get("on")
        if join.args.get("using"):  # qualify rewrites USING into ON; deny if it did not
            self._reject("JOIN", "unknown_column", f"USING cannot be resolved{where}")
        if on is None:
            return
        for term in on.flatten() if isinstance(on, exp.And) else [on]:
            term = term.unnest()
            if isinstance(term, exp.EQ) and _is_ref(term.this) and _is_ref(term.expression):
                # An equality of two columns: join keys may meet here, but only each other.
                use = Use("JOIN", key_ok=True, condition=True, where=where)
                left = self.expr(term.this, use, frame, ctes)
                right = self.expr(term.expression, use, frame, ctes)
                keys = sorted(o for o in left | right if o.kind is Kind.KEY)
                if keys and (_has_key(left) != _has_key(right)):
                    what = f"join key {keys[0].name} must be compared with another join key"
                    self._reject("JOIN", "join_key_misuse", what + where)
            else:
                self.expr(term, Use("JOIN", condition=True, where=where), frame, ctes)

    def _order(
        self, node: exp.Expr, frame: Frame, ctes: Mapping[str, Relation], where: str
    ) -> None:
        if (order := node.args.get("order")) is not None:
            # With LIMIT/OFFSET the order picks rows: it is a condition.
            limited = bool(node.args.get("limit") or node.args.get("offset"))
            use = Use("ORDER BY", condition=limited, where=where)
            for ordered in order.expressions:
                self.expr(ordered.this, use, frame, ctes)

    def _limit(self, node: exp.Expr, relation: Relation, top: bool, where: str) -> None:
        # LIMIT 1 over rows picks one entity's row; only aggregated rows may be cut.
        limited = node.args.get("limit") or node.args.get("offset")
        if limited and relation.row_level and (not top or self._row_level):
            what = "a query over rows must not pick rows by position; aggregate first"
            self._reject("LIMIT", "row_selection", what + where)

    # -- expressions ----------------------------------------------------------------

    def expr(self, node: exp.Expr, use: Use, frame: Frame, ctes: Mapping[str, Relation]) -> Value:
        """The origins of ``node``'s value, checking every reference in it against ``use``."""
        value = self._expr(node, use, frame, ctes)
        self._values[id(node)] = value
        self._check_linear(node, use, frame)
        return value

    def _expr(self, node: exp.Expr, use: Use, frame: Frame, ctes: Mapping[str, Relation]) -> Value:
        if isinstance(node, exp.Column):
            return self._column(node, use, frame)
        if isinstance(node, exp.Window):
            return self._window(node, use, frame, ctes)
        if isinstance(node, exp.Filter) and type(node.this) in AGGREGATES:
            condition = node.expression
            if isinstance(condition, exp.Where):
                condition = condition.this
            return self._aggregate(node.this, use, frame, ctes, condition)
        if type(node) in AGGREGATES:
            return self._aggregate(node, use, frame, ctes)
        if isinstance(node, exp.Subquery | exp.Exists):
            relation = self.query(node.this, frame, ctes, top=False, where=" (in a subquery)")
            if isinstance(node, exp.Exists):
                return NONE  # a truth value: what the subquery selects is not released
            value = _union(v for _, v in relation.columns)
            self._apply(value, replace(use, key_ok=False))
            return value
        keep = isinstance(node, exp.Alias | exp.Paren) or (
            isinstance(node, exp.Coalesce) and _is_ref(node)  # USING's merged join key
        )
        inner = use if keep else replace(use, key_ok=False)
        if isinstance(node, CONDITIONS):
            inner = replace(inner, condition=True)
        if isinstance(node, exp.If):
            value = self.expr(node.this, replace(inner, condition=True), frame, ctes)
            rest = [node.args.get("true"), node.args.get("false")]
            return value | _union(self.expr(c, inner, frame, ctes) for c in rest if c is not None)
        if isinstance(node, exp.Case) and node.this is not None:  # CASE <operand> WHEN ...
            value = self.expr(node.this, replace(inner, condition=True), frame, ctes)
            rest = [*node.args.get("ifs", []), node.args.get("default")]
            return value | _union(self.expr(c, inner, frame, ctes) for c in rest if c is not None)
        return _union(self.expr(c, inner, frame, ctes) for c in node.iter_expressions())

    def _aggregate(
        self,
        node: exp.Expr,
        use: Use,
        frame: Frame,
        ctes: Mapping[str, Relation],
        condition: exp.Expr | None = None,
        *,
        windowed: bool = False,
    ) -> Value:
        name = AGGREGATES[type(node)]
        if name in ROW_VALUE_AGGREGATES:
            self._reject(use.clause, "forbidden_function", f"{name} returns row values{use.where}")
        label = f"{name} OVER (...)" if windowed else name
        allowed = name in self._allowed and not windowed
        inner = Use(use.clause, aggregate=label, aggregate_allowed=allowed, where=use.where)
        if isinstance(node, exp.Count) and isinstance(node.this, exp.Distinct):
            args = node.this.expressions  # COUNT(DISTINCT k) counts entities: a key may appear
            value = _union(
                self.expr(a, replace(inner, key_ok=_is_ref(a)), frame, ctes) for a in args
            )
            if has_measure(value):  # DISTINCT compares the values
                self._nonlinear(inner, value, "under DISTINCT")
        else:
            value = _union(self.expr(c, inner, frame, ctes) for c in node.iter_expressions())
        if condition is not None:
            found = self.expr(condition, replace(inner, condition=True), frame, ctes)
            if has_measure(found):
                self._nonlinear(inner, found, "in a FILTER condition")
        # The result is a statistic: keys (COUNT(DISTINCT k)) do not flow on.
        result = frozenset(replace(o, aggregated=True) for o in value if o.kind is not Kind.KEY)
        if has_measure(result) and not frame.top and is_filter(use):
            measure = min(o for o in result if o.kind is Kind.MEASURE)
            what = (
                f"{name} of aggregate-only column {measure.name} picks rows or groups in a "
                "subquery; filter on aggregates only in the outer query's having clause"
            )
            self._reject(use.clause, "measure_filter", what + use.where)
        return result

    def _window(
        self, node: exp.Window, use: Use, frame: Frame, ctes: Mapping[str, Relation]
    ) -> Value:
        func = node.this
        while isinstance(func, exp.IgnoreNulls):
            func = func.this
        condition = None
        if isinstance(func, exp.Filter):
            func, condition = func.this, func.expression
        name = function_name(func)
        if type(func) in RANKING and not frame.aggregating:
            what = f"{name} OVER (...) over rows is not allowed; rank aggregated groups"
            self._reject(use.clause, "window_function", what + use.where)
        elif type(func) in AGGREGATES:
            what = f"{name} OVER (...) yields per-row values; aggregates cannot be windowed"
            self._reject(use.clause, "window_aggregate", what + use.where)
            self._aggregate(func, use, frame, ctes, condition, windowed=True)
        elif type(func) not in RANKING:
            self._reject(use.clause, "window_function", f"{name} OVER (...) is not allowed")
        spec = Use("WINDOW", where=use.where)
        order = node.args.get("order")
        args = list(func.iter_expressions()) if type(func) in RANKING else []  # NTILE(n)
        for e in [*args, *(node.args.get("partition_by") or [])]:
            self.expr(e, spec, frame, ctes)
        found: list[Value] = []
        for e in order.expressions if order else []:
            found.append(self.expr(e, spec, frame, ctes))
        for e in node.args.get("partition_by") or []:
            found.append(self._values.get(id(e), NONE))
        # A rank is a function of what it orders by: a rank by an aggregate of an
        # aggregate-only column carries it (a filter on the rank is one on the value).
        return frozenset(o for o in _union(found) if o.aggregated)

    def _check_linear(self, node: exp.Expr, use: Use, frame: Frame) -> None:
        """Aggregate-only values only in linear forms inside aggregates, in row-level
        output and anywhere in a subquery (where an aggregate of them is not judged)."""
        if use.aggregate is None and not use.row_output and frame.top:
            return
        if not has_measure(self._values.get(id(node), NONE)):
            return
        per_row = use.aggregate is not None or use.row_output
        if linear_problem(node, self._values, per_row=per_row):
            self._nonlinear(use, self._values[id(node)], describe(node))

    def _nonlinear(self, use: Use, value: Value, what: str) -> None:
        measure = min(o for o in value if o.kind is Kind.MEASURE)
        inside = f"inside {use.aggregate}" if use.aggregate else "in a query"
        msg = (
            f"aggregate-only column {measure.name} is used {what} {inside}; only the column, "
            "sums, differences and scalings by constants of it are allowed"
        )
        self._reject(use.clause, "nonlinear_measure", msg + use.where)

    def _column(self, node: exp.Column, use: Use, frame: Frame) -> Value:
        value = self._resolve(node, use, frame)
        if value is None:
            return NONE
        self.lineage.update((o.view, o.column) for o in value)
        if frame.top and use.clause == "ORDER BY" and value is frame.outputs.get(node.name):
            # The outer query's own aggregate, by its alias: its groups are judged.
            use = replace(use, condition=False)
        self._apply(value, use)
        return value

    def _resolve(self, node: exp.Column, use: Use, frame: Frame) -> Value | None:
        name, table = node.name, node.table
        if node.args.get("db") or node.args.get("catalog"):
            dotted = ".".join(p.name for p in node.parts)
            return self._unresolved(use, "unknown_column", f"{dotted} cannot be resolved")
        if not table and use.clause == "ORDER BY" and name in frame.outputs:
            return frame.outputs[name]
        scope: Frame | None = frame
        while scope is not None:
            if table:
                found = [(table, scope.sources[table])] if table in scope.sources else []
            else:
                found = [
                    (a, r) for a, r in scope.sources.items() if r.opaque or r.get(name) is not None
                ]
            if any(r.opaque for _, r in found):
                return None
            if len(found) > 1:
                what = f"column {name} is ambiguous ({', '.join(sorted(a for a, _ in found))})"
                return self._unresolved(use, "ambiguous_column", what)
            if found:
                value = found[0][1].get(name)
                if sum(n == name for n, _ in found[0][1].columns) > 1:  # SELECT a AS b, c AS b
                    what = f"column {name} is ambiguous (two columns of {found[0][0]})"
                    return self._unresolved(use, "ambiguous_column", what)
                if value is None:
                    return self._unresolved(use, "unknown_column", f"{table} has no column {name}")
                return value
            scope = scope.parent
        dotted = f"{table}.{name}" if table else name
        return self._unresolved(use, "unknown_column", f"column {dotted} cannot be resolved")

    def _unresolved(self, use: Use, rule: str, what: str) -> Value | None:
        self._reject(use.clause, rule, what + use.where)
        return None

    def _apply(self, value: Value, use: Use) -> None:
        for origin in sorted(value):
            if (rejection := check_use(origin, use)) is not None:
                self.rejections.append(rejection)

    def _reject(self, clause: str, rule: str, what: str) -> None:
        self.rejections.append(Rejection(clause, rule, f"{clause}: {what}"))


def _union(values: Iterable[Value]) -> Value:
    return frozenset().union(*values)


def _has_key(value: Value) -> bool:
    return any(o.kind is Kind.KEY for o in value)


def _is_ref(node: exp.Expr) -> bool:
    """A bare column, or the COALESCE of columns qualify makes of a USING key."""
    if isinstance(node, exp.Coalesce):
        return all(_is_ref(a) for a in node.iter_expressions())
    return isinstance(node, exp.Column)


def _has_aggregate(select: exp.Select) -> bool:
    """Whether ``select`` aggregates (an aggregate outside windows and subqueries)."""
    stack: list[exp.Expr] = list(select.expressions)
    stack += [p for k in ("having", "qualify", "order") if (p := select.args.get(k)) is not None]
    while stack:
        node = stack.pop()
        if isinstance(node, exp.Query | exp.Subquery | exp.Exists):
            continue
        if type(node) in AGGREGATES:
            return True
        if isinstance(node, exp.Window):  # its function is windowed, not an aggregate
            stack += node.args.get("partition_by") or []
            stack += [node.args["order"]] if node.args.get("order") else []
            continue
        stack.extend(node.iter_expressions())
    return False
