"""One sandbox of a job: the plan it runs is checked first, and its job.json says what to do."""

from __future__ import annotations

import json

import pytest

from sandbox.errors import ScreenRejected, SqlRejected
from sandbox.intake.policy import ExposurePolicy, parse_policy
from sandbox.run.steps import Plan, plan_python, plan_sql
from tests.support.engine import ROOT

BY_DISTRICT = "SELECT district_code, count(*) AS n FROM residents GROUP BY 1"


def policies() -> dict[str, ExposurePolicy]:
    text = (ROOT / "policies" / "exposure" / "residents.yaml").read_text()
    return {"residents": parse_policy(text)}


def test_an_sql_product_runs_its_evidence_carrying_rewrite() -> None:
    plan = plan_sql(BY_DISTRICT, policies(), "256MB")
    assert plan.kind == "sql" and plan.code is None
    assert plan.query is not None and plan.output_columns == ("district_code", "n")
    assert plan.datasets == ("residents",)
    job = json.loads(json.dumps(plan.job()))
    assert list(job) == ["kind", "query", "memory_limit", "threads"]
    assert job["kind"] == "sql" and job["query"] == plan.query.sql
    assert job["memory_limit"] == "256MB" and job["threads"] == 1


def test_a_python_job_runs_its_main() -> None:
    plan = plan_python("print('hello')\n")
    assert plan == Plan("python", {"entry": "main.py"}, "print('hello')\n")
    assert plan.job() == {"kind": "python", "entry": "main.py"}


def test_refused_code_has_no_plan() -> None:
    with pytest.raises(SqlRejected):
        plan_sql("SELECT person_id FROM residents", policies(), "256MB")
    with pytest.raises(ScreenRejected):
        plan_python("exec('1')\n")
