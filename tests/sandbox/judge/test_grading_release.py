"""Checking time: k and automatic release follow the highest security level an output touches.

001 art. 32-33, 004 art. 26 (分类分级 protection), through the grading table's defaults:
important data needs twice k and a reviewer, core data three times k and a reviewer;
level-1 data keeps the policy's own rules. Jobs run through the real pipeline (static
checks, evidence rewrite, checker process, rules, ledger), with SQL run on the host.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow.csv as pacsv
import pytest

from sandbox.intake.policy import default_grading
from sandbox.judge.bounded import BoundedPool
from sandbox.judge.rules import Finding
from sandbox.judge.types import Decision
from sandbox.pipeline import JobOutcome
from sandbox.sdk import publish_query
from tests.support.grading_world import K, World, make_world


@pytest.fixture(scope="module")
def checkers() -> Iterator[BoundedPool]:
    pool = BoundedPool(size=1)
    yield pool
    pool.close()


@pytest.fixture
def world(tmp_path: Path, checkers: BoundedPool) -> World:
    # One world per test: the differencing ledger remembers every release.
    return make_world(tmp_path, checkers)


def _sql(world: World, sql: str, job_id: str) -> JobOutcome:
    return world.pipeline.run(world.grant(), "sql", sql, job_id)


def _findings(outcome: JobOutcome, rule: str) -> list[Finding]:
    assert outcome.report is not None, outcome
    return [f for f in outcome.report.all_findings() if f.rule == rule]


def _released_rows(outcome: JobOutcome) -> dict[str, object]:
    assert outcome.report is not None
    (checked,) = outcome.report.outputs
    rows = pacsv.read_csv(io.BytesIO(checked.content)).to_pylist()
    return {r["g"]: r["total"] for r in rows}


def _by_group(column: str) -> str:
    return f"SELECT g, sum({column}) AS total FROM levels GROUP BY g ORDER BY g"


def test_level_one_cells_of_k_to_2k_entities_are_released(world: World) -> None:
    outcome = _sql(world, _by_group("amount_l1"), "l1-groups")
    assert outcome.status == Decision.RELEASED, outcome.report and outcome.report.to_dict()
    assert _released_rows(outcome) == {"a": 1500, "b": 3500}


def test_important_data_needs_twice_k_and_is_held_for_a_reviewer(world: World) -> None:
    outcome = _sql(world, _by_group("amount_imp"), "imp-groups")
    # Group a (15 entities, between k and 2k) is suppressed; b (35) is kept.
    assert _released_rows(outcome) == {"a": None, "b": 3500}
    (suppressed,) = _findings(outcome, "suppressed")
    assert f"fewer than {2 * K} entities" in suppressed.message
    # And never released without a reviewer, the finding citing the article.
    assert outcome.status == Decision.HELD
    basis = default_grading().grade("important").basis
    held = _findings(outcome, "auto_release")
    assert [f.message for f in held] == [
        "the output derives from level-important data, which only a security reviewer "
        f"may release: {basis}"
    ]
    assert "001 art. 32-33" in basis and "004 art." in basis


def test_core_data_needs_three_times_k(world: World) -> None:
    outcome = _sql(world, _by_group("amount_core"), "core-groups")
    assert outcome.status == Decision.HELD
    assert _released_rows(outcome) == {"a": None, "b": sum(range(16, 51))}
    (suppressed,) = _findings(outcome, "suppressed")
    assert f"fewer than {3 * K} entities" in suppressed.message
    (held,) = _findings(outcome, "auto_release")
    assert "level-core" in held.message


@pytest.mark.parametrize(
    ("column", "decision"),
    [
        ("amount_l1", Decision.RELEASED),
        ("amount_imp", Decision.HELD),
        ("amount_core", Decision.HELD),
    ],
)
def test_the_same_passing_output_is_released_only_for_level_one(
    world: World, column: str, decision: Decision
) -> None:
    # One cell of all 50 entities: every k passes, only the level decides.
    outcome = _sql(world, f"SELECT sum({column}) AS total FROM levels", f"total-{column}")
    assert outcome.status == decision
    assert not _findings(outcome, "suppressed") and not _findings(outcome, "min_aggregation")
    assert bool(_findings(outcome, "auto_release")) == (decision == Decision.HELD)


def test_level_one_columns_of_a_dataset_holding_important_ones_keep_their_rules(
    world: World,
) -> None:
    # The level comes from the columns the query references, not from the dataset.
    sql = "SELECT g, count(*) AS total FROM levels GROUP BY g ORDER BY g"
    outcome = _sql(world, sql, "count-only")
    assert outcome.status == Decision.RELEASED
    assert _released_rows(outcome) == {"a": 15, "b": 35}


@pytest.mark.parametrize(
    ("column", "decision"), [("amount_l1", Decision.RELEASED), ("amount_imp", Decision.HELD)]
)
def test_a_python_jobs_published_query_is_graded_like_an_sql_product(
    world: World, column: str, decision: Decision
) -> None:
    with tempfile.TemporaryDirectory() as out:
        publish_query("totals.csv", _by_group(column), output_dir=out)
        world.outputs.clear()
        world.outputs.update({p.name: p.read_bytes() for p in Path(out).iterdir()})
    outcome = world.pipeline.run(world.grant(), "python", "print('spec')\n", f"py-{column}")
    assert outcome.status == decision, outcome.report and outcome.report.to_dict()
    suppressed = _findings(outcome, "suppressed")
    assert bool(suppressed) == (column == "amount_imp")


@pytest.mark.parametrize(
    ("column", "decision"), [("amount_l1", Decision.RELEASED), ("amount_imp", Decision.BLOCKED)]
)
def test_the_differencing_ledger_uses_the_graded_k(
    world: World, column: str, decision: Decision
) -> None:
    # Groups a (15) and b (35) released first; the total (50) differs from b by 15
    # entities: enough for level-1 data (k = 10), not for important data (2k = 20).
    assert _sql(world, _by_group("amount_l1"), "groups").status == Decision.RELEASED
    outcome = _sql(world, f"SELECT sum({column}) AS total FROM levels", f"total-{column}")
    assert outcome.status == decision
    assert bool(_findings(outcome, "differencing")) == (decision == Decision.BLOCKED)
    assert world.pipeline.ledger_k(world.grant(), outcome) == {
        "levels": K if column == "amount_l1" else 2 * K
    }
