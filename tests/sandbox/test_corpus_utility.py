"""The utility corpus: legitimate analyses a city's analysts would submit.

Counts and rates by district, age band, gender and industry; medians and
deciles of dimensions; cohort tables; joins of residents, employers and
contributions through their join keys; histograms and generalised linear
models published by Python jobs as specifications (``publish_query``,
``publish_model``) that the trusted side recomputes on real data. All run
against the synthetic city through the whole pipeline on gVisor. The models
are over enterprises, whose policy (``auto_release: checked``) releases the
trusted side's fits; under ``sql_only`` they would wait for a reviewer.

At least 95% of all cases must be released automatically under the example
policies. The few held by design (a figure, a free table, a dataset whose
policy never releases automatically) must be held, never blocked. The
share, and which cases were held with their rule ids, are printed (``-s``).

The cases run a few at a time (the containers mostly wait); each case's
outcome is then asserted on its own.
"""

from __future__ import annotations

import csv
import io
import json
import textwrap
from collections.abc import Iterator

import pytest

from sandbox.pipeline import JobOutcome, Kind
from tests.support.corpus import (
    City,
    corpus_city,
    dataset_grant,
    describe,
    outcome_of,
    rules,
    run_concurrently,
)

# The first test waits for every job of the module (run a few at a time).
pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1200)]

# Large districts and industries, for cross-tabulations that would otherwise
# have cells of a few entities (those are suppressed and held, as they should be).
BIG_DISTRICTS = "('500112', '500101', '500107', '500106', '500116', '500117')"
BIG_INDUSTRIES = "('批发和零售业', '租赁和商务服务业', '制造业', '建筑业', '科学研究和技术服务业')"
AGE_BAND = (
    "CASE WHEN year(birth_date) >= 2006 THEN '0-19' WHEN year(birth_date) >= 1986 THEN '20-39' "
    "WHEN year(birth_date) >= 1966 THEN '40-59' ELSE '60+' END"
)
R_AGE_BAND = AGE_BAND.replace("birth_date", "r.birth_date")
PERIOD = (
    "CASE WHEN year(established) < 2010 THEN 'before 2010' "
    "WHEN year(established) < 2018 THEN '2010-2017' ELSE '2018 on' END"
)

