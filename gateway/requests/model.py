"""A data request's states, the one table of moves, and its steps' deadlines.

``submitted`` -> ``formal_review_passed`` (administrator, 5 working days) ->
``provider_approved`` (the provider of every requested dataset, 10 working
days, extendable once by at most 10) -> ``data_provided`` (a provider put the
data on the city platform, 20 working days) -> ``supplied`` (the city office,
an administrator, issued the grant, 10 working days): Chengdu rules 004 art.
20. ``provider_approved`` -> ``supplied`` stays allowed (provided and
delivered at once). Any review step may end in ``rejected``, always with a
reason and its legal basis. ``supplied`` and ``rejected`` are terminal.

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
    DATA_PROVIDED = "data_provided"
    SUPPLIED = "supplied"
    REJECTED = "rejected"


TRANSITIONS: dict[State, frozenset[State]] = {
    State.SUBMITTED: frozenset({State.FORMAL_REVIEW_PASSED, State.REJECTED}),
    State.FORMAL_REVIEW_PASSED: frozenset({State.PROVIDER_APPROVED, State.REJECTED}),
    State.PROVIDER_APPROVED: frozenset({State.DATA_PROVIDED, State.SUPPLIED, State.REJECTED}),
    State.DATA_PROVIDED: frozenset({State.SUPPLIED}),
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
        "`request_votes`), a provider puts the data on the city platform, then the city "
        "office supplies it with a grant. Any review step may reject it, with a reason "
        "and its legal basis."
    ),
    notes={
        (State.FORMAL_REVIEW_PASSED, State.PROVIDER_APPROVED): "last provider approves",
        (State.PROVIDER_APPROVED, State.DATA_PROVIDED): "provider supplies the platform",
        (State.PROVIDER_APPROVED, State.SUPPLIED): "provided and delivered at once",
        (State.DATA_PROVIDED, State.SUPPLIED): "city office delivers: grant issued",
    },
)


class Decision(StrEnum):
    """A provider's vote on a request. Values are stored: never change them."""

    APPROVED = "approved"
    REJECTED = "rejected"


# Working days each step may take, counted on the statutory calendar
# (gateway.workdays) from the day the step began (art. 20): formal review 5,
# provider review 10 (plus an approved extension), supply to the city platform
# 20, delivery to the operation platform 10.
DEADLINE_DAYS: dict[State, int] = {
    State.SUBMITTED: 5,
    State.FORMAL_REVIEW_PASSED: 10,
    State.PROVIDER_APPROVED: 20,
    State.DATA_PROVIDED: 10,
}
STEP = {
    State.SUBMITTED: "formal review",
    State.FORMAL_REVIEW_PASSED: "provider review",
    State.PROVIDER_APPROVED: "supply",
    State.DATA_PROVIDED: "delivery",
}
MAX_EXTENSION_DAYS = 10  # art. 20: provider review extended once, by at most 10 working days


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
    extension_days: int = 0  # working days of provider review added by an approved extension

    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(s.dataset for s in self.scopes)
