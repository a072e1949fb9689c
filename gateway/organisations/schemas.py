"""Request and response bodies of ``/v1/organisations``."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from gateway.organisations.service import Kind, Organisation


class OrganisationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=2, max_length=64, description="lower-case id, e.g. acme-ops")
    name: str = Field(min_length=1, max_length=200)
    kind: Kind


class OrganisationOut(BaseModel):
    id: str
    name: str
    kind: Kind
    created_by: str
    created_at: datetime
    members: list[str]

    @classmethod
    def of(cls, o: Organisation) -> OrganisationOut:
        return cls(
            id=o.id,
            name=o.name,
            kind=o.kind,
            created_by=o.created_by,
            created_at=o.created_at,
            members=list(o.members),
        )


class MembershipOut(BaseModel):
    account: str
    organisation: str | None
    previous: str | None
