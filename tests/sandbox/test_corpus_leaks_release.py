"""The leak corpus, release side: attacks on what a job can get released.

Real jobs against the synthetic city through the whole pipeline on gVisor,
each class of attack under the example policies; the Python ones, over the
enterprises, both under their example policy (``auto_release: checked``)
and in a second city where it says ``sql_only``:

- names: a value read from real data in a file name, a column name or a
  JSON key of a job's own output;
- small counts, through a published query and a job's own table;
- HAVING oracles: a WHERE narrowing to one entity by quasi-identifiers and
  ``HAVING sum(x) > X`` on either side of its value give the same outcome
  and the same released bytes;
- conditional aggregates on a sensitive value (CASE, FILTER, IF, NULLIF,
  greatest, sign, floor ...) are refused before they run;
- one entity's exact value, an affine transform of it or an encoded
  pseudonym as a cell of a big group in a job's own table;
- specifications: a published query or model built from real data is the
  one the dummy run published; refused queries and models that single out
  an entity are not released;
- many groups and many files end with a decision, not an error.

The secrets an attacker wants are read by the test from the views; none may
appear in anything released. The tally is printed (``-s``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import duckdb
import pytest

from sandbox.pipeline import JobOutcome, Kind
from tests.support.city import POLICIES
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

ALL = ("residents", "enterprises", "social_insurance", "tax_payments")
ENTERPRISES = ("enterprises",)
SETTINGS = ("checked", "sql_only")  # the enterprises policy's auto_release, one city each
NOT_RELEASED = ("rejected", "failed", "held", "blocked")


@dataclass(frozen=True)
class Secrets:
    """What the attacks are after, read from the grant's views (the test knows the data)."""

    person: tuple[str, int, str]  # gender, birth year, district: one 2025 contributor
    person_total: float  # that person's 2025 contribution bases, summed
    firm: tuple[str, int, str]  # industry, founding year, district: one enterprise
    firm_capital: float
    top_capital: float  # the largest registered capital

    def marker(self) -> str:
        """The digits of the largest capital, as a job would write them."""
        return str(round(self.top_capital * 100))

    def needles(self) -> list[bytes]:
        values = (self.top_capital, self.firm_capital, self.person_total)
        texts = {self.marker(), str(round(self.top_capital * 3 + 7, 2))}
        texts |= {_plain(v) for v in values}
        return [t.encode() for t in texts if len(t) >= 4]


def _plain(value: float) -> str:
    """A number as a CSV or JSON writer would most likely print it."""
    text = f"{value:.2f}"
    if text.endswith(".00"):
        return text[:-3]
    return text[:-1] if text.endswith("0") else text


def read_secrets(city: City) -> Secrets:
    """Read from the views of the whole city's grant, as generalised: what the SQL sees."""
    con = duckdb.connect()
    for view in city.views.build(dataset_grant(ALL)).views:
        con.execute(f"CREATE VIEW {view.dataset} AS SELECT * FROM read_parquet('{view.path}')")
    person = con.execute(
        "SELECT r.gender, year(r.birth_date), r.district_code, sum(s.contribution_base) "
        "FROM social_insurance AS s JOIN residents AS r ON s.person_id = r.person_id "
        "GROUP BY 1, 2, 3 HAVING count(DISTINCT s.person_id) = 1 "
        "ORDER BY 4 DESC, 1, 2, 3 LIMIT 1"
    ).fetchone()
    firm = con.execute(
        "SELECT industry, year(established), district_code, sum(registered_capital) "
        "FROM enterprises GROUP BY 1, 2, 3 HAVING count(*) = 1 "
        "ORDER BY 4 DESC, 1, 2, 3 LIMIT 1"
    ).fetchone()
    top = con.execute("SELECT max(registered_capital) FROM enterprises").fetchone()
    con.close()
    assert person is not None and firm is not None and top is not None
    return Secrets(
        person=(person[0], person[1], person[2]),
        person_total=float(person[3]),
        firm=(firm[0], firm[1], firm[2]),
        firm_capital=float(firm[3]),
        top_capital=float(top[0]),
    )


