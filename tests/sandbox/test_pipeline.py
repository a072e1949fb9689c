"""A job's status: typed, and the strings the gateway stores and compares."""

from __future__ import annotations

import json

from sandbox.judge.types import Decision
from sandbox.pipeline import JobOutcome, Unchecked


def test_a_status_is_a_decision_or_an_unchecked_end() -> None:
    statuses = [*Decision, *Unchecked]
    assert len({str(s) for s in statuses}) == len(statuses)  # no value means two things
    assert {str(s) for s in statuses} == {
        "released", "held", "blocked", "rejected", "failed", "dummy",
    }  # fmt: skip


def test_an_outcome_carries_its_status_as_a_string_too() -> None:
    outcome = JobOutcome("j1", "sql", Unchecked.REJECTED, rejections=("refused",))
    assert outcome.status == "rejected" and outcome.exit_class is None
    assert json.dumps({"status": outcome.status}) == '{"status": "rejected"}'
