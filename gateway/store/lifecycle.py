"""One lifecycle mechanism: a declared table of moves, and one ``transition()`` that keeps it.

Every stateful record of the gateway (a job, a grant, a data request, a
review, an encrypted product) has a :class:`Lifecycle`: its states (a
``StrEnum``), the moves between them, the table and columns that hold the
state, and the audit event that records a move. A state changes only
through :func:`transition`, which

1. refuses a move the table does not declare (:class:`IllegalMove`);
2. writes the new state with a compare-and-set on the state column, in the
   caller's transaction: ``UPDATE ... WHERE key = :key AND state = :from``;
   a row another transaction moved first updates nothing and raises
   :class:`MovedMeanwhile` (the one concurrency idiom: no lock is held
   between reading a record and moving it);
3. appends the audit event in the same transaction, so the move and its
   record commit together or not at all;
4. takes its time from an injected clock (:data:`Clock`), so deadlines and
   terms are testable.

Votes (providers' approvals of a data request, reviewers' votes on a job)
are rows of their own tables, never fields rewritten in place; a lifecycle
moves when the votes counted say so.

``python -m gateway.store.lifecycle`` writes each table as a Mermaid state
diagram into ``docs/lifecycles.md``; a test fails when the file and the
tables differ.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gateway.audit.chain import append

S = TypeVar("S", bound=StrEnum)

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The clock every service uses unless a test or a deployment gives another."""
    return datetime.now(UTC)


class LifecycleError(Exception):
    """A move a lifecycle refuses (the gateway answers 409)."""


class IllegalMove(LifecycleError):
    """The table does not allow this move from the record's current state."""


class MovedMeanwhile(LifecycleError):
    """Another transaction moved the record between reading it and moving it."""


@dataclass(frozen=True)
class Lifecycle(Generic[S]):
    """A declared table of moves and where the state is kept.

    ``moves`` maps every state to the states it may become (a terminal
    state maps to nothing); ``key`` and ``state`` are columns of ``table``;
    ``event`` is the audit event type of a move.
    """

    name: str
    states: type[S]
    moves: Mapping[S, frozenset[S]]
    table: sa.Table
    key: str
    state: str
    event: str
    description: str = ""
    notes: Mapping[tuple[S, S], str] = field(default_factory=dict)  # labels for the diagram

    def __post_init__(self) -> None:
        missing = set(self.states) - set(self.moves)
        if missing:
            raise ValueError(f"{self.name}: no moves declared for {sorted(missing)}")
        for frm, tos in self.moves.items():
            unknown = set(tos) - set(self.states)
            if unknown:
                raise ValueError(f"{self.name}: {frm} moves to unknown {sorted(unknown)}")

    def allows(self, frm: S, to: S) -> bool:
        return to in self.moves[frm]

    @property
    def initial(self) -> S:
        """The state a record is created in: the first the table lists."""
        return next(iter(self.moves))

    @property
    def terminal(self) -> frozenset[S]:
        return frozenset(s for s, tos in self.moves.items() if not tos)

    def check(self, key: str, frm: S, to: S) -> None:
        """Raise :class:`IllegalMove` unless the table allows ``frm`` -> ``to``."""
        if not self.allows(frm, to):
            final = f": {frm} is final" if not self.moves[frm] else ""
            raise IllegalMove(f"{self.name} {key} is {frm}; it cannot become {to}{final}")


@dataclass(frozen=True)
class Audit:
    """What the move's audit event carries besides ``from`` and ``to``."""

    actor: str
    grant_id: str | None = None
    datasets: Iterable[str] = ()
    detail: Mapping[str, Any] = field(default_factory=dict)


def transition(
    conn: Connection,
    lifecycle: Lifecycle[S],
    key: str,
    frm: S,
    to: S,
    audit: Audit,
    *,
    values: Mapping[str, Any] | None = None,
    key_name: str | None = None,
) -> None:
    """Move record ``key`` from ``frm`` to ``to``, with ``values`` written alongside.

    Checked against the table, written with a compare-and-set on the state
    column and audited, all in the caller's transaction. ``frm`` is the
    state the caller read: if the row is no longer in it, nothing is written
    and :class:`MovedMeanwhile` is raised. A move to the same state (when
    the table declares it) rewrites ``values`` and is audited like any other.
    """
    lifecycle.check(key, frm, to)
    table = lifecycle.table
    done = conn.execute(
        sa.update(table)
        .where(table.c[lifecycle.key] == key, table.c[lifecycle.state] == frm.value)
        .values({lifecycle.state: to.value, **dict(values or {})})
    )
    if done.rowcount != 1:
        raise MovedMeanwhile(f"{lifecycle.name} {key} changed state meanwhile")
    append(
        conn,
        lifecycle.event,
        audit.actor,
        grant_id=audit.grant_id,
        datasets=audit.datasets,
        detail={key_name or lifecycle.name: key, "from": frm.value, "to": to.value}
        | dict(audit.detail),
    )


# -- diagrams ---------------------------------------------------------------------------


def mermaid(lifecycle: Lifecycle[Any]) -> str:
    """The table as a Mermaid state diagram (every declared move, terminal states marked)."""
    lines = ["stateDiagram-v2"]
    lines.append(f"    [*] --> {lifecycle.initial.value}")
    for frm in lifecycle.states:
        for to in lifecycle.states:
            if to in lifecycle.moves[frm]:
                note = lifecycle.notes.get((frm, to))
                lines.append(f"    {frm.value} --> {to.value}" + (f": {note}" if note else ""))
    for state in lifecycle.states:
        if state in lifecycle.terminal:
            lines.append(f"    {state.value} --> [*]")
    return "\n".join(lines)


def document(lifecycles: Iterable[Lifecycle[Any]]) -> str:
    """``docs/lifecycles.md``: one section and diagram per lifecycle."""
    out = [
        "# Lifecycles",
        "",
        "Generated from the transition tables by `python -m gateway.store.lifecycle`;",
        "`tests/gateway/store/test_lifecycle.py` fails when this file and the tables differ.",
        "Every move goes through `gateway.store.lifecycle.transition()`: checked against",
        "the table, written with a compare-and-set on the state, audited in the same",
        "transaction.",
        "",
    ]
    for lc in lifecycles:
        terminal = ", ".join(f"`{s.value}`" for s in lc.states if s in lc.terminal)
        out += [
            f"## {lc.name}",
            "",
            *([lc.description, ""] if lc.description else []),
            f"Audit event: `{lc.event}`. Terminal: {terminal or 'none'}.",
            "",
            "```mermaid",
            mermaid(lc),
            "```",
            "",
        ]
    return "\n".join(out)


def all_lifecycles() -> list[Lifecycle[Any]]:
    """Every lifecycle of the gateway, in the order the docs show them."""
    from gateway.lifecycles import LIFECYCLES

    return list(LIFECYCLES)


if __name__ == "__main__":  # pragma: no cover - a documentation generator
    from pathlib import Path

    target = Path(__file__).resolve().parents[2] / "docs" / "lifecycles.md"
    target.parent.mkdir(exist_ok=True)
    target.write_text(document(all_lifecycles()))
    print(target)
