"""Request and response bodies of the grant routes. The pseudonym key is never in them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from gateway.grants.model import GrantRecord, Hold

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class ScopeOut(BaseModel):
    dataset: str
    columns: list[str]


class HoldOut(BaseModel):
    """One party's stop on the grant: only that party lifts it."""

    holder_kind: str  # "admin" (the administrators, as one party) or "provider"
    holder: str  # the provider's account name; "" for the administrators
    held_by: str  # as people read it: "the administrators", "provider p-1"
    reason: str
    placed_by: str
    placed_at: datetime
    rectify_by: datetime | None = None  # rectification deadline (004 art. 33), if set

    @classmethod
    def of(cls, h: Hold) -> HoldOut:
        return cls(
            holder_kind=h.holder.kind.value,
            holder=h.holder.name,
            held_by=str(h.holder),
            reason=h.reason,
            placed_by=h.placed_by,
            placed_at=h.placed_at,
            rectify_by=h.rectify_by,
        )


class GrantOut(BaseModel):
    id: str
    operator: str
    scenario: str
    purpose: str
    datasets: list[ScopeOut]
    state: str
    valid_from: datetime
    valid_until: datetime
    in_term: bool  # now within [valid_from, valid_until)
    key_id: str
    request_id: str | None
    created_by: str
    created_at: datetime
    state_changed_at: datetime
    state_reason: str
    holds: list[HoldOut]  # who holds a stop on it (suspended exactly while one is held)

    @classmethod
    def of(cls, g: GrantRecord, now: datetime | None = None) -> GrantOut:
        now = now or datetime.now(UTC)
        return cls(
            id=g.id,
            operator=g.operator,
            scenario=g.scenario,
            purpose=g.purpose,
            datasets=[ScopeOut(dataset=s.dataset, columns=list(s.columns)) for s in g.scopes],
            state=g.state.value,
            valid_from=g.valid_from,
            valid_until=g.valid_until,
            in_term=g.valid_from <= now < g.valid_until,
            key_id=g.key_id,
            request_id=g.request_id,
            created_by=g.created_by,
            created_at=g.created_at,
            state_changed_at=g.state_changed_at,
            state_reason=g.state_reason,
            holds=[HoldOut.of(h) for h in g.holds],
        )


class StateChangeIn(BaseModel):
    """Why the caller stops the grant, lifts its stop, or revokes it (audited)."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason


class StopIn(StateChangeIn):
    """A stop, with a rectification deadline in working days if one is set (004 art. 33:
    the grant's termination is proposed when it passes with the stop still placed)."""

    rectify_days: int | None = Field(default=None, ge=1, le=250)


class EmergencyStopIn(StopIn):
    """An emergency stop; ``incident`` names the open incident it belongs to (none: one
    is recorded)."""

    incident: str | None = Field(default=None, min_length=1, max_length=32)


class EmergencyStopOut(BaseModel):
    dataset: str
    suspended: list[str]  # the live grants the administrators' stop now holds
    already_held: list[str]  # those it held before (left as they were)
    incident: str | None = None  # the incident the stop is recorded on
