"""No SQL text on the trusted side is formatted from a name.

``tests/support/sqlflow.py`` walks the trusted code (everything in
``sandbox/`` and ``gateway/`` except what runs inside the job container) and
reports every place where SQL text is built by formatting with a part that is
not quoted by ``sandbox.sqltext`` (or otherwise known safe). A new f-string
around a name in a DuckDB call fails this test.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.sqlflow import check_sources, check_tree

ROOT = Path(__file__).resolve().parents[2]


def _in_container() -> list[str]:
    """The runner image's code (images/build.py's IN_CONTAINER): the job's side, not ours."""
    tree = ast.parse((ROOT / "images" / "build.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "IN_CONTAINER" for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            return [p for p in value if p not in ("sandbox/__init__.py", "sandbox/errors.py")]
    raise AssertionError("images/build.py has no IN_CONTAINER list")


def test_trusted_code_formats_no_sql_from_names() -> None:
    found = check_tree(ROOT, ["sandbox", "gateway"], _in_container())
    assert found == [], "SQL text built from unquoted parts:\n" + "\n".join(map(str, found))


def test_the_walk_sees_a_name_pasted_into_sql() -> None:
    bad = """
def build(con, names, types, raw):
    casts = ", ".join(f'CAST("{n}" AS {types[n]}) AS "{n}"' for n in names)
    con.execute(f"COPY (SELECT {casts} FROM generated) TO '{raw}' (FORMAT parquet)")

def lookup(con, name):
    q = "SELECT %s FROM t" % name
    con.sql(q)
    con.execute("SELECT {} FROM t".format(name))
    con.execute("SELECT " + name + " FROM t")

def fragment(name):
    where_sql = f"{name} = 1"
    return where_sql

def through_a_builder(con, name):
    con.execute(f"SELECT * FROM t WHERE {fragment_sql(name)}")

def fragment_sql(col_sql: str) -> str:
    return col_sql + " = 1"
"""
    found = check_sources([("bad.py", bad)])
    lines = {v.line for v in found}
    assert {3, 4, 7, 8, 9, 10, 13, 17} <= lines, found


def test_the_walk_lets_quoted_names_and_bound_values_through() -> None:
    good = """
from sandbox.sqltext import ident, sql_type

def build(con, names, types, raw):
    casts_sql = ", ".join(f"CAST({ident(n)} AS {sql_type(types[n])}) AS {ident(n)}" for n in names)
    con.execute(f"COPY (SELECT {casts_sql} FROM generated) TO $raw (FORMAT parquet)", {"raw": raw})
    for i, n in enumerate(names):
        con.execute(f"SELECT {ident(n)} AS c{i} FROM t LIMIT {int(len(names))}")
    con.execute("SELECT * FROM t WHERE v = $v", {"v": names[0]})

def message(name):
    raise ValueError(f"no column {name!r} to SELECT")  # message, not SQL
"""
    assert check_sources([("good.py", good)]) == []
