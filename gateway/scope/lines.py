"""What a grant's scope becomes as lines: written in the grant's own transaction.

Stage: grants (supply, amendment, suspension, revocation) write the lines
that data flow steps 1 and 5 decide by. Which lines a grant's datasets and
columns become is ``ScopePolicy.grant_rules`` (one line per dataset and
column object, per action); this module makes them commit with the grant.

``gateway.scope.store.ScopeRuleAdapter`` writes each change in a transaction
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
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, event, insert

from gateway.scope.errors import ScopeRuleError
from gateway.scope.objects import (
    BAD_DATASET,
    Rule,
    column_object,
    column_problem,
    dataset_object,
    rule_problem,
)
from gateway.scope.store import (
    ScopeRuleAdapter,
    delete_matching,
    line_matches,
    line_row,
    load_lines,
    read_revision,
)
from gateway.store.tables import scope_rules
from sandbox.intake.registry import NAME_RE as DATASET_NAME_RE

if TYPE_CHECKING:
    from gateway.scope.policy import ScopePolicy
    from sandbox.views.build import DatasetScope


def grant_lines(
    grant_id: str, operator: str, scopes: Iterable[DatasetScope], actions: Iterable[str]
) -> dict[Rule, None]:
    """The allow lines of a grant: its datasets and columns, for each action, in order.

    One line per dataset object and per column object, per action: never a
    pattern. Raises ``ScopeRuleError`` for a grant without datasets or
    actions, or whose names would not make exactly those objects.
    """
    actions = tuple(dict.fromkeys(actions))
    scopes = tuple(scopes)
    if not actions or not scopes:
        raise ScopeRuleError("a grant's lines need at least one dataset and one action")
    wanted: dict[Rule, None] = {}
    for scope in scopes:
        objects = [dataset_object(scope.dataset)]
        objects += [column_object(scope.dataset, c) for c in scope.columns]
        for obj in objects:
            for action in actions:
                wanted[Rule(operator, grant_id, obj, action, "allow")] = None
    # Checked here, not only by line: "d/column:c" as a dataset would make a
    # valid column object, and a column "*" the pattern grants never hold.
    for scope in scopes:
        if not DATASET_NAME_RE.fullmatch(scope.dataset):
            raise ScopeRuleError(f"dataset name {scope.dataset!r}: {BAD_DATASET}")
        for column in scope.columns:
            if problem := column_problem(column):
                raise ScopeRuleError(f"{scope.dataset} column {column!r}: {problem}")
    check_lines(wanted)
    return wanted


def check_lines(rules: Iterable[Rule]) -> None:
    """Raise ``ScopeRuleError`` naming every line that breaks ``rule_problem``."""
    problems = [f"{', '.join(r)}: {p}" for r in rules if (p := rule_problem(r))]
    if problems:
        raise ScopeRuleError("invalid scope policy lines:\n  - " + "\n  - ".join(problems))


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
        rows = [line_row(ptype, rule) for rule in rules]
        if rows:
            conn.execute(insert(scope_rules), rows)
            self.wrote(conn)
        return True

    def remove_policies(self, sec: str, ptype: str, rules: Iterable[Sequence[str]]) -> bool:
        conn = self._bound()
        if conn is None:
            return bool(super().remove_policies(sec, ptype, rules))
        conditions = [line_matches(ptype, rule) for rule in rules]
        if conditions:
            delete_matching(conn, conditions)
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
