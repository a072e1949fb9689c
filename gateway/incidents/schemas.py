"""Request and response bodies of the incident routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from gateway.incidents.model import IncidentRecord, Kind, Severity

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class IncidentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind
    severity: Severity
    summary: Text
    datasets: Annotated[list[Name], Field(max_length=100)] = []
    grants: Annotated[list[Name], Field(max_length=1000)] = []
    occurred_at: datetime | None = None  # default: when detected
    detected_at: datetime | None = None  # default: now


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Text


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resolution: Text


class ActionOut(BaseModel):
    at: datetime
    by: str
    action: str


class IncidentOut(BaseModel):
    id: str
    kind: str
    severity: str
    summary: str
    datasets: list[str]
    grants: list[str]
    occurred_at: datetime
    detected_at: datetime
    reported_by: str
    reported_at: datetime
    state: str
    resolved_at: datetime | None
    resolution: str | None
    actions: list[ActionOut]

    @classmethod
    def of(cls, i: IncidentRecord) -> IncidentOut:
        return cls(
            id=i.id,
            kind=i.kind.value,
            severity=i.severity.value,
            summary=i.summary,
            datasets=list(i.datasets),
            grants=list(i.grants),
            occurred_at=i.occurred_at,
            detected_at=i.detected_at,
            reported_by=i.reported_by,
            reported_at=i.reported_at,
            state=i.state.value,
            resolved_at=i.resolved_at,
            resolution=i.resolution,
            actions=[ActionOut(at=a.at, by=a.actor, action=a.action) for a in i.actions],
        )
