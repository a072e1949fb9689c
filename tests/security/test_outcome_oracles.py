"""No outcome oracles in SQL products.

Whether a query is released, and what it releases, may not depend on one
entity's sensitive value beyond what the rules allow (aggregates over
groups of at least k entities that pass dominance; group sizes as revealed
by suppression). Each attack here narrows to one resident by a unique
combination of quasi-identifiers and asks a question about her income; the
answer must not show in the outcome.

The whole trusted path runs in-process on real DuckDB over real Parquet:
``check_sql`` -> ``rewrite`` -> ``run_sql`` (the runner's own code, without
a container) -> ``read_sql_output`` -> ``check_output``. Two worlds differ
only in her income; so do two queries that differ only in a threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sandbox.container.sqlrun import RESULT, run_sql
from sandbox.errors import SqlRejected
from sandbox.intake.policy import ExposurePolicy, parse_policy
from sandbox.judge.outputs.sql import read_sql_output, table_csv
from sandbox.judge.rules import Context, Thresholds, Verdict, check_output, worst
from sandbox.precheck.sql import check_sql
from sandbox.precheck.sql.evidence import rewrite

POLICY = """\
dataset: residents
entity_column: person_id
k: 10
columns:
  person_id: {class: identifier, level: 4, visibility: join_key}
  gender: {class: quasi_identifier, level: 2, visibility: group_key}
  birth_date: {class: quasi_identifier, level: 3, visibility: group_key,
               generalise: {truncate: year}}
  district_code: {class: quasi_identifier, level: 2, visibility: group_key}
  income: {class: sensitive, level: 3, visibility: aggregate_only,
           domain: {min: 0, max: 100000000}}
