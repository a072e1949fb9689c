"""The grants' Casbin scope lines, written in the caller's transaction.

``gateway.scope_store.ScopeRuleAdapter`` writes each change in a transaction
of its own. A grant's state, its audit event and its scope lines must
commit together, and on SQLite a second write transaction inside the first
would wait for the write lock the first holds. This adapter writes through
the connection bound with :meth:`ConnectionScopeAdapter.bound` instead, and
reads with a read-only snapshot (so a reload never waits for a writer).
When a transaction that changed lines rolls back, the policy in memory is
reloaded from the store (see :func:`reload_on_rollback`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, delete, event, insert, or_

from gateway.scope import ScopePolicy
from gateway.scope_store import ScopeRuleAdapter, _matches, _row, load_lines, read_revision
from gateway.store.tables import scope_rules

_BATCH = 100  # lines per DELETE (SQLite's expression-depth and parameter limits)


class ConnectionScopeAdapter(ScopeRuleAdapter):
    """``ScopeRuleAdapter`` that writes in a bound connection's transaction."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._local = threading.local()

    @contextmanager
    def bound(self, conn: Connection) -> Iterator[None]:
        """Within the block, this thread's writes go through ``conn``."""
        previous = getattr(self._local, "conn", None)
        self._local.conn = conn
        try:
            yield
        finally:
            self._local.conn = previous

    def _bound(self) -> Connection | None:
        conn: Connection | None = getattr(self._local, "conn", None)
        return conn

    # Inside a bound transaction, reads go through it: its own uncommitted
    # changes are part of what this thread's memory must agree with.

    def load_policy(self, model: Any) -> None:
        conn = self._bound()
        if conn is None:
            super().load_policy(model)
        else:
            self.loaded_revision = load_lines(conn, model)

    def current_revision(self) -> int:
        conn = self._bound()
        return super().current_revision() if conn is None else read_revision(conn)

    def add_policies(self, sec: str, ptype: str, rules: Iterable[Sequence[str]]) -> bool:
        conn = self._bound()
        if conn is None:
            return bool(super().add_policies(sec, ptype, rules))
        rows = [_row(ptype, rule) for rule in rules]
        if rows:
            conn.execute(insert(scope_rules), rows)
            self.wrote(conn)
        return True

    def remove_policies(self, sec: str, ptype: str, rules: Iterable[Sequence[str]]) -> bool:
        conn = self._bound()
        if conn is None:
            return bool(super().remove_policies(sec, ptype, rules))
        conditions = [_matches(ptype, rule) for rule in rules]
        for start in range(0, len(conditions), _BATCH):
            conn.execute(delete(scope_rules).where(or_(*conditions[start : start + _BATCH])))
        if conditions:
            self.wrote(conn)
        return True


def reload_on_rollback(conn: Connection, policy: ScopePolicy) -> None:
    """Reload ``policy`` from the store if ``conn``'s transaction rolls back.

    The lines were changed in memory at once; a rollback undoes them in the
    store only. The reload reads a committed snapshot on another connection,
    which does not see the rolled-back changes.
    """

    def reload(_conn: Connection) -> None:
        policy.reload()

    event.listen(conn, "rollback", reload, once=True)
