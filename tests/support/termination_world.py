"""A gateway on a movable clock for termination, rectification and incident tests.

Plain functions: ``make_world(store_url, tmp_path, start)`` yields the
``tests.support.clocked_world`` world; ``issue`` gives an operator a year's grant
from the clock's time; ``sweep(world, task)`` runs a sweep task at the clock's time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

from gateway.grants.model import GrantRecord
from gateway.sweep.tasks import SweepContext
from tests.support.clocked_world import ClockedWorld, open_world

World = ClockedWorld


def make_world(store_url: str, tmp_path: Path, start: datetime) -> Iterator[World]:
    yield from open_world(World, store_url, tmp_path, start)


def issue(
    w: World,
    *,
    datasets: tuple[str, ...] = ("people",),
    operator: str = "operator-1",
    scenario: str = "elderly care planning",
) -> GrantRecord:
    """A year's grant of ``operator`` over age and income of ``datasets``, from now."""
    now = w.clock.now
    with w.engine.begin() as conn:
        return w.grants.create(
            conn,
            operator=operator,
            scenario=scenario,
            purpose="plan care homes by district",
            scopes=[(d, ("age", "income")) for d in datasets],
            valid_until=now + timedelta(days=365),
            valid_from=now,
            actor="admin-1",
            now=now,
        )


def sweep(w: World, task: Callable[[SweepContext], list[str]]) -> list[str]:
    """Run ``task`` as the sweep would, at the clock's time."""
    return w.sweep(task)