# SQL products, all over the datasets of the whole city's grant.
SQL = {
    # -- residents: counts, rates and cohorts -----------------------------------------
    "residents-total": "SELECT count(*) AS residents FROM residents",
    "residents-by-gender": "SELECT gender, count(*) AS n FROM residents GROUP BY 1",
    "residents-by-district": "SELECT district_code, count(*) AS residents FROM residents "
    "GROUP BY 1",
    "residents-by-district-name": "SELECT district_name, count(*) AS n FROM residents GROUP BY 1",
    "districts-counted": "SELECT count(DISTINCT district_code) AS districts FROM residents",
    "residents-by-gender-district": "SELECT district_code, gender, count(*) AS n FROM residents "
    "GROUP BY ALL ORDER BY 1, 2",
    "age-pyramid": "SELECT gender, floor((2024 - year(birth_date)) / 10) * 10 AS age_band, "
    "count(*) AS n FROM residents GROUP BY ALL ORDER BY 2, 1",
    "births-by-decade": "SELECT floor(year(birth_date) / 10) * 10 AS decade, count(*) AS n "
    "FROM residents GROUP BY 1 ORDER BY 1",
    "births-by-year": "SELECT year(birth_date) AS born, count(*) AS n FROM residents "
    "GROUP BY 1 ORDER BY 1",
    "residents-by-decade-and-gender": "SELECT floor(year(birth_date) / 10) * 10 AS decade, "
    "gender, count(*) AS n FROM residents GROUP BY ALL ORDER BY 1, 2",
    "district-margins": "SELECT district_code, gender, count(*) AS n FROM residents "
    "GROUP BY ROLLUP (district_code, gender)",
    "age-bands-by-district": f"SELECT district_code, {AGE_BAND} AS age_band, count(*) AS n "
    "FROM residents GROUP BY ALL ORDER BY 1, 2",
    "cohort-decade-by-district": "SELECT district_code, floor(year(birth_date) / 10) * 10 "
    "AS decade, count(*) AS n FROM residents WHERE year(birth_date) BETWEEN 1960 AND 2019 "
    f"AND district_code IN {BIG_DISTRICTS} GROUP BY ALL ORDER BY 1, 2",
    "working-age-by-district-gender": "SELECT district_code, gender, count(*) AS n "
    "FROM residents WHERE year(birth_date) BETWEEN 1966 AND 2007 GROUP BY ALL",
    "share-of-women-by-district": "SELECT district_code, "
    "avg(CASE WHEN gender = '女' THEN 1.0 ELSE 0.0 END) AS share_women, count(*) AS n "
    "FROM residents GROUP BY 1",
    "share-of-children-by-district": "SELECT district_code, "
    "avg(CASE WHEN year(birth_date) >= 2008 THEN 1.0 ELSE 0.0 END) AS share_children, "
    "count(*) AS n FROM residents GROUP BY 1",
    "elderly-by-district": "SELECT district_code, count(*) AS n, "
    "count(*) FILTER (WHERE year(birth_date) < 1961) AS aged_65_plus FROM residents GROUP BY 1",
    "women-by-age-band": f"SELECT {AGE_BAND} AS age_band, "
    "sum(CASE WHEN gender = '女' THEN 1 ELSE 0 END) AS women, count(*) AS n "
    "FROM residents GROUP BY 1 ORDER BY 1",
    "mean-birth-year-by-district": "SELECT district_code, avg(year(birth_date)) AS mean_born, "
    "stddev(year(birth_date)) AS sd_born, count(*) AS n FROM residents GROUP BY 1",
    "median-birth-year-by-district": "SELECT district_code, median(year(birth_date)) "
    "AS median_born, count(*) AS n FROM residents GROUP BY 1",
    "birth-year-deciles-by-gender": "SELECT gender, "
    + ", ".join(f"quantile_cont(year(birth_date), 0.{i}) AS p{i}0" for i in range(1, 10))
    + ", count(*) AS n FROM residents GROUP BY 1",
    "age-bands-cte": f"WITH a AS (SELECT gender, {AGE_BAND} AS band FROM residents) "
    "SELECT band, gender, count(*) AS n FROM a GROUP BY ALL ORDER BY 1, 2",
    "residents-having-many": "SELECT district_code, count(*) AS n FROM residents "
    "GROUP BY 1 HAVING count(*) >= 100 ORDER BY n DESC",
    "largest-districts": "SELECT district_code, count(*) AS n FROM residents "
    "GROUP BY 1 ORDER BY n DESC LIMIT 5",
    # -- enterprises -----------------------------------------------------------------
    "enterprises-by-industry": "SELECT industry, count(*) AS firms FROM enterprises GROUP BY 1",
    "enterprises-by-district": "SELECT district_code, count(*) AS firms FROM enterprises "
    "GROUP BY 1",
    "mean-employees-by-industry": "SELECT industry, count(*) AS firms, avg(employees) AS mean, "
    "stddev(employees) AS sd FROM enterprises GROUP BY 1",
    "employees-by-district": "SELECT district_code, count(*) AS firms, "
    "avg(employees) AS mean_employees FROM enterprises GROUP BY 1",
    "firms-founded-by-year": "SELECT year(established) AS founded, count(*) AS firms "
    "FROM enterprises WHERE established >= DATE '2000-01-01' GROUP BY 1 ORDER BY 1",
    "capital-by-period": f"SELECT {PERIOD} AS period, count(*) AS firms, "
    "avg(registered_capital) AS mean_capital FROM enterprises GROUP BY 1 ORDER BY 1",
    "cohort-period-by-industry": f"SELECT industry, {PERIOD} AS period, count(*) AS firms "
    f"FROM enterprises WHERE industry IN {BIG_INDUSTRIES} GROUP BY ALL ORDER BY 1, 2",
    "modern-share-by-industry": "SELECT industry, "
    "avg(CASE WHEN year(established) >= 2015 THEN 1.0 ELSE 0.0 END) AS share_since_2015, "
    f"count(*) AS firms FROM enterprises WHERE industry IN {BIG_INDUSTRIES} GROUP BY 1",
    "employees-variance-by-industry": "SELECT industry, variance(employees) AS v, "
    f"count(*) AS firms FROM enterprises WHERE industry IN {BIG_INDUSTRIES} GROUP BY 1",
    "median-founding-year-by-industry": "SELECT industry, median(year(established)) "
    "AS median_founded, count(*) AS firms FROM enterprises GROUP BY 1",
    "employee-scale-by-industry": "SELECT industry, avg(employees * 12) AS person_months, "
    f"count(*) AS firms FROM enterprises WHERE industry IN {BIG_INDUSTRIES} GROUP BY 1",
    # -- joins through join keys -----------------------------------------------------
    "contributors-by-month": "SELECT month, count(DISTINCT person_id) AS contributors "
    "FROM social_insurance GROUP BY 1 ORDER BY 1",
    "mean-base-by-month": "SELECT month, avg(contribution_base) AS mean_base "
    "FROM social_insurance GROUP BY 1 ORDER BY 1",
    "contributions-by-month": "SELECT month, count(*) AS records, sum(amount) AS total "
    "FROM social_insurance GROUP BY 1 ORDER BY 1",
    "contributions-by-gender": "SELECT r.gender, count(DISTINCT s.person_id) AS persons, "
    "avg(s.amount) AS mean_amount FROM social_insurance AS s JOIN residents AS r "
    "ON s.person_id = r.person_id GROUP BY 1",
    "contributors-by-district": "SELECT r.district_code, count(DISTINCT r.person_id) AS persons "
    "FROM residents AS r JOIN social_insurance AS s ON r.person_id = s.person_id GROUP BY 1",
    "variance-of-base-by-district": "SELECT r.district_code, variance(s.contribution_base) AS v, "
    "count(*) AS records FROM social_insurance AS s JOIN residents AS r "
    "ON s.person_id = r.person_id GROUP BY 1",
    "base-by-age-band": f"SELECT {R_AGE_BAND} AS age_band, count(DISTINCT s.person_id) "
    "AS persons, avg(s.contribution_base) AS mean_base FROM social_insurance AS s "
    "JOIN residents AS r ON s.person_id = r.person_id GROUP BY 1 ORDER BY 1",
    "base-by-gender-and-age-band": f"SELECT r.gender, {R_AGE_BAND} AS age_band, "
    "count(DISTINCT s.person_id) AS persons, avg(s.contribution_base) AS mean_base "
    "FROM social_insurance AS s JOIN residents AS r ON s.person_id = r.person_id "
    "GROUP BY ALL ORDER BY 1, 2",
    "contribution-rate-by-gender": "SELECT r.gender, avg(s.amount * 100 / 24) AS mean_base_est "
    "FROM social_insurance AS s JOIN residents AS r ON s.person_id = r.person_id GROUP BY 1",
    "base-by-industry": "SELECT e.industry, count(DISTINCT s.person_id) AS workers, "
    "count(DISTINCT e.credit_code) AS firms, avg(s.contribution_base) AS mean_base "
    "FROM social_insurance AS s JOIN enterprises AS e ON s.credit_code = e.credit_code "
    f"WHERE e.industry IN {BIG_INDUSTRIES} GROUP BY 1",
    "workers-by-employer-period": f"SELECT {PERIOD.replace('established', 'e.established')} "
    "AS period, count(DISTINCT s.person_id) AS workers, count(DISTINCT e.credit_code) AS firms "
    "FROM social_insurance AS s JOIN enterprises AS e ON s.credit_code = e.credit_code "
    "GROUP BY 1 ORDER BY 1",
    "legal-persons-by-gender": "SELECT r.gender, count(*) AS firms, "
    "count(DISTINCT r.person_id) AS legal_persons FROM enterprises AS e JOIN residents AS r "
    "ON e.legal_person_id = r.person_id GROUP BY 1",
    "founder-age-by-industry": "SELECT e.industry, "
    "avg(year(e.established) - year(r.birth_date)) AS mean_founder_age, count(*) AS firms "
    "FROM enterprises AS e JOIN residents AS r ON e.legal_person_id = r.person_id "
    f"WHERE e.industry IN {BIG_INDUSTRIES} GROUP BY 1",
    "workers-by-industry-and-gender": "SELECT e.industry, r.gender, "
    "count(DISTINCT s.person_id) AS workers, count(DISTINCT e.credit_code) AS firms "
    "FROM social_insurance AS s JOIN enterprises AS e ON s.credit_code = e.credit_code "
    "JOIN residents AS r ON s.person_id = r.person_id "
    f"WHERE e.industry IN {BIG_INDUSTRIES} GROUP BY ALL ORDER BY 1, 2",
    # -- held by design: this dataset's policy never releases automatically ------------
    "tax-by-type": "SELECT tax_type, count(*) AS payments, avg(amount) AS mean_amount "
    "FROM tax_payments GROUP BY 1",
}

