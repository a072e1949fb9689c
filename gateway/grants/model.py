"""The grant's states, the one table of moves between them, and its holds.

A grant is ``active`` when issued. It is ``suspended`` while anyone holds a
stop on it (rectification, emergency stop) and ``active`` again when the last
stop is lifted; it ends ``revoked`` (termination: scope lines removed, the
operator's copies destroyed) or ``expired`` (its term ran out: the same
consequences). ``revoked`` and ``expired`` are terminal.

A suspension is a set of *holds*, not a flag: one per provider of the grant's
datasets who stopped it, and one for the administrators (a suspension by an
administrator, or an emergency stop). Each party lifts only its own hold; the
grant is ``active`` only with none (``gateway.grants.service``). The rules
(Chengdu implementation rules art. 33, Chengdu draft art. 34) let the
implementing agency suspend data supply during rectification and restore it
once rectified: a provider's resumption cannot end the administrators' stop,
nor another provider's.

:data:`GRANT` declares the table of moves for ``gateway.store.lifecycle``: every
state change is a ``transition()`` on the ``grants`` row (a compare-and-set on
``state``, audited as ``grant.state``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from gateway.store.lifecycle import Lifecycle
from gateway.store.tables import grants
from sandbox.views.build import DatasetScope


class State(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    EXPIRED = "expired"


TRANSITIONS: dict[State, frozenset[State]] = {
    State.ACTIVE: frozenset({State.SUSPENDED, State.REVOKED, State.EXPIRED}),
    State.SUSPENDED: frozenset({State.ACTIVE, State.REVOKED, State.EXPIRED}),
    State.REVOKED: frozenset(),
    State.EXPIRED: frozenset(),
}
GRANT: Lifecycle[State] = Lifecycle(
    name="grant",
    states=State,
    moves=TRANSITIONS,
    table=grants,
    key="id",
    state="state",
    event="grant.state",
    description=(
        "Issued `active`; `suspended` exactly while a provider or the administrators "
        "hold a stop on it; ended `revoked` or `expired` (scope lines removed, copies "
        "destroyed)."
    ),
    notes={
        (State.ACTIVE, State.SUSPENDED): "first stop placed",
        (State.SUSPENDED, State.ACTIVE): "last stop lifted",
        (State.ACTIVE, State.EXPIRED): "term ended",
        (State.SUSPENDED, State.EXPIRED): "term ended",
    },
)
LIVE = frozenset({State.ACTIVE, State.SUSPENDED})  # a grant that still holds scope lines
ENDED = frozenset({State.REVOKED, State.EXPIRED})  # copies destroyed, lines removed

# What a grant lets its operator do with its columns (never "export": outputs
# leave only through the output checks).
ACTIONS = ("read", "aggregate", "join")


class HolderKind(StrEnum):
    """Who holds a stop. Values are stored: never change them."""

    PROVIDER = "provider"
    ADMIN = "admin"


@dataclass(frozen=True)
class Holder:
    """A party that can stop a grant: one provider (by account name), or the
    administrators as one party (``name`` empty: any administrator lifts it)."""

    kind: HolderKind
    name: str = ""

    def __str__(self) -> str:
        return "the administrators" if self.kind == HolderKind.ADMIN else f"provider {self.name}"


ADMINISTRATORS = Holder(HolderKind.ADMIN)


@dataclass(frozen=True)
class Hold:
    """One party's stop on a grant: why, who placed it, since when."""

    holder: Holder
    reason: str
    placed_by: str
    placed_at: datetime
    rectify_by: datetime | None = None  # rectification deadline (004 art. 33), if one is set


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
    holds: tuple[Hold, ...] = ()

    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(s.dataset for s in self.scopes)

    @property
    def holders(self) -> tuple[Holder, ...]:
        return tuple(h.holder for h in self.holds)
