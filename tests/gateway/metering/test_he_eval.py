"""Each encrypted call that reaches evaluation keeps its evaluation time (``he_calls.eval_ms``),
and metering totals the calls and their time for the product's operator and product."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.store.tables import he_calls
from sandbox.he.client import VerificationKeys
from tests.support.he_products import ask, band, ready_product
from tests.support.he_world import World, code, make_world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path / "var", he_evaluator="process")  # in process: no container
    with w.client:
        yield w
    w.app.state.engine.dispose()


def test_a_call_keeps_its_evaluation_time_and_metering_counts_it(world: World) -> None:
    w = world
    keys = VerificationKeys.make()
    product, context = ready_product(w, keys)
    for i in (5, 77):
        answered = ask(w, keys, product, context, code(i), band(i))
        assert answered.status_code == 200, answered.text
    with w.app.state.engine.connect() as conn:
        kept = conn.execute(sa.select(he_calls.c.outcome, he_calls.c.eval_ms)).all()
    assert [o for o, _ in kept] == ["answered", "answered"]
    assert all(ms is not None and ms > 0 for _, ms in kept)
    year = str(datetime.now(UTC).year)  # calls are stamped with the time they were made
    days = f"{year}-01-01..{int(year) + 1}-12-31"  # either side of a New Year in CST
    body = w.client.get(
        "/v1/metering", headers=w.h("admin-1"), params={"period": days, "by": "operator"}
    ).json()
    (row,) = body["rows"]
    assert row["key"] == product["operator"]
    assert row["he_calls"] == 2
    assert row["he_eval_ms"] == pytest.approx(sum(ms for _, ms in kept), abs=1e-3)
