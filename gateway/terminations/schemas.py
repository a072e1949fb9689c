"""Request and response bodies of the termination routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from gateway.terminations.model import TerminationRecord
from gateway.workdays import Calendar

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class ProposeIn(BaseModel):
    """A provider's or the administrators' proposal: why, and on what legal basis."""

    model_config = ConfigDict(extra="forbid")

    reason: Text
    legal_basis: Text


class RequestIn(BaseModel):
    """The operator's request to end supply: the list of its data, and why."""

    model_config = ConfigDict(extra="forbid")

    datasets: Annotated[list[Name], Field(min_length=1, max_length=100)]
    reason: Text


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text


class TerminationOut(BaseModel):
    id: str
    grant_id: str
    kind: str
    datasets: list[str]
    reason: str
    legal_basis: str
    proposed_by: str
    proposed_at: datetime
    effective_after: datetime  # no effect before: the notice period's end
    provisional: bool  # counted through a year whose holidays are not known yet
    working_days_left: int  # of the notice period (0: over)
    state: str
    state_changed_at: datetime
    decided_by: str | None
    decision_reason: str | None

    @classmethod
    def of(cls, t: TerminationRecord, calendar: Calendar, now: datetime) -> TerminationOut:
        return cls(
            id=t.id,
            grant_id=t.grant_id,
            kind=t.kind.value,
            datasets=list(t.datasets),
            reason=t.reason,
            legal_basis=t.legal_basis,
            proposed_by=t.proposed_by,
            proposed_at=t.proposed_at,
            effective_after=t.effective_after,
            provisional=t.provisional,
            working_days_left=calendar.working_days_left(t.effective_after, now),
            state=t.state.value,
            state_changed_at=t.state_changed_at,
            decided_by=t.decided_by,
            decision_reason=t.decision_reason,
        )
