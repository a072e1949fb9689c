"""Request and response bodies of the data request routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from gateway.grants.terms import MAX_TERM_DAYS
from gateway.requests.extension_rows import Extension
from gateway.requests.model import MAX_EXTENSION_DAYS, RequestRecord
from gateway.requests.steps import Deadline

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


class DeadlineOut(BaseModel):
    """The current step's deadline on the statutory calendar. ``provisional``: a year it
    counts through is not in the calendar yet (weekdays were counted there); it becomes
    final when the year is loaded, since it is computed from the step's start when read."""

    step: str
    due: datetime  # the end (24:00 China Standard Time) of the last working day, in UTC
    working_days: int  # the step's working days, an approved extension included
    working_days_left: int  # today's included; 0 once overdue
    overdue: bool
    provisional: bool

    @classmethod
    def of(cls, d: Deadline) -> DeadlineOut:
        return cls(
            step=d.step,
            due=d.due,
            working_days=d.days,
            working_days_left=d.left,
            overdue=d.overdue,
            provisional=d.provisional,
        )


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
    deadline: DeadlineOut | None  # when that step is due (working days)
    overdue: bool
    extension_days: int  # working days of provider review added by an approved extension
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
            deadline=DeadlineOut.of(deadline) if deadline else None,
            overdue=deadline.overdue if deadline else False,
            extension_days=r.extension_days,
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


class ExtensionIn(BaseModel):
    """A provider's ask for more working days of provider review (art. 20: at most 10)."""

    model_config = ConfigDict(extra="forbid")

    days: Annotated[int, Field(ge=1, le=MAX_EXTENSION_DAYS)]
    reason: Text


class ExtensionDecisionIn(BaseModel):
    """The city office's decision on an extension, always with its reason."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "refuse"]
    reason: Text


class ExtensionOut(BaseModel):
    id: str
    request_id: str
    provider: str
    days: int
    reason: str
    asked_at: datetime
    decision: str | None  # approved, refused, or None while it waits
    decided_by: str | None
    decision_reason: str | None
    decided_at: datetime | None

    @classmethod
    def of(cls, e: Extension) -> ExtensionOut:
        return cls(
            id=e.id,
            request_id=e.request_id,
            provider=e.provider,
            days=e.days,
            reason=e.reason,
            asked_at=e.asked_at,
            decision=e.decision.value if e.decision else None,
            decided_by=e.decided_by,
            decision_reason=e.decision_reason,
            decided_at=e.decided_at,
        )
