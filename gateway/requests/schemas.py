"""Request and response bodies of the data request routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from gateway.grants.terms import MAX_TERM_DAYS
from gateway.requests.model import RequestRecord
from gateway.requests.service import Deadline

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Optional = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)] | None
REJECTION = "a rejection must give its reason and its legal basis (both non-empty)"


class ScopeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: Name
    columns: list[Name] = Field(min_length=1)


class RequestIn(BaseModel):
    """What the operator asks for, and why (content, use, scenario, purpose)."""

    model_config = ConfigDict(extra="forbid")

    scenario: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    purpose: Text
    content: Text
    use: Text
    datasets: list[ScopeIn] = Field(min_length=1)


class ScopeOut(BaseModel):
    dataset: str
    columns: list[str]


class RequestOut(BaseModel):
    id: str
    operator: str
    scenario: str
    purpose: str
    content: str
    use: str
    datasets: list[ScopeOut]
    state: str
    created_at: datetime
    step_started_at: datetime
    step: str | None  # the step under way (formal review, provider review, supply)
    deadline: datetime | None  # when that step is due (working days)
    overdue: bool
    approvals: list[str]
    reason: str | None
    legal_basis: str | None
    grant_id: str | None

    @classmethod
    def of(cls, r: RequestRecord, deadline: Deadline | None) -> RequestOut:
        return cls(
            id=r.id,
            operator=r.operator,
            scenario=r.scenario,
            purpose=r.purpose,
            content=r.content,
            use=r.use,
            datasets=[ScopeOut(dataset=s.dataset, columns=list(s.columns)) for s in r.scopes],
            state=r.state.value,
            created_at=r.created_at,
            step_started_at=r.step_started_at,
            step=deadline.step if deadline else None,
            deadline=deadline.due if deadline else None,
            overdue=deadline.overdue if deadline else False,
            approvals=list(r.approvals),
            reason=r.reason,
            legal_basis=r.legal_basis,
            grant_id=r.grant_id,
        )


class _Review(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Optional = None
    legal_basis: Optional = None

    def _check_rejection(self, rejected: bool) -> None:
        if rejected and not (self.reason and self.legal_basis):
            raise ValueError(REJECTION)


class FormalReviewIn(_Review):
    decision: Literal["pass", "reject"]

    @model_validator(mode="after")
    def _basis(self) -> FormalReviewIn:
        self._check_rejection(self.decision == "reject")
        return self


class ProviderReviewIn(_Review):
    decision: Literal["approve", "reject"]

    @model_validator(mode="after")
    def _basis(self) -> ProviderReviewIn:
        self._check_rejection(self.decision == "reject")
        return self


class SupplyIn(BaseModel):
    """The term of the grant that supplies the request: its end as ``valid_until``, or as
    ``days`` from its start (one of them). It starts now (``valid_from``, if given, within
    the gateway's clock skew) and runs at most three years (``gateway.grants.terms``)."""

    model_config = ConfigDict(extra="forbid")

    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    days: Annotated[int, Field(ge=1, le=MAX_TERM_DAYS)] | None = None

    @model_validator(mode="after")
    def _one_end(self) -> SupplyIn:
        if (self.valid_until is None) == (self.days is None):
            raise ValueError("give the term's end as valid_until or as days (one of them)")
        return self
