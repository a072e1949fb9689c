"""Rewrite a checked SQL product so that it also returns trusted evidence.

Between stage 2 (the static check) and stage 4 (the run): the analyst's
query is rewritten, on the trusted side, so that every output row also
carries

- ``__dsr_ent_<dataset>``: the list of distinct entities (per-grant
  pseudonyms of the entity column) of each dataset behind the row;
- ``__dsr_top_<i>`` / ``__dsr_tot_<i>``: for the argument of each SUM or AVG
  in the output, the largest absolute per-entity contributions to the row
  (descending, as many as the dominance rule needs) and their total;
- ``__dsr_subt<i>`` / ``__dsr_subf<i>``: for each condition inside an
  aggregate (CASE / IF / NULLIF / COALESCE / a comparison in the argument,
  or a FILTER clause), the number of distinct entities of a dataset for
  which it holds, and for which it does not (NULL counts as not): the
  subpopulations the aggregate describes;
- ``__dsr_row``: the row's position, so the released columns keep the
  analyst's order.

A query that picks groups (HAVING, QUALIFY, LIMIT, OFFSET at the top)
returns every group its FROM, WHERE and GROUP BY form, with ``__dsr_keep``
true for the rows the analyst's query returns (in its order, first). The
released values of kept rows come from the analyst's query as written,
matched to the groups on the grouping keys; dropped groups carry evidence
only. So the output rules can judge every group, and whether a query is
released cannot depend on which groups its filter kept.

Threshold and dominance rules can then be exact: the numbers come from our
SQL, not from the analyst. The analyst's requested columns are what is
released; the evidence columns stay on the trusted side.

How entities are followed (``entities``): every source in a FROM clause
exposes, per dataset, either a scalar entity expression (a view, or a
row-level CTE or subquery over one: the entity column is threaded through as
an extra column) or a list of entities (an aggregated CTE or subquery: its
groups' entity lists, flattened where they are used). The outer query
aggregates these per row. Per-entity contributions (``groups``) come from a
second grouping over the outer query's own FROM, WHERE and GROUP BY (GROUP BY
ROLLUP/CUBE/GROUPING SETS included: the entity is appended, which SQL crosses
with every grouping set), matched to output rows on the grouping keys and
GROUPING().

Invariants:
- The released columns are computed by the analyst's (checked) expressions
  unchanged; only columns (and, for a query that picks groups, the rows it
  dropped, flagged) are added, never values changed.
- A query the rewrite cannot follow raises ``EvidenceUnavailable``: without
  trusted evidence an output is never released automatically.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlglot import exp, parse_one

from sandbox.errors import EvidenceUnavailable, SqlNameError
from sandbox.precheck.sql.conditions import conditions, filter_condition, outer_aggregates
from sandbox.precheck.sql.entities import (
    PREFIX,
    Follower,
    Item,
    aggregated,
    by_dataset,
    entity_list,
)
from sandbox.precheck.sql.grammar import DIALECT
from sandbox.precheck.sql.groups import add_keys, group_keys, match_sql, per_entity_sql
from sandbox.precheck.sql.model import CheckedQuery
from sandbox.sqltext import ident

ROW = "__dsr_row"
KEEP = "__dsr_keep"
# The rewrite's own relations in the SQL it writes (names under ``PREFIX``).
MAIN = "__dsr_main"  # the analyst's query over every group, with the evidence columns
PER = "__dsr_per"  # + i: per group and entity, the sums of the measures of one source
CON = "__dsr_con"  # + i: per group, the largest contributions and their total
KEPT = "__dsr_kept"  # the rows the analyst's query returns, in its order
POS = "__dsr_pos"  # their position there
# The clauses of the outer query that pick or order groups: their aggregates
# get evidence under these labels (in place of an output column's name).
FILTER_CLAUSES = {"having": "HAVING", "qualify": "QUALIFY", "order": "ORDER BY"}
_PICKS = ("having", "qualify", "limit", "offset")


@dataclass(frozen=True)
class Measure:
    """The evidence of one SUM/AVG argument: its dataset and evidence columns."""

    dataset: str
    top: str
    total: str


@dataclass(frozen=True)
class Subpopulation:
    """One condition inside an aggregate: per row, the entities of ``dataset``
    for which it holds (``true``) and for which it does not (``false``)."""

    dataset: str
    true: str
    false: str


@dataclass(frozen=True)
class EvidenceQuery:
    """A checked query rewritten to carry evidence; run ``sql``, release ``output_columns``.

    ``measures`` and ``subpopulations`` are keyed by output column, or by
    the clause (``FILTER_CLAUSES``: HAVING, QUALIFY, ORDER BY) whose
    aggregates pick or order the rows.
    """

    sql: str
    output_columns: tuple[str, ...]
    entity_columns: Mapping[str, str]  # dataset -> column holding the row's entity list
    measures: Mapping[str, tuple[Measure, ...]]  # output column -> its SUM/AVG arguments
    additive: frozenset[str]  # output columns that are a plain COUNT or SUM
    dimensions: tuple[str, ...] = ()  # output columns holding no aggregate: the row's keys
    top_n: int = 2
    datasets: tuple[str, ...] = field(default=())
    # The column flagging the rows the analyst's query returns; None when it
    # picks no groups (no HAVING, QUALIFY, LIMIT or OFFSET): every row is kept.
    keep: str | None = None
    subpopulations: Mapping[str, tuple[Subpopulation, ...]] = field(default_factory=dict)


def _measure_args(part: exp.Expr) -> list[exp.Expr]:
    """The arguments of the SUMs and AVGs of ``part`` (FILTER folded in as a CASE)."""
    found = []
    for node in outer_aggregates(part):
        if not isinstance(node, exp.Sum | exp.Avg) or isinstance(node.this, exp.Distinct):
            continue  # SUM(DISTINCT x) is not a sum of contributions
        arg = node.this
        if (condition := filter_condition(node)) is not None:
            arg = exp.Case(ifs=[exp.If(this=condition.copy(), true=arg.copy())])
        found.append(arg)
    return found


def _judged_parts(tree: exp.Select, outputs: tuple[str, ...]) -> list[tuple[str, exp.Expr]]:
    """What carries evidence: each output column, and each clause picking or ordering rows."""
    parts = list(zip(outputs, tree.expressions, strict=True))
    for key, label in FILTER_CLAUSES.items():
        if (clause := tree.args.get(key)) is not None:
            parts.append((label, clause))
    return parts


def _measure_dataset(arg: exp.Expr, sources: Mapping[str, list[Item]]) -> Item | None:
    """The scalar entity of the source the measure's columns come from."""
    tables = {c.table for c in arg.find_all(exp.Column)}
    if len(tables) != 1:
        return None
    scalars = [i for i in sources.get(tables.pop(), []) if not i.is_list]
    return scalars[0] if len(scalars) == 1 else None


