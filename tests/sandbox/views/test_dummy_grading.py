"""Dummy views: a core column's dummy values are synthetic, never a real value (004 art. 19).

The real ``amount_core`` holds 1..50 and its declared domain is [1, 60]: values drawn
from the domain would mostly equal real ones, so the builder must replace every clash.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from sandbox.judge.bounded import BoundedPool
from tests.support.grading_world import make_world, table


def test_core_dummy_values_never_equal_real_values(tmp_path: Path) -> None:
    pool = BoundedPool(size=1)
    try:
        world = make_world(tmp_path, pool)
        built = world.dummy.build(world.grant(), rows=1000, seed=7)
    finally:
        pool.close()
    (view,) = built.views
    dummy = pq.read_table(view.path)
    real = set(table().column("amount_core").to_pylist())
    values = [v for v in dummy.column("amount_core").to_pylist() if v is not None]
    assert values, "some dummy values lie outside the real ones (51..60)"
    assert not set(values) & real
    # A level-1 column keeps its declared domain.
    assert set(dummy.column("g").to_pylist()) <= {"a", "b"}