# -- HAVING oracles: one entity, a threshold on either side of its value --------------


def having_pairs(s: Secrets) -> dict[str, str]:
    gender, born, district = s.person
    person = (
        "SELECT r.district_code, count(DISTINCT s.person_id) AS n FROM social_insurance AS s "
        "JOIN residents AS r ON s.person_id = r.person_id "
        f"WHERE r.gender = '{gender}' AND year(r.birth_date) = {born} "
        f"AND r.district_code = '{district}' GROUP BY 1 HAVING sum(s.contribution_base) > {{x}}"
    )
    industry, founded, where = s.firm
    firm = (
        "SELECT district_code, count(*) AS n FROM enterprises "
        f"WHERE industry = '{industry}' AND year(established) = {founded} "
        f"AND district_code = '{where}' GROUP BY 1 HAVING sum(registered_capital) > {{x}}"
    )
    return {
        "having-person-below": person.format(x=s.person_total - 1),
        "having-person-above": person.format(x=s.person_total + 1),
        "having-firm-below": firm.format(x=s.firm_capital - 0.5),
        "having-firm-above": firm.format(x=s.firm_capital + 0.5),
    }


HAVING_PAIRS = [
    ("having-person-below", "having-person-above"),
    ("having-firm-below", "having-firm-above"),
]

# -- conditions on a sensitive value inside an aggregate: refused statically ----------

JOINED = "FROM social_insurance AS s JOIN residents AS r ON s.person_id = r.person_id GROUP BY 1"
CONDITIONAL = {
    "stddev-case": "SELECT r.district_code, stddev_pop(CASE WHEN s.contribution_base > 20000 "
    f"THEN s.contribution_base END) AS x {JOINED}",
    "sum-case": "SELECT r.district_code, sum(CASE WHEN s.contribution_base > 20000 THEN 1 "
    f"ELSE 0 END) AS x {JOINED}",
    "count-filter": "SELECT industry, count(*) FILTER (WHERE registered_capital > 30000) AS x "
    "FROM enterprises GROUP BY 1",
    "sum-if": "SELECT industry, sum(if(registered_capital > 30000, 1, 0)) AS x "
    "FROM enterprises GROUP BY 1",
    "sum-nullif": "SELECT industry, count(nullif(employees, 1)) AS x FROM enterprises GROUP BY 1",
    "sum-greatest": "SELECT industry, sum(greatest(registered_capital - 30000, 0)) AS x "
    "FROM enterprises GROUP BY 1",
    "sum-least": "SELECT industry, sum(least(registered_capital, 30000)) AS x "
    "FROM enterprises GROUP BY 1",
    "sum-sign": "SELECT industry, sum(sign(registered_capital - 30000)) AS x "
    "FROM enterprises GROUP BY 1",
    "sum-floor": "SELECT industry, sum(floor(registered_capital / 30000)) AS x "
    "FROM enterprises GROUP BY 1",
    "avg-comparison": "SELECT industry, avg(CAST(registered_capital > 30000 AS INTEGER)) AS x "
    "FROM enterprises GROUP BY 1",
    "count-case": "SELECT industry, count(CASE WHEN employees > 500 THEN 1 END) AS x "
    "FROM enterprises GROUP BY 1",
    "avg-abs": "SELECT industry, avg(abs(registered_capital - 30000)) AS x "
    "FROM enterprises GROUP BY 1",
    "sum-round": "SELECT industry, sum(round(registered_capital, -4)) AS x "
    "FROM enterprises GROUP BY 1",
    "sum-exp": "SELECT industry, sum(exp(registered_capital / 1000)) AS x "
    "FROM enterprises GROUP BY 1",
    "sum-mod": f"SELECT r.district_code, sum(s.amount % 2) AS x {JOINED}",
    "subquery-filter": "SELECT count(*) AS n FROM (SELECT district_code, "
    "sum(employees) AS total FROM enterprises GROUP BY 1) AS t WHERE total > 5000",
}

# -- Python jobs ---------------------------------------------------------------------