def rewrite(checked: CheckedQuery, entity_columns: Mapping[str, str], top_n: int) -> EvidenceQuery:
    """Rewrite ``checked`` to carry evidence (``entity_columns``: view -> entity column).

    Raises ``EvidenceUnavailable`` for a query whose entities cannot be followed,
    or whose names cannot be quoted (``sandbox.sqltext``).
    """
    try:
        return _rewrite(checked, entity_columns, top_n)
    except SqlNameError as e:
        raise EvidenceUnavailable("a name in the query cannot be quoted") from e


@dataclass(frozen=True)
class RowQuery:
    """A row-level query (a model's inputs) that also returns each row's entities."""

    sql: str
    entities: Mapping[str, tuple[str, ...]]  # dataset -> its entity columns in the result


def rewrite_rows(checked: CheckedQuery, entity_columns: Mapping[str, str]) -> RowQuery:
    """Rewrite a row-level ``checked`` query (``check_sql(..., row_level=True)``) so that
    every row also carries the pseudonyms of the entities it comes from.

    The fitting code counts entities per level of a categorical term with them;
    they are never part of a model. Raises ``EvidenceUnavailable`` for a query
    whose entities cannot be followed to single rows.
    """
    try:
        tree = parse_one(checked.sql, dialect=DIALECT)
        if not isinstance(tree, exp.Select) or aggregated(tree):
            raise EvidenceUnavailable("a model's query must select rows")
        with_key = "with_" if "with_" in tree.arg_types else "with"
        with_ = tree.args.get(with_key)
        ctes = {c.alias_or_name: c.this for c in (with_.expressions if with_ else [])}
        exposed = Follower(ctes, entity_columns).expose(tree)
        if not exposed or any(is_list for _, _, is_list in exposed):
            raise EvidenceUnavailable("the rows' entities cannot be followed")
        entities: dict[str, list[str]] = {}
        for dataset, name, _ in exposed:
            entities.setdefault(dataset, []).append(name)
        return RowQuery(
            sql=tree.sql(dialect=DIALECT), entities={d: tuple(c) for d, c in entities.items()}
        )
    except SqlNameError as e:
        raise EvidenceUnavailable("a name in the query cannot be quoted") from e