PY_HEAD = """
from sandbox.sdk import connect, publish_query, publish_model, publish_figure, publish_table
con = connect()
"""

ENTERPRISES = ("enterprises",)
PEOPLE = ("residents", "enterprises", "social_insurance")

# Python jobs: (datasets of the grant, body). Their publish_query and
# publish_model outputs are specifications, recomputed on real data.
PYTHON: dict[str, tuple[tuple[str, ...], str]] = {
    "py-firms-by-industry": (
        ENTERPRISES,
        """
        publish_query("industry.csv", "SELECT industry, count(*) AS n, "
                      "avg(employees) AS mean_employees FROM enterprises GROUP BY 1")
        """,
    ),
    "py-firms-by-district": (
        ENTERPRISES,
        """
        publish_query("districts.csv",
                      "SELECT district_code, count(*) AS firms FROM enterprises GROUP BY 1",
                      description="firms by district")
        """,
    ),
    "py-founding-histogram": (
        ENTERPRISES,
        """
        publish_query("founded.csv", "SELECT year(established) AS founded, count(*) AS firms "
                      "FROM enterprises WHERE established >= DATE '2000-01-01' "
                      "GROUP BY 1 ORDER BY 1")
        """,
    ),
    "py-birth-histogram": (
        PEOPLE,
        """
        publish_query("born.csv", "SELECT floor(year(birth_date) / 5) * 5 AS born, "
                      "count(*) AS n FROM residents GROUP BY 1 ORDER BY 1")
        """,
    ),
    "py-several-tables": (
        PEOPLE,
        """
        # The job explores first (on dummy data: the numbers are not used), then publishes.
        print(con.sql("SELECT count(*) FROM residents").fetchall())
        for name, dim in (("by-gender.csv", "gender"), ("by-district.csv", "district_code")):
            publish_query(name, f"SELECT {dim}, count(*) AS n FROM residents GROUP BY 1")
        """,
    ),
    "py-contributions-by-gender": (
        PEOPLE,
        """
        publish_query("contributions.csv",
                      "SELECT r.gender, count(DISTINCT s.person_id) AS persons, "
                      "avg(s.contribution_base) AS mean_base FROM social_insurance AS s "
                      "JOIN residents AS r ON s.person_id = r.person_id GROUP BY 1")
        """,
    ),
    "py-glm-capital": (
        ENTERPRISES,
        """
        publish_model("capital.json", "np.log(registered_capital) ~ np.log1p(employees) "
                      "+ C(industry)", "SELECT registered_capital, employees, industry "
                      "FROM enterprises", description="log capital on size and industry")
        """,
    ),
    "py-glm-size-by-age": (
        ENTERPRISES,
        """
        publish_model("size.json", "employees ~ founded + I(founded ** 2)",
                      "SELECT employees, year(established) - 2000 AS founded FROM enterprises")
        """,
    ),
    "py-glm-modern-binomial": (
        ENTERPRISES,
        """
        publish_model("modern.json", "modern ~ np.log1p(employees) + C(industry)",
                      "SELECT CASE WHEN year(established) >= 2015 THEN 1 ELSE 0 END AS modern, "
                      "employees, industry FROM enterprises", family="binomial")
        """,
    ),
    "py-glm-employees-poisson": (
        ENTERPRISES,
        """
        publish_model("employees.json", "employees ~ C(industry) + founded",
                      "SELECT employees, industry, year(established) - 2000 AS founded "
                      "FROM enterprises", family="poisson")
        """,
    ),
    "py-glm-capital-gamma": (
        ENTERPRISES,
        """
        publish_model("capital-gamma.json", "registered_capital ~ np.sqrt(employees)",
                      "SELECT registered_capital, employees FROM enterprises", family="gamma")
        """,
    ),
    "py-glm-manufacturing-binomial": (
        ENTERPRISES,
        """
        publish_model("manufacturing.json", "manufacturing ~ np.log1p(employees) + founded",
                      "SELECT CASE WHEN industry = '制造业' THEN 1 ELSE 0 END AS manufacturing, "
                      "employees, year(established) - 2000 AS founded FROM enterprises",
                      family="binomial")
        """,
    ),
    "py-glm-capital-interaction": (
        ENTERPRISES,
        """
        publish_model("capital-by-age.json", "np.log(registered_capital) ~ np.log1p(employees) "
                      "* founded", "SELECT registered_capital, employees, "
                      "year(established) - 2000 AS founded FROM enterprises")
        """,
    ),
    # -- held by design: what the job computed itself waits for a reviewer -------------
    "py-founding-figure": (
        ENTERPRISES,
        """
        import matplotlib.pyplot as plt
        df = con.sql(
            "SELECT year(established) AS y, count(*) AS n FROM enterprises GROUP BY 1 ORDER BY 1"
        ).df()
        fig, ax = plt.subplots()
        ax.bar(df.y, df.n)
        publish_figure("founded.png", fig)
        """,
    ),
    "py-free-table": (
        ENTERPRISES,
        """
        df = con.sql("SELECT district_code, count(*) AS n FROM enterprises GROUP BY 1").df()
        publish_table("free.csv", df, group_by=["district_code"], measures=[], count="n")
        """,
    ),
}

