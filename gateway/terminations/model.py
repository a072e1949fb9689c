"""A termination's states, the one table of moves between them, and its record.

Chengdu implementation rules (004) art. 24: the implementing agency or a data
provider ends data supply only with a stated basis, reported 10 working days
ahead to the data authority (市数据局) and the city office, who approve it; the
operator is then told, stops, and tells its developers. An operator asking to end
supply applies with the list of the data, 10 working days ahead in writing.
Art. 33: a rectification deadline missed ends the agreement (through the same
process). Chongqing authorized-operation measures (001) art. 22 lists the
grounds on which the agreement may be ended (its own request, a breach, a major
security risk not remedied).

A termination is ``proposed``; an administrator (acting for the data authority)
``approved`` or ``refused`` it; its proposer ``withdrawn`` it before effect; once
approved and its notice period over it is ``effective`` (the grant is revoked in
the same transaction); one whose grant ended otherwise first is ``moot``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from gateway.store.lifecycle import Lifecycle
from gateway.store.tables import terminations


class State(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"
    EFFECTIVE = "effective"
    MOOT = "moot"


class Kind(StrEnum):
    """Who asked for it. Values are stored: never change them."""

    PROPOSAL = "proposal"  # a provider of the grant's datasets, or the administrators
    REQUEST = "request"  # the operator asks to end supply, with the list of its data
    RECTIFICATION = "rectification"  # a rectification deadline passed (004 art. 33)


TRANSITIONS: dict[State, frozenset[State]] = {
    State.PROPOSED: frozenset({State.APPROVED, State.REFUSED, State.WITHDRAWN, State.MOOT}),
    State.APPROVED: frozenset({State.EFFECTIVE, State.WITHDRAWN, State.MOOT}),
    State.REFUSED: frozenset(),
    State.WITHDRAWN: frozenset(),
    State.EFFECTIVE: frozenset(),
    State.MOOT: frozenset(),
}

TERMINATION: Lifecycle[State] = Lifecycle(
    name="termination",
    states=State,
    moves=TRANSITIONS,
    table=terminations,
    key="id",
    state="state",
    event="termination.state",
    description=(
        "Proposed with a basis (or requested by the operator with its list of data); "
        "approved or refused by an administrator; effective, and the grant revoked, once "
        "approved and its notice period of working days is over (004 art. 24)."
    ),
    notes={
        (State.APPROVED, State.EFFECTIVE): "notice period over",
        (State.PROPOSED, State.MOOT): "grant ended otherwise",
        (State.APPROVED, State.MOOT): "grant ended otherwise",
    },
)

# The basis a missed rectification deadline states (Chengdu implementation rules).
RECTIFICATION_BASIS = "成都市公共数据资源授权运营实施细则 第三十三条 (004 art. 33)"
REQUEST_BASIS = "成都市公共数据资源授权运营实施细则 第二十四条第二款 (004 art. 24)"


@dataclass(frozen=True)
class TerminationRecord:
    id: str
    grant_id: str
    kind: Kind
    datasets: tuple[str, ...]
    reason: str
    legal_basis: str
    proposed_by: str
    proposed_at: datetime
    effective_after: datetime  # the end of the notice period: no effect before it
    provisional: bool  # the notice period counts through a year whose calendar is unknown
    state: State
    state_changed_at: datetime
    decided_by: str | None
    decision_reason: str | None
    origin: str | None
