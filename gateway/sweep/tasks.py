"""The sweep's tasks: each does what is due at ``ctx.now``, once.

A task is a function ``(ctx: SweepContext) -> list[str]`` returning one line
per thing it did. Every task is idempotent and safe when two gateways sweep
at once: each action runs in a transaction of its own (``ctx.engine``), a
state change is a ``gateway.store.lifecycle.transition`` (a compare-and-set:
the loser's ``MovedMeanwhile`` means it was done), a notice has a key
(``gateway.notices.service.notify``). A crash between two actions loses
nothing: the next sweep finds what is still due.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from gateway.settings import GatewaySettings
from gateway.workdays import Calendar

if TYPE_CHECKING:
    from gateway.grants.service import GrantService


@dataclass(frozen=True)
class SweepContext:
    """What a task may use: the store, the grant service, the calendar, the time."""

    engine: Engine
    settings: GatewaySettings
    grants: GrantService
    calendar: Calendar
    now: datetime


@dataclass(frozen=True)
class Task:
    name: str
    run: Callable[[SweepContext], list[str]]


def tasks() -> list[Task]:
    """Every task, in the order a sweep runs them (imported here, when asked, so each
    domain's module may import this one)."""
    found: list[Task] = []
    from gateway.sweep.expiry import EXPIRE_TASK
    from gateway.sweep.leftovers import LEFTOVERS_TASK
    from gateway.sweep.term_notice import TERM_NOTICE_TASK

    found += [EXPIRE_TASK, LEFTOVERS_TASK, TERM_NOTICE_TASK]
    from gateway.requests.overdue import OVERDUE_TASK

    found.append(OVERDUE_TASK)
    from gateway.products.sweep import TASKS as PRODUCT_TASKS

    found += PRODUCT_TASKS
    from gateway.terminations.sweep import TASKS as TERMINATION_TASKS

    found += TERMINATION_TASKS
    return found