HELD_BY_DESIGN = {"tax-by-type", "py-founding-figure", "py-free-table"}
CASES = [*SQL, *PYTHON]


def _submission(case: str) -> tuple[tuple[str, ...], Kind, str]:
    """(datasets of the grant, kind, code) of one case."""
    if case in SQL:
        return ("residents", "enterprises", "social_insurance", "tax_payments"), "sql", SQL[case]
    datasets, body = PYTHON[case]
    return datasets, "python", PY_HEAD + textwrap.dedent(body)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    yield from corpus_city(tmp_path_factory.mktemp("utility"))


Results = dict[str, JobOutcome | Exception]


@pytest.fixture(scope="module")
def outcomes(city: City) -> Results:
    jobs = {}
    for case in CASES:
        datasets, kind, code = _submission(case)
        jobs[case] = (dataset_grant(datasets), kind, code, f"util-{case}")
    return run_concurrently(city, jobs)


def _status(results: Results, case: str) -> str:
    result = results[case]
    if isinstance(result, Exception):
        return f"error {type(result).__name__}"
    why = sorted(rules(result, "REVIEW") | rules(result, "FAIL"))
    return result.status + (f" {why}" if why else "")


@pytest.mark.parametrize("case", CASES)
def test_analysis_is_released_or_held_by_design(outcomes: Results, case: str) -> None:
    outcome = outcome_of(outcomes, case)
    if case in HELD_BY_DESIGN:
        assert outcome.status == "held", describe(outcome)
        assert not rules(outcome, "FAIL"), describe(outcome)
        return
    assert outcome.status == "released", describe(outcome)
    report = outcome.report
    assert report is not None and report.outputs, describe(outcome)
    for checked in report.outputs:
        assert checked.content  # something to download