HEAD = """
import base64
from sandbox.sdk import (connect, publish_model, publish_model_summary, publish_query,
                         publish_table, publish_text)
con = connect()
top = con.sql("SELECT max(registered_capital) FROM enterprises").fetchall()[0][0]
marker = str(round(top * 100))
counts = con.sql("SELECT industry, count(*) AS n FROM enterprises GROUP BY 1").df()
"""

# The job's own files, each carrying a value read from the data: held or blocked,
# never released, whatever the policy.
OWN_FILES = {
    "name-in-file-name": """
        publish_text(f"cap-{marker}.txt", "a summary of the industries")
    """,
    "name-in-column": """
        publish_table("t.csv", counts.rename(columns={"n": "n_" + marker}), group_by=["industry"],
                      measures=[], count="n_" + marker)
    """,
    "name-in-json-key": """
        publish_model_summary("m.json", coefficients={"x" + marker: 1.0}, std_errors=None,
                              n=3000, df_resid=2990)
    """,
    "small-counts-table": """
        df = con.sql("SELECT industry, district_code, year(established) AS y, count(*) AS n "
                     "FROM enterprises GROUP BY ALL").df()
        publish_table("fine.csv", df, group_by=["industry", "district_code", "y"], measures=[],
                      count="n")
    """,
    "value-in-big-group": """
        counts["mean_capital"] = top
        publish_table("cap.csv", counts, group_by=["industry"], measures=["mean_capital"],
                      count="n")
    """,
    "affine-value-in-big-group": """
        counts["index"] = round(top * 3 + 7, 2)
        publish_table("idx.csv", counts, group_by=["industry"], measures=["index"], count="n")
    """,
    "hex-pseudonym-in-cell": """
        v = con.sql("SELECT legal_person_id FROM enterprises LIMIT 1").fetchall()[0][0]
        counts["ref"] = v.encode().hex()
        publish_table("ref.csv", counts, group_by=["industry", "ref"], measures=[], count="n")
    """,
    "base64-pseudonym-in-cell": """
        v = con.sql("SELECT legal_person_id FROM enterprises LIMIT 1").fetchall()[0][0]
        counts["ref"] = base64.b64encode(v.encode()).decode()
        publish_table("ref.csv", counts, group_by=["industry", "ref"], measures=[], count="n")
    """,
    "many-files": """
        publish_text("note.txt", "see the appendix")
        for i in range(20_000):
            with open(f"/output/part-{i}.txt", "w") as f:
                f.write(marker)
    """,
}


def spec_jobs(s: Secrets) -> dict[str, str]:
    """Specifications: recomputed by the trusted side from what the dummy run published."""
    industry, founded, district = s.firm
    one_firm = (
        f"industry = '{industry}' AND year(established) = {founded} "
        f"AND district_code = '{district}'"
    )
    return {
        # Name and SQL built from a value read in the job: the dummy run's value is used.
        "spec-from-data": """
            publish_query(f"top-{marker}.csv", "SELECT industry, count(*) AS n, "
                          f"{marker} AS top FROM enterprises GROUP BY 1")
        """,
        # ... also when the job's own file makes it run on real data as well.
        "spec-from-data-with-file": """
            publish_text("note.txt", "tables by industry")
            publish_query(f"top-{marker}.csv", "SELECT industry, count(*) AS n, "
                          f"{marker} AS top FROM enterprises GROUP BY 1")
        """,
        "spec-small-counts": """
            publish_query("fine.csv", "SELECT industry, district_code, established, count(*) "
                          "AS n FROM enterprises GROUP BY ALL")
        """,
        "spec-refused-query": """
            publish_query("raw.csv", "SELECT * FROM enterprises")
        """,
        "spec-refused-model-query": """
            publish_model("keys.json", "registered_capital ~ employees",
                          "SELECT registered_capital, employees, legal_person_id "
                          "FROM enterprises")
        """,
        # One dummy per firm name: nearly one coefficient per firm.
        "spec-model-per-name": """
            publish_model("names.json", "registered_capital ~ C(name)",
                          "SELECT registered_capital, name FROM enterprises "
                          "WHERE industry = '制造业'")
        """,
        # An indicator of one firm: intercept + coefficient is its exact capital.
        "spec-model-one-firm": f"""
            publish_model("one.json", "registered_capital ~ target",
                          "SELECT registered_capital, CASE WHEN {one_firm} THEN 1 ELSE 0 END "
                          "AS target FROM enterprises")
        """,
        "spec-model-few-rows": f"""
            publish_model("few.json", "registered_capital ~ employees",
                          "SELECT registered_capital, employees FROM enterprises "
                          "WHERE {one_firm}")
        """,
        "spec-formula-injection": """
            publish_model("evil.json", "registered_capital ~ __import__('os').getpid()",
                          "SELECT registered_capital FROM enterprises")
        """,
    }


