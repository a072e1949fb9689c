"""A data request's states, the one table of moves, and its review deadlines.

``submitted`` -> ``formal_review_passed`` (administrator) ->
``provider_approved`` (the provider of every requested dataset) ->
``supplied`` (a grant was issued from it). Any review step may end in
``rejected``, always with a reason and its legal basis. ``supplied`` and
``rejected`` are terminal.

:data:`DATA_REQUEST` declares the table for ``gateway.store.lifecycle``: every
state change is a ``transition()`` on the ``data_requests`` row (a
compare-and-set on ``state``, audited as ``request.state``). The providers'
decisions are rows of ``request_votes`` (:class:`Vote`), one per provider per
request, never changed or removed; the request moves when they are counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from gateway.store.lifecycle import Lifecycle
from gateway.store.tables import data_requests
from sandbox.views.build import DatasetScope


class State(StrEnum):
    SUBMITTED = "submitted"
    FORMAL_REVIEW_PASSED = "formal_review_passed"
    PROVIDER_APPROVED = "provider_approved"
    SUPPLIED = "supplied"
    REJECTED = "rejected"


TRANSITIONS: dict[State, frozenset[State]] = {
    State.SUBMITTED: frozenset({State.FORMAL_REVIEW_PASSED, State.REJECTED}),
    State.FORMAL_REVIEW_PASSED: frozenset({State.PROVIDER_APPROVED, State.REJECTED}),
    State.PROVIDER_APPROVED: frozenset({State.SUPPLIED, State.REJECTED}),
    State.SUPPLIED: frozenset(),
    State.REJECTED: frozenset(),
}
DATA_REQUEST: Lifecycle[State] = Lifecycle(
    name="data_request",
    states=State,
    moves=TRANSITIONS,
    table=data_requests,
    key="id",
    state="state",
    event="request.state",
    description=(
        "An operator's request for data: the administrators review its form, the "
        "provider of every requested dataset its substance (one vote each, as rows of "
        "`request_votes`), then a grant supplies it. Any review step may reject it, "
        "with a reason and its legal basis."
    ),
    notes={
        (State.FORMAL_REVIEW_PASSED, State.PROVIDER_APPROVED): "last provider approves",
        (State.PROVIDER_APPROVED, State.SUPPLIED): "grant issued",
    },
)


class Decision(StrEnum):
    """A provider's vote on a request. Values are stored: never change them."""

    APPROVED = "approved"
    REJECTED = "rejected"


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
class Vote:
    """One provider's decision on a request (a row of ``request_votes``)."""

    provider: str
    decision: Decision
    at: datetime


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
    approvals: tuple[str, ...]  # the providers who approved, sorted (from the votes)
    reason: str | None
    legal_basis: str | None
    grant_id: str | None

    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(s.dataset for s in self.scopes)
