"""Every lifecycle's table, exhaustively: State x State through the one ``transition()``.

For each lifecycle registered in ``gateway.lifecycles`` and every pair of its
states, a record is put in the first state and moved to the second with
``gateway.store.lifecycle.transition`` on a real SQLite store: a declared
move writes the new state and exactly one audit event (from, to); any other
move raises ``IllegalMove`` and writes nothing. A caller holding a stale
state gets ``MovedMeanwhile`` and writes nothing. Every state is reachable
from the first, terminal states move nowhere, and ``docs/lifecycles.md`` is
what the tables generate. Beside these, a static check: outside
``gateway/store/lifecycle.py`` (and the migrations), no gateway code writes a
registered lifecycle's state column with an UPDATE.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gateway.lifecycles import LIFECYCLES
from gateway.store import make_engine, migrate
from gateway.store.lifecycle import (
    Audit,
    IllegalMove,
    Lifecycle,
    MovedMeanwhile,
    document,
    transition,
)
from gateway.store.tables import audit_events

ROOT = Path(__file__).resolve().parents[3]
DOCS = ROOT / "docs" / "lifecycles.md"
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

PAIRS = [
    pytest.param(lc, frm, to, id=f"{lc.name}:{frm.value}->{to.value}")
    for lc in LIFECYCLES
    for frm, to in itertools.product(list(lc.moves), list(lc.moves))
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A real store (SQLite file, migrated), shared by the module's records."""
    eng = make_engine(f"sqlite:///{tmp_path_factory.mktemp('lifecycles') / 'store.db'}")
    migrate(eng)
    yield eng
    eng.dispose()


def _filler(column: sa.Column[Any], key: str) -> Any:
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return False
    if isinstance(kind, sa.Integer | sa.Float | sa.Numeric):
        return 0
    if isinstance(kind, sa.JSON):
        return []
    if isinstance(kind, sa.DateTime) or "DateTime" in type(kind).__name__:
        return NOW
    return f"{column.name}-{key}"[: getattr(kind, "length", None) or 200]


def _row(conn: Connection, table: sa.Table, fixed: dict[str, Any], key: str) -> None:
    """Insert a row of ``table``: ``fixed`` values, every other required column filled,
    and every row its foreign keys point at made first (when missing)."""
    values: dict[str, Any] = {}
    for column in table.columns:
        if column.name in fixed:
            values[column.name] = fixed[column.name]
        elif not column.nullable:
            values[column.name] = _filler(column, key)
    for column in table.columns:
        for fk in column.foreign_keys:
            if values.get(column.name) is None:
                continue
            target = fk.column
            present = conn.execute(
                sa.select(sa.func.count())
                .select_from(target.table)
                .where(target == values[column.name])
            ).scalar()
            if not present:
                parent = target.table
                assert isinstance(parent, sa.Table)
                _row(conn, parent, {target.name: values[column.name]}, key)
    conn.execute(sa.insert(table).values(values))


def _record(conn: Connection, lc: Lifecycle[Any], state: Any, key: str) -> None:
    """A row of the lifecycle's table in ``state``, every required column filled."""
    _row(conn, lc.table, {lc.key: key, lc.state: state.value}, key)


def _state(conn: Connection, lc: Lifecycle[Any], key: str) -> str:
    table = lc.table
    return str(conn.execute(sa.select(table.c[lc.state]).where(table.c[lc.key] == key)).scalar())


def _events(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(audit_events)).scalar() or 0)


def test_every_lifecycle_is_registered() -> None:
    names = [lc.name for lc in LIFECYCLES]
    assert len(names) == len(set(names))
    tables = {lc.table.name for lc in LIFECYCLES}
    assert {"jobs", "grants", "data_requests", "reviews", "he_products"} <= tables


