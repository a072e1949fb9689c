"""A gateway on a movable clock for data request step, extension and overdue tests.

Plain functions: ``make_world(store_url, tmp_path, start)`` yields a :class:`World`
whose app's one clock (``world.clock``) tests move; accounts are ``<role>-1`` for
every role plus ``provider-2`` and ``operator-2``; ``people`` is provider-1's and
``tax`` provider-2's (``tests.support.grants_world.register``). ``world.sweep_overdue()``
runs the overdue task at the clock's time; ``world.at(...)`` sets the clock from a
China Standard Time wall time.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.requests.overdue import act_on_overdue
from gateway.workdays import CST
from tests.support.clocked_world import ClockedWorld, open_world

ASK = {
    "scenario": "elderly care planning",
    "purpose": "plan care homes by district",
    "content": "age of residents",
    "use": "aggregate statistics per district",
    "datasets": [{"dataset": "people", "columns": ["age"]}],
}
BOTH = {
    **ASK,
    "datasets": [
        {"dataset": "people", "columns": ["age"]},
        {"dataset": "tax", "columns": ["age"]},
    ],
}


def cst(*parts: int) -> datetime:
    """A China Standard Time wall time (year, month, day[, hour...])."""
    return datetime(*parts, tzinfo=CST)  # type: ignore[arg-type, misc]


class World(ClockedWorld):
    def at(self, *parts: int) -> None:
        self.clock.now = cst(*parts)

    def ask(self, body: dict[str, Any] = ASK) -> str:
        made = self.post("operator-1", "/v1/requests", body)
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    def request(self, rid: str) -> dict[str, Any]:
        found = self.get("admin-1", f"/v1/requests/{rid}")
        assert found.status_code == 200, found.text
        return dict(found.json())

    def pass_formal(self, rid: str) -> None:
        done = self.post("admin-1", f"/v1/requests/{rid}/formal-review", {"decision": "pass"})
        assert done.status_code == 200, done.text

    def approve(self, rid: str, provider: str = "provider-1") -> None:
        body = {"decision": "approve"}
        done = self.post(provider, f"/v1/requests/{rid}/provider-review", body)
        assert done.status_code == 200, done.text

    def sweep_overdue(self) -> list[str]:
        """The overdue task, as the sweep runs it, at the clock's time."""
        return self.sweep(act_on_overdue)


def make_world(store_url: str, tmp_path: Path, start: datetime) -> Iterator[World]:
    yield from open_world(World, store_url, tmp_path, start)
