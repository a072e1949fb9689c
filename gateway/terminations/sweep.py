"""The sweep's termination tasks (``gateway.sweep.tasks``): missed rectification
deadlines become proposals; approved terminations whose notice period is over take
effect.

Each action runs in its own transaction; both tasks are idempotent and safe when two
sweeps run at once (a unique ``origin``; a compare-and-set on the termination's state
before the grant is revoked). One action that fails does not stop the others: the task
reports what it did and raises ``TaskFailed`` naming the failures (tried again next
sweep).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from gateway.errors import GatewayError
from gateway.grants.errors import GrantConflict
from gateway.sweep.run import TaskFailed
from gateway.sweep.tasks import SweepContext, Task
from gateway.terminations import rectification
from gateway.terminations.service import TerminationService

T = TypeVar("T")


def _service(ctx: SweepContext) -> TerminationService:
    return TerminationService(
        grants=ctx.grants,
        calendar=ctx.calendar,
        notice_days=ctx.settings.termination_notice_workdays,
        clock=lambda: ctx.now,
    )


def _each(items: Iterable[T], act: Callable[[T], str | None], what: str) -> list[str]:
    """``act`` on every item (each its own transaction); the lines done, or TaskFailed."""
    done: list[str] = []
    failed: list[str] = []
    for item in items:
        try:
            line = act(item)
        except GrantConflict:  # another sweep moved it first (compare-and-set): done
            continue
        except GatewayError as e:
            failed.append(str(e))
            continue
        if line is not None:
            done.append(line)
    if failed:
        raise TaskFailed(f"{len(failed)} {what} failed: {failed[0]}", done)
    return done


def rectification_missed(ctx: SweepContext) -> list[str]:
    """Propose ending each grant whose stop's rectification deadline passed (once)."""
    service = _service(ctx)
    with ctx.engine.connect() as conn:
        due = rectification.missed(conn, ctx.now)

    def act(m: rectification.MissedDeadline) -> str | None:
        with ctx.engine.begin() as conn:
            raised = rectification.propose_for(conn, service, m)
        return None if raised is None else f"termination {raised} proposed: {m.grant_id} missed"

    return _each(due, act, "rectification proposals")


def terminations_due(ctx: SweepContext) -> list[str]:
    """End the grant of every approved termination whose notice period is over."""
    service = _service(ctx)
    with ctx.engine.connect() as conn:
        due = service.due(conn)

    def act(termination_id: str) -> str | None:
        with ctx.engine.begin() as conn:
            ended = service.take_effect(conn, termination_id)
        return f"termination {termination_id} took effect" if ended else None

    return _each(due, act, "terminations")


TASKS = [
    Task("terminations.rectification", rectification_missed),
    Task("terminations.effect", terminations_due),
]
