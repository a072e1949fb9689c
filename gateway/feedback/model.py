"""A data-quality issue's states, the one table of moves between them, and its records.

An issue is ``open`` when filed. Each answer of the dataset's provider moves it
(``gateway.store.lifecycle.transition``, audited as ``feedback.state``): to
``answered`` (a reply that decides nothing), ``will_correct`` (the provider
will correct the data), ``resolved`` or ``not_an_issue``. ``will_correct``
ends ``resolved``; ``resolved`` and ``not_an_issue`` are terminal (a dispute
goes to the data authority, 001 art. 30, outside the platform). Answers are
rows of ``feedback_answers``, never changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from gateway.store.lifecycle import Lifecycle
from gateway.store.tables import feedback_issues


class State(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"
    WILL_CORRECT = "will_correct"
    RESOLVED = "resolved"
    NOT_AN_ISSUE = "not_an_issue"


TRANSITIONS: dict[State, frozenset[State]] = {
    State.OPEN: frozenset({State.ANSWERED, State.WILL_CORRECT, State.RESOLVED, State.NOT_AN_ISSUE}),
    State.ANSWERED: frozenset(
        {State.ANSWERED, State.WILL_CORRECT, State.RESOLVED, State.NOT_AN_ISSUE}
    ),
    State.WILL_CORRECT: frozenset({State.WILL_CORRECT, State.RESOLVED}),
    State.RESOLVED: frozenset(),
    State.NOT_AN_ISSUE: frozenset(),
}
# What a provider may mark an issue with an answer (else: answered, or as it was).
MARKS = frozenset({State.WILL_CORRECT, State.RESOLVED, State.NOT_AN_ISSUE})

FEEDBACK_ISSUE: Lifecycle[State] = Lifecycle(
    name="feedback_issue",
    states=State,
    moves=TRANSITIONS,
    table=feedback_issues,
    key="id",
    state="state",
    event="feedback.state",
    description=(
        "A data-quality issue an operator filed on a dataset: each answer of the "
        "dataset's provider moves it; it ends `resolved` or `not_an_issue`."
    ),
)


@dataclass(frozen=True)
class Answer:
    id: int
    provider: str
    text: str
    disposition: State
    at: datetime


@dataclass(frozen=True)
class Issue:
    id: str
    dataset: str
    operator: str
    title: str
    description: str
    columns: tuple[str, ...]
    state: State
    filed_at: datetime
    state_changed_at: datetime
    answers: tuple[Answer, ...] = ()
