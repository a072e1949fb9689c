"""A small dataset with one column per security level, and a pipeline over it (no Docker).

Fifty entities in two groups: ``a`` holds 15 (between k = 10 and 2k = 20), ``b`` holds
35 (between 3k = 30 and 4k). Three measures with the same values and different levels:
``amount_l1`` (level 1), ``amount_imp`` (important) and ``amount_core`` (core), so the
same query on each shows what the grading table changes. The pipeline runs SQL on the
host (``tests.support.hostbackend``): the trusted side is what these tests examine.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sandbox.intake.policy import PolicyStore
from sandbox.intake.registry import Registry
from sandbox.judge.bounded import BoundedPool
from sandbox.judge.fingerprints import FingerprintStore
from sandbox.judge.ledger import Ledger
from sandbox.judge.ledger_keys import EntityMaps, ledger_secret
from sandbox.pipeline import Pipeline
from sandbox.views.build import DatasetScope, Grant, ViewBuilder
from sandbox.views.dummy import DummyBuilder
from tests.support.hostbackend import HostBackend

GROUP_SIZES = {"a": 15, "b": 35}
K = 10

POLICY = """\
dataset: {name}
entity_column: pid
k: 10
small_cell_action: suppress
auto_release: sql_only
columns:
  pid: {{class: identifier, level: 4, visibility: join_key, domain: {{format: uuid}}}}
  g: {{class: attribute, level: 1, visibility: group_key, domain: {{categories: [a, b]}}}}
  amount_l1: {{class: sensitive, level: 1, visibility: aggregate_only}}
  amount_imp: {{class: sensitive, level: important, visibility: aggregate_only}}
  amount_core: {{class: sensitive, level: core, visibility: aggregate_only,
                domain: {{min: 1, max: 60, integer: true}}}}
"""
COLUMNS = ("pid", "g", "amount_l1", "amount_imp", "amount_core")


def table() -> pa.Table:
    """One row per entity; every amount equal, so no cell is dominated."""
    groups = [g for g, n in GROUP_SIZES.items() for _ in range(n)]
    amounts = [100] * len(groups)
    return pa.table(
        {
            "pid": [f"p{i:03d}" for i in range(len(groups))],
            "g": groups,
            "amount_l1": amounts,
            "amount_imp": amounts,
            # Distinct values 1..50, inside the declared domain [1, 60].
            "amount_core": list(range(1, len(groups) + 1)),
        }
    )


def parquet_bytes() -> bytes:
    sink = io.BytesIO()
    pq.write_table(table(), sink)
    return sink.getvalue()


@dataclass
class World:
    root: Path
    registry: Registry
    policies: PolicyStore
    views: ViewBuilder
    dummy: DummyBuilder
    pipeline: Pipeline
    checkers: BoundedPool
    outputs: dict[str, bytes]  # what the next Python job leaves in /output

    def grant(self, grant_id: str = "g-grading") -> Grant:
        return Grant(
            grant_id=grant_id,
            operator="op-1",
            scenario="grading",
            scopes=(DatasetScope("levels", COLUMNS),),
            key=grant_id.encode().ljust(32, b"k"),
            key_id=f"{grant_id}-key",
        )


def make_world(root: Path, checkers: BoundedPool) -> World:
    """Register the dataset, apply its policy, and build a host-run pipeline.

    ``checkers``: the checker processes (one pool shared by a module's tests: starting
    a checker costs seconds).
    """
    src = root / "src"
    src.mkdir(parents=True)
    (src / "levels.parquet").write_bytes(parquet_bytes())
    data = root / "data"
    registry = Registry(data)
    policies = PolicyStore(data)
    version = registry.register(
        src / "levels.parquet", name="levels", entity_column="pid", provider="bureau"
    )
    policies.apply(
        POLICY.format(name="levels"),
        {c.name: c.type for c in version.columns},
        dataset="levels",
        author="t",
    )
    cache = root / "cache"
    views = ViewBuilder(registry, policies, cache)
    dummy = DummyBuilder(views, cache)
    outputs: dict[str, bytes] = {}
    python_outputs: Callable[[Path], dict[str, bytes]] = lambda _job_dir: dict(outputs)  # noqa: E731
    pipeline = Pipeline(
        views=views,
        dummy=dummy,
        backend=HostBackend(python_outputs),
        ledger=Ledger(data / "ledger.sqlite"),
        fingerprints=FingerprintStore(data),
        entity_maps=EntityMaps(cache, ledger_secret(data)),
        work_dir=root / "work",
        checkers=checkers,
    )
    return World(root, registry, policies, views, dummy, pipeline, checkers, outputs)
