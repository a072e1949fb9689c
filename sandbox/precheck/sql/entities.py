"""Following entities through a query's sources, for the evidence rewrite.

Every source in a FROM clause exposes, per dataset, either a scalar entity
expression (a view, or a row-level CTE or subquery over one: the entity
column is threaded through as an extra column) or a list of entities (an
aggregated CTE or subquery: its groups' entity lists, flattened where they
are used). ``Follower`` adds those columns to the inner SELECTs it passes
and returns, per source alias, the ``Item``s the enclosing SELECT can
aggregate with ``entity_list``. A source it cannot follow raises
``EvidenceUnavailable``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

from sqlglot import exp, parse_one

from sandbox.errors import EvidenceUnavailable
from sandbox.precheck.sql.conditions import conditional_outputs, has_conditions
from sandbox.precheck.sql.grammar import DIALECT

PREFIX = "__dsr_"  # the rewrite's own column names (sandbox.intake.names reserves it)


@dataclass(frozen=True)
class Item:
    """An entity expression a source exposes: a column of it, scalar or a list."""

    dataset: str
    expr: exp.Expr  # a column of the source (scalar entity or entity list)
    is_list: bool


def _column(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def aggregated(select: exp.Select) -> bool:
    """Whether ``select`` groups or aggregates (outside windows and subqueries)."""
    if select.args.get("group") is not None:
        return True
    for projection in select.expressions:
        for node in projection.find_all(exp.AggFunc):
            if not _inside_subquery(node, projection) and not _windowed(node, projection):
                return True
    return False


def _inside_subquery(node: exp.Expr, stop: exp.Expr) -> bool:
    parent = node.parent
    while parent is not None and parent is not stop:
        if isinstance(parent, exp.Subquery | exp.Select):
            return True
        parent = parent.parent
    return False


def _windowed(node: exp.Expr, stop: exp.Expr) -> bool:
    parent = node.parent
    while parent is not None and parent is not stop:
        if isinstance(parent, exp.Window):
            return True
        parent = parent.parent
    return False


def entity_list(items: list[Item], where_sql: str | None = None) -> exp.Expr:
    """One aggregate: the distinct entities of ``items`` (all of one dataset) in a group,
    of the rows where ``where_sql`` is true when given."""
    parts = []
    for item in items:
        e = item.expr.sql(dialect=DIALECT)
        if item.is_list:
            cond = f" FILTER (WHERE {where_sql})" if where_sql else ""
            parts.append(f"coalesce(flatten(list({e}){cond}), [])")
        else:
            cond = f" AND ({where_sql})" if where_sql else ""
            parts.append(f"coalesce(list(DISTINCT {e}) FILTER (WHERE {e} IS NOT NULL{cond}), [])")
    return parse_one(f"list_distinct(flatten([{', '.join(parts)}]))", dialect=DIALECT)


class Follower:
    """Follows entities through the sources of the SELECTs of one query (CTEs by name)."""

    def __init__(self, ctes: Mapping[str, exp.Expr], entities: Mapping[str, str]) -> None:
        self._ctes = ctes
        self._entities = entities
        self._exposed: dict[str, list[tuple[str, str, bool]]] = {}
        self._names = itertools.count()
        # Per SELECT (by id): per source alias, its computed columns (see conditions.py).
        self.conditional: dict[int, dict[str, set[str]]] = {}
        self._computed: dict[int, set[str]] = {}

    def fresh(self, stem: str) -> str:
        return f"{PREFIX}{stem}{next(self._names)}"

    def sources(self, select: exp.Select) -> dict[str, list[Item]]:
        """Per FROM/JOIN alias of ``select``: the entity items it exposes."""
        found: dict[str, list[Item]] = {}
        computed: dict[str, set[str]] = {}
        joins = select.args.get("joins") or []
        from_ = select.args.get("from_") or select.args.get("from")
        for source in ([from_.this] if from_ is not None else []) + [j.this for j in joins]:
            alias = source.alias_or_name
            if isinstance(source, exp.Table):
                name = source.name
                if name in self._ctes and not source.db:
                    exposed = self._expose_cte(name)
                    computed[alias] = self._computed[id(self._ctes[name])]
                elif name in self._entities:
                    exposed = [(name, self._entities[name], False)]
                else:
                    raise EvidenceUnavailable(f"source {alias} cannot be followed")
            elif isinstance(source, exp.Subquery) and isinstance(source.this, exp.Select):
                exposed = self.expose(source.this)
                computed[alias] = self._computed[id(source.this)]
            else:
                raise EvidenceUnavailable(f"source {alias} cannot be followed")
            found[alias] = [Item(d, _column(c, alias), is_list) for d, c, is_list in exposed]
        self.conditional[id(select)] = computed
        return found

    def _expose_cte(self, name: str) -> list[tuple[str, str, bool]]:
        if name not in self._exposed:
            body = self._ctes[name]
            if not isinstance(body, exp.Select):
                raise EvidenceUnavailable(f"CTE {name} is a set operation")
            self._exposed[name] = self.expose(body)
        return self._exposed[name]

    def expose(self, select: exp.Select) -> list[tuple[str, str, bool]]:
        """Add entity columns to an inner SELECT; return (dataset, column, is_list)."""
        if select.args.get("distinct") is not None:
            raise EvidenceUnavailable("a DISTINCT subquery cannot carry entities")
        items = [i for group in self.sources(select).values() for i in group]
        computed = self.conditional[id(select)]
        out = []
        if aggregated(select):
            # Its groups are not judged: a subpopulation it counts could not be.
            if has_conditions(select, computed):
                raise EvidenceUnavailable("a condition inside a subquery's aggregate")
            self._computed[id(select)] = set()
            for dataset, group in by_dataset(items).items():
                name = self.fresh("l")
                select.append("expressions", exp.alias_(entity_list(group), name, quoted=True))
                out.append((dataset, name, True))
        else:
            self._computed[id(select)] = conditional_outputs(select, computed)
            for item in items:
                name = self.fresh("e")
                select.append("expressions", exp.alias_(item.expr.copy(), name, quoted=True))
                out.append((item.dataset, name, item.is_list))
        return out


def by_dataset(items: list[Item]) -> dict[str, list[Item]]:
    grouped: dict[str, list[Item]] = {}
    for item in items:
        grouped.setdefault(item.dataset, []).append(item)
    return grouped
