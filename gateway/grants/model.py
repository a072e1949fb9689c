"""The grant's states and the one table of moves between them.

A grant is ``active`` when issued. It can be ``suspended`` (rectification,
emergency stop) and resumed; it ends ``revoked`` (termination: scope lines
removed, the operator's copies destroyed) or ``expired`` (its term ran out:
the same consequences). ``revoked`` and ``expired`` are terminal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sandbox.views import DatasetScope


class State(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    EXPIRED = "expired"


TRANSITIONS: dict[State, set[State]] = {
    State.ACTIVE: {State.SUSPENDED, State.REVOKED, State.EXPIRED},
    State.SUSPENDED: {State.ACTIVE, State.REVOKED, State.EXPIRED},
    State.REVOKED: set(),
    State.EXPIRED: set(),
}
LIVE = frozenset({State.ACTIVE, State.SUSPENDED})  # a grant that still holds scope lines
ENDED = frozenset({State.REVOKED, State.EXPIRED})  # copies destroyed, lines removed

# What a grant lets its operator do with its columns (never "export": outputs
# leave only through the output checks).
ACTIONS = ("read", "aggregate", "join")

# The longest term a grant may run: three years (1096 days covers a leap day).
# A deployment may lower it with ``app.state.grant_max_days``.
MAX_GRANT_DAYS = 1096


@dataclass(frozen=True)
class GrantRecord:
    """A stored grant, without its pseudonym key (which never leaves the service)."""

    id: str
    operator: str
    scenario: str
    purpose: str
    scopes: tuple[DatasetScope, ...]
    state: State
    valid_from: datetime
    valid_until: datetime
    key_id: str
    request_id: str | None
    created_by: str
    created_at: datetime
    state_changed_at: datetime
    state_reason: str

    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(s.dataset for s in self.scopes)