def test_at_least_ninety_five_percent_released_automatically(outcomes: Results) -> None:
    released = [c for c in CASES if _status(outcomes, c) == "released"]
    held = {c: _status(outcomes, c) for c in CASES if c not in released}
    share = len(released) / len(CASES)
    print(
        f"\nutility corpus: {len(released)}/{len(CASES)} released automatically ({share:.1%})"
        + "".join(f"\n  not released: {c} ({why})" for c, why in held.items())
    )
    assert len(CASES) >= 60
    assert share >= 0.95, held


def test_released_sql_table_is_the_analysts_columns_only(outcomes: Results) -> None:
    report = outcome_of(outcomes, "residents-by-district").report
    assert report is not None
    (checked,) = report.outputs
    header = next(csv.reader(io.StringIO(checked.content.decode())))
    assert header == ["district_code", "residents"]
    assert "__dsr" not in checked.content.decode()


def test_published_query_is_recomputed_like_the_sql_product(outcomes: Results) -> None:
    # The same SELECT as a Python job's specification and as an SQL product.
    python = outcome_of(outcomes, "py-firms-by-district")
    sql = outcome_of(outcomes, "enterprises-by-district")
    assert python.report is not None and sql.report is not None
    (table,) = python.report.outputs
    (product,) = sql.report.outputs
    assert table.output.file == "districts.csv"
    assert sorted(table.content.decode().splitlines()) == sorted(
        product.content.decode().splitlines()
    )


def test_published_model_carries_coefficients_only(outcomes: Results) -> None:
    report = outcome_of(outcomes, "py-glm-capital").report
    assert report is not None
    (model,) = report.outputs
    document = json.loads(model.content)
    assert document["n"] >= 1000
    assert any(term.startswith("C(industry)") for term in document["coefficients"])
    assert set(document["std_errors"]) == set(document["coefficients"])
    # Sizes and one number per term: no per-row values (residuals, fitted values).
    assert not [key for key, value in document.items() if isinstance(value, list)], document
    assert all(isinstance(v, float) for v in document["coefficients"].values())


def test_dummy_runs_show_logs_and_are_not_checked(city: City) -> None:
    code = PY_HEAD + textwrap.dedent(
        """
        print("rows:", con.sql("SELECT count(*) FROM enterprises").fetchall()[0][0])
        """
    )
    outcome = city.pipeline.run(
        dataset_grant(ENTERPRISES), "python", code, "util-dummy", dummy=True
    )
    assert outcome.status == "dummy", describe(outcome)
    assert outcome.report is None and not outcome.logs_withheld
    assert outcome.run is not None and b"rows: " in outcome.run.execution.stdout.data
