"""A data request's states, the one table of moves, and its review deadlines.

``submitted`` -> ``formal_review_passed`` (administrator) ->
``provider_approved`` (the provider of every requested dataset) ->
``supplied`` (a grant was issued from it). Any review step may end in
``rejected``, always with a reason and its legal basis. ``supplied`` and
``rejected`` are terminal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sandbox.views import DatasetScope


class State(StrEnum):
    SUBMITTED = "submitted"
    FORMAL_REVIEW_PASSED = "formal_review_passed"
    PROVIDER_APPROVED = "provider_approved"
    SUPPLIED = "supplied"
    REJECTED = "rejected"


TRANSITIONS: dict[State, set[State]] = {
    State.SUBMITTED: {State.FORMAL_REVIEW_PASSED, State.REJECTED},
    State.FORMAL_REVIEW_PASSED: {State.PROVIDER_APPROVED, State.REJECTED},
    State.PROVIDER_APPROVED: {State.SUPPLIED, State.REJECTED},
    State.SUPPLIED: set(),
    State.REJECTED: set(),
}

# Working days each step may take, counted from when the step began: formal
# review 5, provider review 10, supply 20. A deployment may change them with
# ``app.state.request_deadline_days`` (a dict of State -> days).
DEADLINE_DAYS: dict[State, int] = {
    State.SUBMITTED: 5,
    State.FORMAL_REVIEW_PASSED: 10,
    State.PROVIDER_APPROVED: 20,
}
STEP = {
    State.SUBMITTED: "formal review",
    State.FORMAL_REVIEW_PASSED: "provider review",
    State.PROVIDER_APPROVED: "supply",
}


@dataclass(frozen=True)
class RequestRecord:
    id: str
    operator: str
    scenario: str
    purpose: str
    content: str
    use: str
    scopes: tuple[DatasetScope, ...]
    state: State
    created_at: datetime
    step_started_at: datetime
    approvals: tuple[str, ...]
    reason: str | None
    legal_basis: str | None
    grant_id: str | None

    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(s.dataset for s in self.scopes)
