"""Numbers and identifiers: measures are never joined into an identifier by chance."""

from __future__ import annotations

import pyarrow as pa

from sandbox.judge.fingerprints import build_from_values
from sandbox.judge.rules import Context, Output
from sandbox.judge.rules.leakage import identifier_leakage

MOBILE = "13812345678"
INDEX = build_from_values([MOBILE, "110101199003074258"])


def found(columns: dict[str, list[object]]) -> list[tuple[int | None, str | None]]:
    out = Output("t.csv", "table", "python", b"", {}, table=pa.table(columns))
    return [(f.row, f.column) for f in identifier_leakage(out, Context(fingerprints=INDEX))]


def test_a_count_beside_a_mean_is_not_an_identifier() -> None:
    # "1381" + "2345678.25": the digits run into a mobile number only by chance.
    assert found({"n": [1381, 20], "mean": [2345678.25, 3.5]}) == []


def test_an_identifier_split_over_whole_numbers_is_found() -> None:
    assert found({"a": [138, 1], "b": [12345678, 2]}) == [(0, "a")]
    assert found({"a": [138.0, 1.0], "b": [12345678.0, 2.0]}) == [(0, "a")]


def test_an_identifier_hidden_in_a_fraction_is_found() -> None:
    assert found({"x": [1381234.5678, 1.5]}) == [(0, "x")]
    assert found({"x": [13812345678.0]}) == [(0, "x")]