SPEC_FROM_DATA = ("spec-from-data", "spec-from-data-with-file")

# Every resident beside each mining firm: some 27,000 groups (birth year x district
# x founding year) of a few residents and one or two firms each.
MANY_GROUPS = (
    "SELECT year(r.birth_date) AS born, r.district_code, year(e.established) AS founded, "
    "count(*) AS n FROM residents AS r, enterprises AS e WHERE e.industry = '采矿业' "
    "GROUP BY ALL"
)

Submission = tuple[tuple[str, ...], Kind, str]


def submissions(s: Secrets) -> dict[str, Submission]:
    jobs: dict[str, Submission] = {}
    for case, sql in having_pairs(s).items():
        jobs[case] = (ALL, "sql", sql)
    for case, sql in CONDITIONAL.items():
        jobs[f"cond-{case}"] = (ALL, "sql", sql)
    jobs["many-groups"] = (ALL, "sql", MANY_GROUPS)
    bodies = {**OWN_FILES, **spec_jobs(s)}
    for setting in SETTINGS:
        for case, body in bodies.items():
            jobs[f"{case}@{setting}"] = (ENTERPRISES, "python", HEAD + textwrap.dedent(body))
    return jobs


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    """The example policies: enterprises' ``auto_release`` is ``checked``."""
    yield from corpus_city(tmp_path_factory.mktemp("leaks-release"))


@pytest.fixture(scope="module")
def sql_only_city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    """The same city with enterprises' ``auto_release: sql_only``."""
    text = (POLICIES / "enterprises.yaml").read_text()
    assert "auto_release: checked" in text
    overrides = {"enterprises": text.replace("auto_release: checked", "auto_release: sql_only")}
    yield from corpus_city(tmp_path_factory.mktemp("leaks-release-sql-only"), overrides)


@pytest.fixture(scope="module")
def secrets(city: City) -> Secrets:
    return read_secrets(city)


Results = dict[str, JobOutcome | Exception]


@pytest.fixture(scope="module")
def outcomes(city: City, sql_only_city: City, secrets: Secrets) -> Iterator[Results]:
    jobs = {
        case: (dataset_grant(datasets), kind, code, f"leak-{case.replace('@', '-')}")
        for case, (datasets, kind, code) in submissions(secrets).items()
    }
    cities = {case: sql_only_city for case in jobs if case.endswith("@sql_only")}
    results = run_concurrently(city, jobs, cities=cities)
    yield results
    tally: dict[str, dict[str, int]] = {}
    for case, result in results.items():
        setting = case.partition("@")[2] or "sql"
        status = result.status if isinstance(result, JobOutcome) else "error"
        counts = tally.setdefault(setting, {})
        counts[status] = counts.get(status, 0) + 1
    print(f"\nleak corpus (release side): {len(results)} cases, {tally}")


def released_bytes(outcome: JobOutcome) -> list[bytes]:
    """File names and contents of what was released (nothing unless released)."""
    if outcome.status != "released" or outcome.report is None:
        return []
    return [b for c in outcome.report.outputs for b in (c.output.file.encode(), c.content)]


def shown_bytes(outcome: JobOutcome) -> list[bytes]:
    """File names and contents of every checked output, held ones included."""
    if outcome.report is None:
        return []
    return [b for c in outcome.report.outputs for b in (c.output.file.encode(), c.content)]


