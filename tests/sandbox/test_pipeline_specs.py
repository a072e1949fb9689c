"""Python jobs release only what the trusted side computed, from specifications made
on dummy data; everything else they write waits for a reviewer.

Real containers (runc here; the corpora run gVisor) over a small synthetic city.
"""

from __future__ import annotations

import csv
import io
import json
import textwrap
from collections.abc import Iterator

import duckdb
import pytest

from sandbox.judge.types import Decision
from sandbox.pipeline import JobOutcome
from sandbox.run.backends.docker import DockerBackend
from sandbox.settings import SandboxSettings
from tests.support.city import City, city_grant, make_city
from tests.support.corpus import enterprise_grant
from tests.support.engine import require_engine

pytestmark = [pytest.mark.docker]

HEAD = "from sandbox.sdk import connect, publish_query, publish_model, publish_table\n"
BY_DISTRICT = "SELECT district_code, count(*) AS n FROM residents GROUP BY 1 ORDER BY 1"


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    require_engine()
    backend = DockerBackend(SandboxSettings(runtime="runc"))
    made = make_city(tmp_path_factory.mktemp("specs"), backend, residents=4_000, enterprises=1_500)
    yield made
    made.ledger.close()


def run(city: City, code: str, job_id: str, *, grant: object = None) -> JobOutcome:
    source = HEAD + textwrap.dedent(code)
    return city.pipeline.run(grant or city_grant(), "python", source, job_id)  # type: ignore[arg-type]


def rows(outcome: JobOutcome, file: str) -> list[list[str]]:
    assert outcome.report is not None
    (checked,) = [o for o in outcome.report.outputs if o.output.file == file]
    return list(csv.reader(io.StringIO(checked.content.decode())))


def test_a_published_query_is_computed_by_the_trusted_side_and_released(city: City) -> None:
    outcome = run(city, f'publish_query("by-district.csv", "{BY_DISTRICT}")\n', "spec-1")
    assert outcome.status is Decision.RELEASED, outcome
    assert outcome.report is not None and outcome.report.decision is Decision.RELEASED
    sql = city.pipeline.run(city_grant(), "sql", BY_DISTRICT, "spec-1-sql")
    assert sql.status is Decision.RELEASED
    assert rows(outcome, "by-district.csv") == rows(sql, "result.csv")
    # The job's code never saw real data: its only run was on the dummy views, whose
    # logs the operator may read.
    assert outcome.run is not None and not outcome.logs_withheld


def test_a_specification_cannot_depend_on_real_data(city: City) -> None:
    # The job reads a value and writes it into its query and file name. Only the run
    # on dummy data makes specifications, so what is released never holds a real value.
    code = """
        con = connect()
        year = con.sql("SELECT min(year(birth_date)) FROM residents").fetchall()[0][0]
        publish_query(f"y{year}.csv", f"SELECT {year} AS y, count(*) AS n FROM residents")
    """
    outcome = run(city, code, "spec-2")
    real = city.pipeline.run(
        city_grant(),
        "sql",
        "SELECT min(year(birth_date)) AS y, count(*) AS n FROM residents",
        "spec-2-probe",
    )
    assert outcome.report is not None and real.report is not None
    real_year = rows(real, "result.csv")[1][0]
    for checked in outcome.report.outputs:
        assert real_year not in checked.output.file
        assert real_year.encode() not in checked.content


def test_the_job_s_own_files_wait_for_a_reviewer_under_every_mode(city: City) -> None:
    code = f"""
        df = connect().sql("{BY_DISTRICT}").df()
        publish_table("own.csv", df, group_by=["district_code"], measures=[], count="n")
        publish_query("spec.csv", "{BY_DISTRICT}")
    """
    for grant in (city_grant(), enterprise_grant()):  # sql_only; checked
        code_for = code if grant.grant_id == "g-city" else code.replace("residents", "enterprises")
        outcome = run(city, code_for, f"spec-3-{grant.grant_id}", grant=grant)
        assert outcome.status is Decision.HELD, outcome
        assert outcome.logs_withheld  # it ran on real data for its own file
        assert outcome.report is not None
        review = {o.output.file: str(o.verdict) for o in outcome.report.outputs}
        assert review == {"own.csv": "REVIEW", "spec.csv": "PASS"}


def test_a_model_is_fitted_by_the_trusted_side(city: City) -> None:
    code = """
        publish_model("size.json", "np.log1p(registered_capital) ~ np.log1p(employees)",
                      "SELECT registered_capital, employees FROM enterprises", family="gaussian")
    """
    outcome = run(city, code, "spec-4", grant=enterprise_grant())
    assert outcome.status is Decision.RELEASED, outcome
    assert outcome.report is not None
    (checked,) = outcome.report.outputs
    document = json.loads(checked.content)
    assert document["n"] == 1_500 and document["coefficients"]
    assert checked.output.source == "recomputed"


def test_a_model_on_a_one_person_level_is_not_released(city: City) -> None:
    # Levels of a categorical term made from a sensitive column: single entities.
    code = """
        publish_model("leak.json", "employees ~ C(registered_capital)",
                      "SELECT registered_capital, employees FROM enterprises")
    """
    outcome = run(city, code, "spec-5", grant=enterprise_grant())
    assert outcome.status is Decision.BLOCKED, outcome
    assert outcome.report is not None
    assert {f.rule for f in outcome.report.all_findings()} == {"spec"}
    assert not outcome.report.outputs  # nothing was fitted


def test_a_model_level_of_too_few_entities_is_not_released(city: City) -> None:
    # One industry of fewer than k firms beside the largest: its coefficient is their mean.
    firms = duckdb.sql(
        "SELECT industry, count(*) AS n FROM read_parquet($p) GROUP BY 1 ORDER BY 2",
        params={"p": str(city.root / "src" / "enterprises.parquet")},
    ).fetchall()
    small, large = firms[0], firms[-1]
    assert small[1] < 10 <= large[1]
    code = f"""
        publish_model("by-industry.json", "employees ~ C(industry)",
                      "SELECT industry, employees FROM enterprises "
                      "WHERE industry IN ('{small[0]}', '{large[0]}')")
    """
    outcome = run(city, code, "spec-5b", grant=enterprise_grant())
    assert outcome.status is Decision.BLOCKED, outcome
    assert outcome.report is not None
    (checked,) = outcome.report.outputs
    assert checked.output.model["min_level_entities"] == small[1]  # type: ignore[index]
    assert "model_dof" in {f.rule for f in checked.findings}


def test_a_refused_query_specification_blocks_the_job(city: City) -> None:
    code = 'publish_query("raw.csv", "SELECT person_id, birth_date FROM residents")\n'
    outcome = run(city, code, "spec-6")
    assert outcome.status is Decision.BLOCKED, outcome
    assert outcome.report is not None
    assert {f.rule for f in outcome.report.all_findings()} >= {"spec"}


def test_thousands_of_files_end_with_a_plain_reason(city: City) -> None:
    code = """
        for i in range(3000):
            open(f"/output/f{i}.txt", "w").write("x")
        publish_query("n.csv", "SELECT count(*) AS n FROM residents")
    """
    outcome = run(city, code, "spec-7")
    assert outcome.status is Decision.BLOCKED, outcome
    assert outcome.report is not None
    assert "collection" in {f.rule for f in outcome.report.all_findings()}