def _rewrite(checked: CheckedQuery, entity_columns: Mapping[str, str], top_n: int) -> EvidenceQuery:
    tree = parse_one(checked.sql, dialect=DIALECT)
    if not isinstance(tree, exp.Select):
        raise EvidenceUnavailable("a set operation at the top cannot carry evidence")
    outputs = tuple(p.alias_or_name for p in tree.expressions)
    if len(set(outputs)) != len(outputs) or any(o.startswith(PREFIX) for o in outputs):
        raise EvidenceUnavailable("output column names must be unique and not start with __dsr_")
    if tree.args.get("distinct") is not None:
        raise EvidenceUnavailable("SELECT DISTINCT at the top cannot carry evidence")
    with_key = "with_" if "with_" in tree.arg_types else "with"
    with_ = tree.args.get(with_key)
    ctes = {c.alias_or_name: c.this for c in (with_.expressions if with_ else [])}
    tree.set(with_key, None)
    picks = any(tree.args.get(k) is not None for k in _PICKS)
    if picks and not aggregated(tree):
        raise EvidenceUnavailable("a query picking rows it does not group cannot be judged")
    analyst = tree.copy()
    rewriter = Follower(ctes, entity_columns)
    sources = rewriter.sources(tree)
    items = [i for group in sources.values() for i in group]
    if not items:
        raise EvidenceUnavailable("no entity could be followed to the output")

    keys, sets = group_keys(tree)
    main = tree.copy()
    if picks:  # every group: what picks them is judged through ``keep``
        for key in (*FILTER_CLAUSES, "limit", "offset"):
            main.set(key, None)
    key_names = add_keys(main, keys, sets)
    entity_out = {}
    for dataset, group in sorted(by_dataset(items).items()):
        name = f"{PREFIX}ent_{dataset}"
        main.append("expressions", exp.alias_(entity_list(group), name, quoted=True))
        entity_out[dataset] = name
    parts = _judged_parts(tree, outputs)
    subpopulations = _add_subpopulations(
        main, parts, items, rewriter.conditional[id(tree)], rewriter
    )

    measures: dict[str, list[Measure]] = {}
    per_dataset: dict[str, tuple[Item, list[tuple[exp.Expr, str]]]] = {}
    counter = itertools.count()
    for out, part in parts:
        for arg in _measure_args(part):
            item = _measure_dataset(arg, sources)
            if item is None:
                continue
            i = next(counter)
            per_dataset.setdefault(item.expr.sql(dialect=DIALECT), (item, []))[1].append(
                (arg, f"{PREFIX}c{i}")
            )
            measures.setdefault(out, []).append(
                Measure(item.dataset, f"{PREFIX}top{i}", f"{PREFIX}tot{i}")
            )

    cte_sql = [f"{ident(n)} AS ({b.sql(dialect=DIALECT)})" for n, b in ctes.items()]
    cte_sql.append(f"{MAIN} AS ({main.sql(dialect=DIALECT)})")
    joins = []
    evidence_cols = [f"m.{ident(c)}" for c in entity_out.values()]
    evidence_cols += [
        f"m.{ident(c)}" for subs in subpopulations.values() for s in subs for c in (s.true, s.false)
    ]
    for j, (item, args) in enumerate(per_dataset.values()):
        per = per_entity_sql(tree, keys, sets, item, args)
        alias = f"c{j}"
        tops = ", ".join(
            f"max(abs({ident(c)}), {int(top_n)}) AS {ident(c.replace('_c', '_top', 1))}, "
            f"sum(abs({ident(c)})) AS {ident(c.replace('_c', '_tot', 1))}"
            for _, c in args
        )
        group_by = ", ".join(ident(k) for k in key_names)
        cte_sql.append(f"{PER}{j} AS ({per})")
        cte_sql.append(
            f"{CON}{j} AS (SELECT {', '.join([*map(ident, key_names), tops])} "
            f"FROM {PER}{j}" + (f" GROUP BY {group_by})" if key_names else ")")
        )
        joins.append(f"LEFT JOIN {CON}{j} AS {alias} ON {match_sql('m', alias, key_names)}")
        for _, c in args:
            for kind in ("_top", "_tot"):
                evidence_cols.append(f"{alias}.{ident(c.replace('_c', kind, 1))}")
    order = f"m.{ROW}"
    if picks:
        # The analyst's query as written picks and orders the rows it returns.
        add_keys(analyst, keys, sets)
        cte_sql.append(
            f"{KEPT} AS (SELECT *, row_number() OVER () AS {POS} "
            f"FROM ({analyst.sql(dialect=DIALECT)}) AS q)"
        )
        joins.insert(0, f"LEFT JOIN {KEPT} AS k ON {match_sql('m', 'k', key_names)}")
        evidence_cols.append(f"(k.{POS} IS NOT NULL) AS {KEEP}")
        order = f"k.{POS} NULLS LAST, m.{ROW}"
    released = [f"{'k' if picks else 'm'}.{ident(o)}" for o in outputs]
    sql = (
        f"WITH {', '.join(cte_sql)} SELECT {', '.join(released + evidence_cols)} "
        f"FROM (SELECT *, row_number() OVER () AS {ROW} FROM {MAIN}) AS m "
        f"{' '.join(joins)} ORDER BY {order}"
    )
    return EvidenceQuery(
        sql=sql,
        output_columns=outputs,
        entity_columns=entity_out,
        measures={k: tuple(v) for k, v in measures.items()},
        additive=frozenset(_additive(tree, outputs)),
        dimensions=tuple(
            o
            for p, o in zip(tree.expressions, outputs, strict=True)
            if not any(True for _ in p.find_all(exp.AggFunc, exp.Window))
        ),
        top_n=top_n,
        datasets=tuple(sorted(entity_out)),
        keep=KEEP if picks else None,
        subpopulations=subpopulations,
    )