def python_cases(names: Iterable[str]) -> list[str]:
    return [f"{case}@{setting}" for case in names for setting in SETTINGS]


def test_nothing_protected_is_released_anywhere(outcomes: Results, secrets: Secrets) -> None:
    leaks = []
    for case in outcomes:
        outcome = outcome_of(outcomes, case)
        for blob in released_bytes(outcome):
            leaks += [case for needle in secrets.needles() if needle in blob]
    assert not leaks, leaks


@pytest.mark.parametrize("pair", HAVING_PAIRS, ids=[a for a, _ in HAVING_PAIRS])
def test_having_threshold_does_not_change_the_outcome(
    outcomes: Results, pair: tuple[str, str]
) -> None:
    below, above = (outcome_of(outcomes, case) for case in pair)
    assert below.status == above.status, describe(below) + "\n" + describe(above)
    assert released_bytes(below) == released_bytes(above)
    assert below.status in NOT_RELEASED, describe(below)


@pytest.mark.parametrize("case", sorted(CONDITIONAL))
def test_condition_on_a_sensitive_value_in_an_aggregate_is_refused(
    outcomes: Results, case: str
) -> None:
    outcome = outcome_of(outcomes, f"cond-{case}")
    assert outcome.status == "rejected", describe(outcome)
    assert outcome.run is None


@pytest.mark.parametrize("case", python_cases(OWN_FILES))
def test_a_jobs_own_files_are_never_released(
    outcomes: Results, secrets: Secrets, case: str
) -> None:
    outcome = outcome_of(outcomes, case)
    assert outcome.status in NOT_RELEASED, describe(outcome)
    assert outcome.status != "failed" or outcome.exit_class is not None
    # What the pipeline says about the job in plain words carries no value either.
    said = " ".join([*outcome.rejections, outcome.reason or ""])
    assert secrets.marker() not in said


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_encoded_pseudonyms_in_cells_are_blocked(outcomes: Results, setting: str) -> None:
    for case in ("hex-pseudonym-in-cell", "base64-pseudonym-in-cell"):
        outcome = outcome_of(outcomes, f"{case}@{setting}")
        assert outcome.status == "blocked", describe(outcome)
        assert "identifier_leakage" in rules(outcome, "FAIL"), describe(outcome)


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_many_files_end_with_a_plain_decision(outcomes: Results, setting: str) -> None:
    # Refused by the output directory's limits (the job fails) or by collection.
    outcome = outcome_of(outcomes, f"many-files@{setting}")
    assert outcome.status in ("failed", "held", "blocked"), describe(outcome)
    if outcome.status == "failed":
        assert outcome.exit_class is not None, describe(outcome)
    else:
        assert rules(outcome, "REVIEW") | rules(outcome, "FAIL"), describe(outcome)


def test_many_groups_end_with_a_decision(outcomes: Results) -> None:
    outcome = outcome_of(outcomes, "many-groups")
    assert outcome.status in ("held", "blocked"), describe(outcome)
    assert rules(outcome, "REVIEW") | rules(outcome, "FAIL"), describe(outcome)


@pytest.mark.parametrize("case", python_cases(SPEC_FROM_DATA))
def test_specification_is_the_one_published_on_dummy_data(
    outcomes: Results, secrets: Secrets, case: str
) -> None:
    outcome = outcome_of(outcomes, case)
    shown = shown_bytes(outcome)
    assert shown, describe(outcome)  # the recomputed table, released or held
    marker = secrets.marker().encode()
    assert not [blob for blob in shown if marker in blob], describe(outcome)


@pytest.mark.parametrize(
    "case",
    python_cases(
        [
            "spec-small-counts",
            "spec-refused-query",
            "spec-refused-model-query",
            "spec-model-per-name",
            "spec-model-one-firm",
            "spec-model-few-rows",
            "spec-formula-injection",
        ]
    ),
)
def test_specification_attacks_are_not_released(outcomes: Results, case: str) -> None:
    outcome = outcome_of(outcomes, case)
    assert outcome.status in NOT_RELEASED, describe(outcome)