"""
DISTRICTS = ("D1", "D2", "D3", "D4", "D5")
# She is the only resident born in 1931: the WHERE below singles her out.
HER = "birth_date = DATE '1931-01-01' AND gender = 'F' AND district_code = 'D3'"
LOW, HIGH = 50_000.0, 5_000_000.0  # her income in the two worlds


@dataclass(frozen=True)
class World:
    data: Path
    policies: dict[str, ExposurePolicy]


def _world(root: Path, income: float) -> World:
    rows: dict[str, list[object]] = {c: [] for c in ("person_id", "gender", "birth_date")}
    rows |= {"district_code": [], "income": []}
    import datetime as dt

    for i in range(200):
        rows["person_id"].append(f"{i:032x}")
        rows["gender"].append("F" if i % 2 else "M")
        rows["birth_date"].append(dt.date(1950 + i % 40, 1, 1))
        rows["district_code"].append(DISTRICTS[i % 5])
        rows["income"].append(3000.0 + (i * 37) % 9000)
    rows["person_id"].append("f" * 32)
    rows["gender"].append("F")
    rows["birth_date"].append(dt.date(1931, 1, 1))
    rows["district_code"].append("D3")
    rows["income"].append(income)
    root.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(rows), root / "residents.parquet")
    return World(root, {"residents": parse_policy(POLICY)})


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[float, World]:
    root = tmp_path_factory.mktemp("oracles")
    return {income: _world(root / str(int(income)), income) for income in (LOW, HIGH)}


def outcome(world: World, sql: str, action: str, tmp: Path) -> tuple[Verdict, bytes | None]:
    """The decision on ``sql`` and the bytes it would release (None unless it passes)."""
    checked = check_sql(sql, world.policies)
    query = rewrite(checked, {"residents": "person_id"}, 2)
    job, out = tmp / "job", tmp / "out"
    job.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    description = {"query": query.sql, "memory_limit": "256MB", "threads": 1}
    assert run_sql(job, description, data_dir=world.data, output_dir=out) == 0
    output = read_sql_output((out / RESULT).read_bytes(), query, checked.output_columns)
    thresholds = Thresholds(k=10, small_cell_action=action)  # type: ignore[arg-type]
    released, findings = check_output(output, Context(thresholds=thresholds))
    verdict = worst(findings)
    assert released.table is not None
    return verdict, table_csv(released.table) if verdict == Verdict.PASS else None


ACTIONS = ["suppress", "block"]


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize(
    "template",
    [
        # HAVING keeps her one-person group, or drops it and releases an empty table.
        f"SELECT count(*) AS n FROM residents WHERE {HER} HAVING sum(income) > {{x}}",
        # ... beside a large group, so the table is never empty.
        f"SELECT district_code, count(*) AS n FROM residents WHERE ({HER}) "
        "OR district_code = 'D1' GROUP BY 1 HAVING sum(income) > {x}",
        f"SELECT district_code, count(*) AS n FROM residents WHERE ({HER}) "
        "OR district_code = 'D1' GROUP BY 1 HAVING avg(income) > {x} ORDER BY 1",
        # A large group, HAVING on her part of it only.
        "SELECT district_code, count(*) AS n FROM residents GROUP BY 1 "
        f"HAVING sum(income) FILTER (WHERE {HER}) > {{x}}",
    ],
)
def test_having_threshold_on_one_person_is_no_oracle(
    worlds: dict[float, World], tmp_path: Path, template: str, action: str
) -> None:
    world = worlds[LOW]
    below = outcome(world, template.format(x=int(LOW) - 1000), action, tmp_path / "a")
    above = outcome(world, template.format(x=int(LOW) + 1000), action, tmp_path / "b")
    assert below == above
    assert below[0] == Verdict.FAIL


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize(
    "sql",
    [
        # Top-n: her group is returned only when her income beats D1's total.
        f"SELECT district_code, count(*) AS n FROM residents WHERE ({HER}) "
        "OR district_code = 'D1' GROUP BY 1 ORDER BY sum(income) DESC LIMIT 1",
        f"SELECT district_code, count(*) AS n FROM residents WHERE ({HER}) "
        "OR district_code = 'D1' GROUP BY 1 ORDER BY sum(income) LIMIT 1 OFFSET 1",
        f"SELECT district_code, count(*) AS n FROM residents WHERE ({HER}) "
        "OR district_code = 'D1' GROUP BY 1 QUALIFY rank() OVER (ORDER BY sum(income) DESC) = 1",
        f"SELECT count(*) AS n FROM residents WHERE {HER} HAVING sum(income) > 1000000",
    ],
)
def test_outcome_does_not_depend_on_her_income(
    worlds: dict[float, World], tmp_path: Path, sql: str, action: str
) -> None:
    low = outcome(worlds[LOW], sql, action, tmp_path / "low")
    high = outcome(worlds[HIGH], sql, action, tmp_path / "high")
    assert low == high


def test_empty_result_is_released_only_when_every_group_passes(
    worlds: dict[float, World], tmp_path: Path
) -> None:
    # Every district is large: HAVING may drop them all, and the empty table passes.
    sql = "SELECT district_code, count(*) AS n FROM residents GROUP BY 1 HAVING count(*) > 1000"
    verdict, content = outcome(worlds[HIGH], sql, "block", tmp_path)
    assert verdict == Verdict.PASS and content == b'"district_code","n"\n'
    # Her group alone is formed, and dropped: the empty table is not released.
    sql = f"SELECT count(*) AS n FROM residents WHERE {HER} HAVING count(*) > 1000"
    assert outcome(worlds[HIGH], sql, "suppress", tmp_path / "b")[0] == Verdict.FAIL


def test_kept_rows_are_released_in_the_analysts_order(
    worlds: dict[float, World], tmp_path: Path
) -> None:
    sql = (
        "SELECT district_code, count(*) AS n, sum(income) AS total FROM residents "
        "WHERE district_code <> 'D3' GROUP BY 1 HAVING sum(income) > 0 "
        "ORDER BY total DESC LIMIT 2 OFFSET 1"
    )
    verdict, content = outcome(worlds[HIGH], sql, "block", tmp_path)
    assert verdict == Verdict.PASS and content is not None
    lines = content.decode().splitlines()
    assert lines[0] == '"district_code","n","total"' and len(lines) == 3
    totals = [float(line.split(",")[2]) for line in lines[1:]]
    assert totals == sorted(totals, reverse=True)


@pytest.mark.parametrize("action", ACTIONS)
def test_conditional_count_on_dimensions_meets_k(
    worlds: dict[float, World], tmp_path: Path, action: str
) -> None:
    # A large group each, but the FILTER counts her alone: a subpopulation of one.
    sql = (
        "SELECT district_code, count(*) AS n, count(*) FILTER (WHERE birth_date = "
        "DATE '1931-01-01') AS old FROM residents GROUP BY 1 ORDER BY 1"
    )
    verdict, content = outcome(worlds[LOW], sql, action, tmp_path)
    if action == "block":
        assert verdict == Verdict.FAIL
    else:
        assert content is not None
        assert ",1\n" not in content.decode()  # her count is suppressed
    # A share over halves of every district passes.
    share = (
        "SELECT district_code, avg(CASE WHEN gender = 'F' THEN 1.0 ELSE 0.0 END) AS share, "
        "count(*) AS n FROM residents GROUP BY 1"
    )
    assert outcome(worlds[LOW], share, "block", tmp_path / "share")[0] == Verdict.PASS


def test_filtered_sum_is_judged_on_its_own_contributions(
    worlds: dict[float, World], tmp_path: Path
) -> None:
    sql = (
        "SELECT district_code, sum(income) FILTER (WHERE birth_date < DATE '1940-01-01') AS s "
        "FROM residents GROUP BY 1"
    )
    low = outcome(worlds[LOW], sql, "block", tmp_path / "low")
    assert low[0] == Verdict.FAIL
    assert low == outcome(worlds[HIGH], sql, "block", tmp_path / "high")


@pytest.mark.parametrize(
    "template",
    [
        "SELECT district_code, stddev_pop(CASE WHEN income > {x} THEN income END) AS v "
        "FROM residents GROUP BY 1",
        "SELECT district_code, sum(CASE WHEN income > {x} THEN 1 ELSE 0 END) AS v "
        "FROM residents GROUP BY 1",
        "SELECT district_code, count(*) FILTER (WHERE income > {x}) AS v FROM residents GROUP BY 1",
        "SELECT district_code, sum(if(income > {x}, 1, 0)) AS v FROM residents GROUP BY 1",
        "SELECT district_code, sum(nullif(income, {x})) AS v FROM residents GROUP BY 1",
        "SELECT district_code, sum(greatest(income - {x}, 0)) AS v FROM residents GROUP BY 1",
        "SELECT district_code, sum(floor(income / {x})) AS v FROM residents GROUP BY 1",
        "SELECT district_code, sum(CAST(income / {x} AS INTEGER)) AS v FROM residents GROUP BY 1",
        "SELECT district_code, sum(sign(income - {x})) AS v FROM residents GROUP BY 1",
        # Filters on aggregates no rule judges: of a subquery's groups.
        f"SELECT count(*) AS n FROM (SELECT district_code, sum(income) AS s FROM residents "
        f"WHERE {HER} GROUP BY 1) AS t WHERE s > {{x}}",
        f"SELECT count(*) AS n FROM residents WHERE district_code IN (SELECT district_code "
        f"FROM residents WHERE {HER} GROUP BY 1 HAVING sum(income) > {{x}})",
        f"SELECT count(*) AS n FROM residents WHERE EXISTS (SELECT 1 FROM residents "
        f"WHERE {HER} HAVING sum(income) > {{x}})",
        f"SELECT count(*) AS n FROM residents WHERE (SELECT sum(income) FROM residents "
        f"WHERE {HER}) > {{x}}",
        f"SELECT sum(n) AS n FROM (SELECT district_code, count(*) AS n FROM residents "
        f"WHERE ({HER}) OR district_code = 'D1' GROUP BY 1 ORDER BY sum(income) DESC LIMIT 1) t",
        f"SELECT sum(f) AS n FROM (SELECT district_code, CASE WHEN sum(income) > {{x}} THEN 1 "
        f"ELSE 0 END AS f FROM residents WHERE {HER} GROUP BY 1) t",
    ],
)
def test_conditions_on_sensitive_values_are_refused(
    worlds: dict[float, World], template: str
) -> None:
    policies = worlds[LOW].policies
    for x in (int(LOW) - 1000, int(LOW) + 1000):
        with pytest.raises(SqlRejected):
            check_sql(template.format(x=x), policies)
