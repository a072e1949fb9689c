"""A job under the real backend sees exactly the authorized views under /data."""

from __future__ import annotations

import pytest

from sandbox.run.backends.base import ExitClass
from tests.support.jobs import run_code, stdout_json
from tests.support.views_fixtures import grant, make_world

pytestmark = [pytest.mark.docker]


def test_a_container_sees_exactly_the_authorized_files(backend, tmp_path):
    world = make_world(tmp_path / "world")
    views = world.builder.build(grant(people_columns=("person_id", "age", "income")))
    result = run_code(
        backend,
        tmp_path / "run",
        """
        import json, os
        from sandbox.sdk import catalog, connect
        con = connect()
        people = con.sql("SELECT count(*), count(DISTINCT person_id) FROM people").fetchall()[0]
        cols = [r[0] for r in con.sql("DESCRIBE people").fetchall()]
        print(json.dumps({
            "listing": sorted(os.listdir("/data")),
            "catalog": [v["name"] for v in catalog()["views"]],
            "people": list(people),
            "columns": cols,
        }))
    """,
        data_dir=views.directory,
    )
    assert result.execution.exit_class == ExitClass.SUCCEEDED, result.execution.stderr.data
    seen = stdout_json(result)
    assert seen["listing"] == ["catalog.json", "payments.parquet", "people.parquet"]
    assert seen["catalog"] == ["people", "payments"]
    assert seen["columns"] == ["person_id", "age", "income"]
    active = sum(1 for p in world.people if p["status"] == "active")
    assert seen["people"] == [active, active]