def _add_subpopulations(
    main: exp.Select,
    parts: list[tuple[str, exp.Expr]],
    items: list[Item],
    computed: Mapping[str, set[str]],
    rewriter: Follower,
) -> dict[str, tuple[Subpopulation, ...]]:
    """Per judged part, the entity counts on each side of each condition in its aggregates."""
    found: dict[str, list[Subpopulation]] = {}
    for out, part in parts:
        for agg in outer_aggregates(part):
            for condition in conditions(agg, computed):
                test_sql = condition.sql(dialect=DIALECT)
                for dataset, group in sorted(by_dataset(items).items()):
                    names = []
                    for where_sql in (test_sql, f"({test_sql}) IS NOT TRUE"):
                        name = rewriter.fresh("sub")
                        count = exp.func("len", entity_list(group, where_sql))
                        main.append("expressions", exp.alias_(count, name, quoted=True))
                        names.append(name)
                    found.setdefault(out, []).append(Subpopulation(dataset, *names))
    return {k: tuple(v) for k, v in found.items()}


def _additive(tree: exp.Select, outputs: tuple[str, ...]) -> list[str]:
    found = []
    for projection, out in zip(tree.expressions, outputs, strict=True):
        inner = projection.unalias() if isinstance(projection, exp.Alias) else projection
        if isinstance(inner, exp.Count | exp.Sum) and not isinstance(inner.this, exp.Distinct):
            found.append(out)
    return found
