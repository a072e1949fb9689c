"""One sweep: every task once, at one time, each failure contained, the run audited.

Stage: the gateway's own clock work (terms ending, deadlines passing), outside
any request. :func:`run_sweep` is what the scheduler's thread
(:mod:`gateway.sweep.scheduler`), ``dsr sweep`` (cron) and ``POST
/v1/admin/sweep`` (an administrator, now) each call.

Invariants:

- Every task runs, in the order of ``gateway.sweep.tasks.tasks()``, with the
  same :class:`SweepContext` (one ``now``). A task that raises is logged (with
  its traceback) and recorded as a failure; the next task runs regardless.
  A task that failed part way raises :class:`TaskFailed` with the lines it
  did, so they are reported too.
- The run is audited as ``sweep.run`` (when, the tasks, lines done per task,
  failures) in a transaction of its own, after the tasks: always when someone
  asked for it, and for the scheduler's runs only when a task did something or
  failed (an idle sweep every few minutes is not an event). The actions
  themselves are audited by the tasks, in their own transactions.
- A failure's text in the audit log is a domain error's message or, for
  anything else, only its class: the traceback stays in the gateway's log.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.audit import append
from gateway.audit.chain import SYSTEM
from gateway.errors import GatewayError
from gateway.sweep.tasks import SweepContext, Task

log = logging.getLogger("dsr.gateway.sweep")

EVENT = "sweep.run"


class TaskFailed(GatewayError):
    """A task that did some of its work and failed on the rest (tried again next sweep)."""

    def __init__(self, message: str, done: Sequence[str]) -> None:
        super().__init__(message)
        self.done = tuple(done)


@dataclass(frozen=True)
class TaskResult:
    name: str
    lines: tuple[str, ...]
    failure: str | None = None


@dataclass(frozen=True)
class SweepResult:
    at: datetime
    tasks: tuple[TaskResult, ...]

    @property
    def lines(self) -> list[str]:
        return [line for t in self.tasks for line in t.lines]

    @property
    def failures(self) -> dict[str, str]:
        return {t.name: t.failure for t in self.tasks if t.failure is not None}

    def as_dict(self) -> dict[str, Any]:
        """The result as ``POST /v1/admin/sweep`` and ``dsr sweep --json`` show it."""
        return {
            "at": self.at.isoformat(),
            "lines": self.lines,
            "tasks": [{"name": t.name, "lines": list(t.lines), "failure": t.failure}
                      for t in self.tasks],
            "failures": self.failures,
        }  # fmt: skip


def _described(error: Exception) -> str:
    if isinstance(error, GatewayError):
        return f"{type(error).__name__}: {error}"
    return f"{type(error).__name__} (see the gateway's log)"


def _run_task(task: Task, ctx: SweepContext) -> TaskResult:
    try:
        return TaskResult(task.name, tuple(task.run(ctx)))
    except TaskFailed as e:
        log.error("sweep task %s failed part way: %s", task.name, e)
        return TaskResult(task.name, e.done, _described(e))
    except Exception as e:  # one task's failure never stops the others
        log.exception("sweep task %s failed", task.name)
        return TaskResult(task.name, (), _described(e))


def run_sweep(
    ctx: SweepContext,
    tasks: Sequence[Task],
    *,
    actor: str = SYSTEM,
    audit_idle: bool = True,
) -> SweepResult:
    """Run every task at ``ctx.now`` (see the module docstring); what each did."""
    result = SweepResult(ctx.now, tuple(_run_task(task, ctx) for task in tasks))
    for line in result.lines:
        log.info("sweep: %s", line)
    if audit_idle or result.lines or result.failures:
        detail = {
            "when": ctx.now.isoformat(),
            "tasks": [t.name for t in result.tasks],
            "done": {t.name: len(t.lines) for t in result.tasks},
            "failures": result.failures,
        }
        try:
            with ctx.engine.begin() as conn:
                append(conn, EVENT, actor, detail=detail)
        except Exception:  # the store is down: the log keeps the run, the next one tries again
            log.exception("sweep.run not audited")
    return result
