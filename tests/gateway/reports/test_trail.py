"""The reports' reading of the audit log: only the event types they count."""

from __future__ import annotations

import pytest

from gateway.periods import Period
from gateway.reports.trail import TYPES, Trail


def test_asking_the_trail_for_a_type_it_never_read_is_an_error() -> None:
    trail = Trail(Period.parse("2025"), events=(), jobs={})
    assert list(trail.of_type("job.state")) == []
    assert "scope.decision" not in TYPES  # the bulk of a year's log is never read
    with pytest.raises(ValueError, match=r"scope\.decision"):
        list(trail.of_type("scope.decision"))
