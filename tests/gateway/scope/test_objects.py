"""Scope objects and lines (gateway.scope.objects): their two shapes, and the rule
every line obeys."""

from __future__ import annotations

import pytest

from gateway.scope.objects import column_object, dataset_object, parse_object, rule_problem

AGE = "dataset:residents/column:age"
RESIDENTS = "dataset:residents"


def test_objects_round_trip() -> None:
    assert dataset_object("residents") == RESIDENTS
    assert column_object("residents", "age") == AGE
    assert parse_object(AGE) == ("residents", "age")
    assert parse_object(RESIDENTS) == ("residents", None)
    assert parse_object("dataset:tax_payments/column:月 收入 (元)") == (
        "tax_payments",
        "月 收入 (元)",
    )
    with pytest.raises(ValueError, match="dataset name"):
        parse_object("dataset:Residents")


def test_patterns_are_for_lines_only() -> None:
    assert rule_problem(("op-a", "G-1", "*", "read", "deny")) is None
    assert rule_problem(("op-a", "G-1", "*", "read", "allow")) is not None
    assert rule_problem(("op-a", "G-1", "dataset:residents/column:*", "read", "allow")) is None
    with pytest.raises(ValueError):
        parse_object("dataset:residents/column:*")
