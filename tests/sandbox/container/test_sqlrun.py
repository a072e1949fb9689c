"""SQL products in the container: our query runs with DuckDB locked down.

The text an SQL job runs is our checked, rewritten query; these tests hand
the container's SQL runner queries the static checker would never pass and
show DuckDB itself refuses them inside the sandbox (external access off,
configuration locked, explicit memory and thread limits), on both runtimes.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sandbox.precheck.sql import check_sql
from sandbox.precheck.sql.evidence import rewrite
from sandbox.run.backends.base import ExitClass, Limits, RunResult, RunSpec, execute
from tests.support.jobs import open_up
from tests.support.views_fixtures import grant, make_world

pytestmark = [pytest.mark.docker]


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    world = make_world(tmp_path_factory.mktemp("sqlrun"))
    built = world.builder.build(grant())
    open_up(built.directory.parent)
    policies = {n: world.policies.get(n).policy for n in ("people", "payments")}
    return built, policies


def run_sql(backend, tmp_path: Path, data_dir: Path, query: str | None, **extra) -> RunResult:  # type: ignore[no-untyped-def]
    job = tmp_path / "job"
    job.mkdir()
    body = {"kind": "sql", "query": query, "memory_limit": "256MB", "threads": 1, **extra}
    (job / "job.json").write_text(json.dumps(body))
    open_up(tmp_path)
    spec = RunSpec(
        job_id=f"sql-{tmp_path.name[-40:]}".replace("_", "-"),
        job_dir=job,
        data_dir=data_dir,
        limits=Limits(wall_seconds=60, memory_bytes=512 * 1024 * 1024),
    )
    return execute(backend, spec, tmp_path / "out")


def test_the_rewritten_query_runs_and_writes_its_result(backend, tmp_path, views) -> None:  # type: ignore[no-untyped-def]
    built, policies = views
    checked = check_sql(
        "SELECT age, count(*) AS n, sum(income) AS s FROM people GROUP BY 1", policies
    )
    query = rewrite(checked, {n: p.entity_column for n, p in policies.items()}, 2)
    result = run_sql(backend, tmp_path, built.directory, query.sql)
    assert result.execution.exit_class == ExitClass.SUCCEEDED, result.execution.stderr.data
    (file,) = result.collection.files
    assert file.name == "result.parquet"
    table = pq.read_table(io.BytesIO(file.path.read_bytes()))
    assert table.column_names[:3] == ["age", "n", "s"]
    assert query.entity_columns["people"] in table.column_names


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/proc/self/environ')",
        "SELECT * FROM read_parquet('/tmp/../etc/hostname')",
        "COPY (SELECT 1) TO '/output/x.csv'",
        "SET enable_external_access = true",
        "SET memory_limit = '100GB'",
        "ATTACH '/tmp/x.duckdb' AS x",
        "INSTALL httpfs",
    ],
)
def test_duckdb_is_locked_in_the_container(backend, tmp_path, views, query: str) -> None:  # type: ignore[no-untyped-def]
    built, _ = views
    result = run_sql(backend, tmp_path, built.directory, query)
    assert result.execution.exit_class == ExitClass.FAILED, result.execution.stdout.data
    assert result.execution.exit_code == 1
    assert b"the query failed" in result.execution.stderr.data
    assert [f.name for f in result.collection.files] in ([], ["result.parquet"])
    if result.collection.files:
        assert pq.read_table(result.collection.files[0].path).num_rows == 0


def test_a_job_description_without_a_query_is_refused(backend, tmp_path, views) -> None:  # type: ignore[no-untyped-def]
    built, _ = views
    result = run_sql(backend, tmp_path, built.directory, None)
    assert result.execution.exit_code == 65
