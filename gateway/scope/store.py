"""Where the scope policy's lines live: the table ``scope_rules`` and its Casbin adapter.

Stage: data flow step 1 and 5 (scope checks) read these lines through
``gateway.scope.policy.ScopePolicy``; grant changes write them
(``gateway.scope.lines``, in the grant's own transaction).

Invariants:

- One row per Casbin line: ``ptype`` ("p") and the line's fields in
  ``v0``..``v5``, unused fields stored as "" (never NULL, so the unique
  constraint really makes a line appear at most once).
- Every write the adapter makes is one transaction: a batch of lines is
  added or removed entirely or not at all.
- The table is part of the store's schema (``gateway.store.tables``),
  created by migration 0003.
- Every write also bumps ``scope_revision`` (migration 0006) in its
  transaction, and a load reads the revision with the lines from one
  snapshot: ``loaded_revision`` is the revision the memory holds, or None
  where it is unknown (another process wrote in between), so a process
  compares it with ``current_revision()`` and reloads when they differ.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from casbin.persist import Adapter  # type: ignore[import-untyped]  # pycasbin ships no type hints
from sqlalchemy import (
    ColumnElement,
    Engine,
    and_,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection

from gateway.store.engine import read_transaction
from gateway.store.migrations import migrate
from gateway.store.tables import FIELD_LENGTH, FIELDS, scope_revision, scope_rules

# The table lives in the store's schema (gateway/store/tables.py, migration 0003).
_V = [scope_rules.c[f"v{i}"] for i in range(FIELDS)]


def create_scope_tables(engine: Engine) -> None:
    """Bring the store to the newest migration, ``scope_rules`` included (idempotent)."""
    migrate(engine)


def read_revision(db: Connection) -> int:
    """The scope lines' revision as ``db``'s transaction sees it."""
    value = db.execute(select(scope_revision.c.revision).where(scope_revision.c.id == 1)).scalar()
    return int(value) if value is not None else 0


def bump_revision(db: Connection) -> int:
    """Count one change of the lines, in ``db``'s transaction; the new revision.

    The row lock this takes (PostgreSQL) or the database's write lock (SQLite)
    orders concurrent writers, so each sees the revision the other left."""
    db.execute(
        update(scope_revision)
        .where(scope_revision.c.id == 1)
        .values(revision=scope_revision.c.revision + 1)
    )
    return read_revision(db)


def load_lines(db: Connection, model: Any) -> int:
    """Append every stored line to ``model``, oldest first; the revision they are at.

    A line goes to its section ("p" lines to section p, "g" lines to g)
    only if the model defines its ptype; each line is cut to the number
    of fields the model declares, so unused trailing fields (stored as
    "") never reach Casbin, while a field that is legitimately "" inside
    the declared width is kept.
    """
    revision = read_revision(db)
    rows = db.execute(select(scope_rules).order_by(scope_rules.c.id)).all()
    sections = model.model
    for row in rows:
        section = sections.get(row.ptype[:1])
        if section is None or row.ptype not in section:
            continue
        assertion = section[row.ptype]
        width = len(assertion.tokens)
        assertion.policy.append([getattr(row, f"v{i}") for i in range(width)])
    return revision


def line_row(ptype: str, rule: Sequence[str]) -> dict[str, str]:
    """The ``scope_rules`` row of one line: unused fields "", every field checked for length."""
    if len(rule) > FIELDS:
        raise ValueError(f"a {ptype} line has {len(rule)} fields; at most {FIELDS} are stored")
    values = [str(v) for v in rule] + [""] * (FIELDS - len(rule))
    too_long = [i for i, v in enumerate(values) if len(v) > FIELD_LENGTH]
    if too_long:
        raise ValueError(f"field v{too_long[0]} is longer than {FIELD_LENGTH} characters")
    return {"ptype": ptype, **{f"v{i}": v for i, v in enumerate(values)}}


def line_matches(ptype: str, rule: Sequence[str]) -> ColumnElement[bool]:
    """The condition selecting the stored row of one line."""
    row = line_row(ptype, rule)
    return and_(scope_rules.c.ptype == ptype, *(_V[i] == row[f"v{i}"] for i in range(FIELDS)))


class ScopeRuleAdapter(Adapter):  # type: ignore[misc]  # the base class is untyped (Any)
    """Casbin's ``persist.Adapter`` over ``scope_rules`` (SQLAlchemy Core, any dialect).

    Casbin calls the ``add_*``/``remove_*`` methods to mirror each change it
    makes in memory (auto-save); ``load_policy`` fills a fresh model.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.loaded_revision: int | None = None

    # -- reading ---------------------------------------------------------------

    def load_policy(self, model: Any) -> None:
        """Append every stored line to ``model`` (see :func:`load_lines`), from one
        read-only snapshot, which never waits for a writer."""
        with read_transaction(self.engine) as db:
            self.loaded_revision = load_lines(db, model)

    def current_revision(self) -> int:
        """The committed revision of the lines (one small read)."""
        with read_transaction(self.engine) as db:
            return read_revision(db)

    def wrote(self, db: Connection) -> None:
        """Bump the revision in ``db``'s transaction after a write. Memory stays known to
        be current only if no other writer came between its load and this write."""
        new = bump_revision(db)
        known = self.loaded_revision is not None and new == self.loaded_revision + 1
        self.loaded_revision = new if known else None

    # -- writing ---------------------------------------------------------------

    def save_policy(self, model: Any) -> bool:
        """Replace every stored line by the lines of ``model`` (one transaction)."""
        rows = [
            line_row(ptype, rule)
            for sec in ("p", "g")
            if sec in model.model
            for ptype, assertion in model.model[sec].items()
            for rule in assertion.policy
        ]
        with self.engine.begin() as db:
            db.execute(delete(scope_rules))
            if rows:
                db.execute(insert(scope_rules), rows)
            self.wrote(db)
        return True

    def add_policy(self, sec: str, ptype: str, rule: Sequence[str]) -> bool:
        """Store one line."""
        return self.add_policies(sec, ptype, [rule])

    def add_policies(self, sec: str, ptype: str, rules: Iterable[Sequence[str]]) -> bool:
        """Store several lines in one transaction (a duplicate fails the whole batch)."""
        rows = [line_row(ptype, rule) for rule in rules]
        if rows:
            with self.engine.begin() as db:
                db.execute(insert(scope_rules), rows)
                self.wrote(db)
        return True

    def remove_policy(self, sec: str, ptype: str, rule: Sequence[str]) -> bool:
        """Delete one line."""
        return self.remove_policies(sec, ptype, [rule])

    def remove_policies(self, sec: str, ptype: str, rules: Iterable[Sequence[str]]) -> bool:
        """Delete several lines in one transaction."""
        conditions = [line_matches(ptype, rule) for rule in rules]
        if conditions:
            with self.engine.begin() as db:
                delete_matching(db, conditions)
                self.wrote(db)
        return True

    def remove_filtered_policy(
        self, sec: str, ptype: str, field_index: int, *field_values: str
    ) -> bool:
        """Delete the lines whose fields from ``field_index`` on equal ``field_values``.

        As in Casbin's in-memory model, which this mirrors: a value of ""
        matches anything, so a filter of only "" (or none) deletes every
        line of ``ptype``.
        """
        if field_index < 0 or field_index + len(field_values) > FIELDS:
            raise ValueError(f"fields {field_index}..{field_index + len(field_values) - 1} unknown")
        terms = [
            _V[field_index + i] == value for i, value in enumerate(field_values) if value != ""
        ]
        with self.engine.begin() as db:
            db.execute(delete(scope_rules).where(scope_rules.c.ptype == ptype, *terms))
            self.wrote(db)
        return True


def delete_matching(db: Connection, conditions: list[ColumnElement[bool]]) -> None:
    """Delete the rows matching any of ``conditions`` (see :func:`line_matches`), in ``db``'s
    transaction."""
    # One DELETE per batch keeps the statement under SQLite's expression-depth
    # and bound-parameter limits (7 parameters per line).
    batch = 100
    for start in range(0, len(conditions), batch):
        db.execute(delete(scope_rules).where(or_(*conditions[start : start + batch])))