@pytest.mark.parametrize(("lc", "frm", "to"), PAIRS)
def test_state_by_state(engine: Engine, lc: Lifecycle[Any], frm: Any, to: Any) -> None:
    key = f"{lc.name[:8]}-{frm.value[:12]}-{to.value[:12]}"
    with engine.begin() as conn:
        _record(conn, lc, frm, key)
        before = _events(conn)
        if lc.allows(frm, to):
            transition(conn, lc, key, frm, to, Audit(actor="admin", detail={"why": "test"}))
            assert _state(conn, lc, key) == to.value
            assert _events(conn) == before + 1
            last = conn.execute(
                sa.select(audit_events.c.type, audit_events.c.detail)
                .order_by(audit_events.c.id.desc())
                .limit(1)
            ).one()
            assert last.type == lc.event
            assert (last.detail["from"], last.detail["to"]) == (frm.value, to.value)
        else:
            with pytest.raises(IllegalMove):
                transition(conn, lc, key, frm, to, Audit(actor="admin"))
            assert _state(conn, lc, key) == frm.value
            assert _events(conn) == before


@pytest.mark.parametrize("lc", LIFECYCLES, ids=lambda lc: lc.name)
def test_a_stale_state_moves_nothing(engine: Engine, lc: Lifecycle[Any]) -> None:
    """Read in one state, moved meanwhile: the compare-and-set writes nothing."""
    moves = [(f, t) for f in lc.moves for t in lc.moves[f]]
    for n, (frm, to) in enumerate(moves):
        now_in = next((s for s in lc.moves if s != frm), None)
        if now_in is None:
            continue
        key = f"{lc.name[:8]}-stale-{n}"
        with engine.begin() as conn:
            _record(conn, lc, now_in, key)
            before = _events(conn)
            with pytest.raises(MovedMeanwhile):
                transition(conn, lc, key, frm, to, Audit(actor="admin"))
            assert _state(conn, lc, key) == now_in.value
            assert _events(conn) == before


@pytest.mark.parametrize("lc", LIFECYCLES, ids=lambda lc: lc.name)
def test_the_table_is_whole(lc: Lifecycle[Any]) -> None:
    states = list(lc.moves)
    reached, todo = {lc.initial}, [lc.initial]
    while todo:
        for nxt in lc.moves[todo.pop()]:
            if nxt not in reached:
                reached.add(nxt)
                todo.append(nxt)
    assert reached == set(states), f"unreachable from {lc.initial}: {set(states) - reached}"
    assert lc.terminal, "a lifecycle with no end"
    for state in lc.terminal:
        assert not lc.moves[state]


def test_the_diagrams_are_the_tables() -> None:
    assert DOCS.is_file(), "run: python -m gateway.store.lifecycle"
    assert DOCS.read_text() == document(LIFECYCLES), (
        "docs/lifecycles.md differs from the transition tables: "
        "run `python -m gateway.store.lifecycle` and commit the result"
    )


def _updates_state(node: ast.Call, columns: set[str]) -> bool:
    """``<update(...)>...values(state=...)`` or ``.values({"state": ...})``."""
    func = node.func
    if not (isinstance(func, ast.Attribute) and func.attr == "values"):
        return False
    chain = ast.unparse(func.value)
    if "update" not in chain:
        return False
    names = {k.arg for k in node.keywords if k.arg}
    for arg in node.args:
        if isinstance(arg, ast.Dict):
            names |= {str(k.value) for k in arg.keys if isinstance(k, ast.Constant)}
    return bool(names & columns)


def test_no_state_is_written_but_by_transition() -> None:
    columns = {lc.state for lc in LIFECYCLES}
    tables = {lc.table.name for lc in LIFECYCLES}
    offenders = []
    for path in sorted((ROOT / "gateway").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel == "gateway/store/lifecycle.py" or "/migrations/" in rel:
            continue
        tree = ast.parse(path.read_text(), rel)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _updates_state(node, columns):
                text = ast.unparse(node)
                if any(t in text for t in tables):
                    offenders.append(f"{rel}:{node.lineno}")
    assert not offenders, f"state written outside transition(): {offenders}"
