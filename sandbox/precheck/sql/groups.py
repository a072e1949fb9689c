"""The outer query's groups, for the evidence rewrite: keys, matching, per-entity sums.

Evidence computed apart from the analyst's query (per-entity contributions,
the rows a query that picks groups returns) is matched to its output rows on
the grouping keys, and under ROLLUP/CUBE/GROUPING SETS on GROUPING() too.
Per-entity contributions come from a second grouping over the outer query's
own FROM, WHERE and GROUP BY with the entity appended, which SQL crosses with
every grouping set.
"""

from __future__ import annotations

import itertools

from sqlglot import exp

from sandbox.precheck.sql.entities import PREFIX, Item
from sandbox.precheck.sql.grammar import DIALECT
from sandbox.sqltext import ident


def group_keys(select: exp.Select) -> tuple[list[exp.Expr], bool]:
    """The grouping expressions of ``select`` and whether grouping sets are involved."""
    group = select.args.get("group")
    if group is None:
        return [], False
    if group.args.get("all"):
        plain = [
            p.unalias() if isinstance(p, exp.Alias) else p
            for p in select.expressions
            if not any(True for _ in p.find_all(exp.AggFunc))
        ]
        return [k.copy() for k in plain], False
    keys: list[exp.Expr] = []
    sets = False
    nodes = list(group.expressions)
    for arg in ("rollup", "cube", "grouping_sets"):  # older sqlglot keeps them apart
        nodes.extend(group.args.get(arg) or [])
    for node in nodes:
        if isinstance(node, exp.Rollup | exp.Cube | exp.GroupingSets):
            sets = True
            for inner in node.expressions:
                keys.extend(inner.expressions if isinstance(inner, exp.Tuple) else [inner])
        else:
            keys.append(node)
    unique = {k.sql(dialect=DIALECT): k for k in keys}
    return [k.copy() for k in unique.values()], sets


def add_keys(select: exp.Select, keys: list[exp.Expr], sets: bool) -> list[str]:
    """Append the grouping keys (and GROUPING() under grouping sets); their names."""
    names = [f"{PREFIX}g{i}" for i in range(len(keys))]
    for key, name in zip(keys, names, strict=True):
        select.append("expressions", exp.alias_(key.copy(), name, quoted=True))
    if sets:
        grouping = exp.Anonymous(this="GROUPING", expressions=[k.copy() for k in keys])
        select.append("expressions", exp.alias_(grouping, f"{PREFIX}gid", quoted=True))
        names.append(f"{PREFIX}gid")
    return names


def match_sql(left_sql: str, right_sql: str, key_names: list[str]) -> str:
    on = " AND ".join(
        f"{left_sql}.{ident(k)} IS NOT DISTINCT FROM {right_sql}.{ident(k)}" for k in key_names
    )
    return on or "TRUE"


def per_entity_sql(
    outer: exp.Select,
    keys: list[exp.Expr],
    sets: bool,
    item: Item,
    args: list[tuple[exp.Expr, str]],
) -> str:
    """Per group and entity, the sum of each measure argument (same FROM, WHERE, GROUP BY)."""
    select = exp.Select()
    for key, i in zip(keys, itertools.count(), strict=False):
        select.append("expressions", exp.alias_(key.copy(), f"{PREFIX}g{i}", quoted=True))
    if sets:
        grouping = exp.Anonymous(this="GROUPING", expressions=[k.copy() for k in keys])
        select.append("expressions", exp.alias_(grouping, f"{PREFIX}gid", quoted=True))
    for arg, name in args:
        select.append("expressions", exp.alias_(exp.Sum(this=arg.copy()), name, quoted=True))
    for arg_name in ("from_", "from", "joins", "where"):
        if arg_name not in select.arg_types:
            continue
        value = outer.args.get(arg_name)
        if value is not None:
            copied = [v.copy() for v in value] if isinstance(value, list) else value.copy()
            select.set(arg_name, copied)
    group = outer.args.get("group")
    if group is None or group.args.get("all"):
        new_group = exp.Group(expressions=[k.copy() for k in keys] + [item.expr.copy()])
    else:
        new_group = group.copy()
        new_group.set("expressions", [*new_group.expressions, item.expr.copy()])
    select.set("group", new_group)
    sql: str = select.sql(dialect=DIALECT)
    return sql
