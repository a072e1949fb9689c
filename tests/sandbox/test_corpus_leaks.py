"""The leak corpus: real jobs that try to take data out; none may be released.

Each case is a job (SQL or Python) run against the synthetic city through
the whole pipeline: static checks, views, a gVisor container, the output
rules and the differencing ledger. Each must end rejected, blocked or held,
and for the blocked ones the rule that caught it is named. The independent
jobs run a few at a time (``run_concurrently``), the differencing pairs one
after the other. The figures are printed at the end (``-s``) for the
closing note. Attacks on what gets released (HAVING and conditional
aggregate oracles, Python specifications, names) are in
``test_corpus_leaks_release.py``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import pytest

from sandbox.pipeline import JobOutcome, Kind
from tests.support.corpus import (
    City,
    Job,
    city_grant,
    corpus_city,
    describe,
    enterprise_grant,
    outcome_of,
    rules,
    run_concurrently,
)

# The first test waits for every job of the module (run a few at a time).
pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1200)]

TALLY: dict[str, str] = {}


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    yield from corpus_city(tmp_path_factory.mktemp("leaks"))
    counts: dict[str, int] = {}
    for status in TALLY.values():
        counts[status] = counts.get(status, 0) + 1
    print(f"\nleak corpus: {len(TALLY)} cases, {counts}")


def run(city: City, case: str, kind: Kind, code: str) -> JobOutcome:
    """Run one job now (for cases whose order matters) and tally it."""
    return tallied(case, city.pipeline.run(city_grant(), kind, code, f"leak-{case}"))


def tallied(case: str, outcome: JobOutcome) -> JobOutcome:
    TALLY[case] = outcome.status
    assert outcome.status in ("rejected", "blocked", "held"), describe(outcome)
    return outcome


# -- SQL products refused before they run ---------------------------------------------

REJECTED_SQL = {
    "raw-table": "SELECT * FROM residents",
    "raw-columns": "SELECT person_id, gender, birth_date FROM residents",
    "hidden-where": "SELECT district_code, count(*) FROM residents WHERE name = '张伟' GROUP BY 1",
    "hidden-exists": "SELECT district_code, count(*) FROM residents r WHERE EXISTS "
    "(SELECT 1 FROM residents x WHERE x.phone LIKE '138%' AND x.person_id = r.person_id) "
    "GROUP BY 1",
    "hidden-in": "SELECT district_code, count(*) FROM residents WHERE person_id IN "
    "(SELECT person_id FROM residents WHERE phone = '13800000000') GROUP BY 1",
    "hidden-order-by": "SELECT district_code, count(*) FROM residents GROUP BY district_code, "
    "phone ORDER BY phone",
    "hidden-cte": "WITH p AS (SELECT name, district_code FROM residents) "
    "SELECT district_code, count(name) FROM p GROUP BY 1",
    "hidden-window": "SELECT district_code, count(*) OVER (PARTITION BY phone) FROM residents",
    "one-persons-sum": "SELECT district_code, sum(CASE WHEN person_id = 'abc' THEN 1 END) "
    "FROM residents GROUP BY 1",
    "one-persons-amount": "SELECT month, sum(CASE WHEN person_id = 'abc' THEN amount END) "
    "FROM social_insurance GROUP BY 1",
    "max-sensitive": "SELECT month, max(contribution_base) FROM social_insurance GROUP BY 1",
    "min-sensitive": "SELECT industry, min(registered_capital) FROM enterprises GROUP BY 1",
    "list-sensitive": "SELECT industry, list(employees) FROM enterprises GROUP BY 1",
    "hex-key": "SELECT hex(person_id), count(*) FROM residents GROUP BY 1",
    "base64-key": "SELECT to_base64(encode(person_id)), count(*) FROM residents GROUP BY 1",
    "reversed-key": "SELECT reverse(person_id), count(*) FROM residents GROUP BY 1",
    "hashed-key": "SELECT md5(person_id), count(*) FROM residents GROUP BY 1",
    "split-key": "SELECT left(person_id, 32), right(person_id, 32), count(*) FROM residents "
    "GROUP BY 1, 2",
    "key-compared": "SELECT count(*) FROM residents WHERE person_id > 'a'",
    "read-csv": "SELECT count(*) FROM read_csv('/etc/passwd')",
    "read-parquet": "SELECT count(*) FROM read_parquet('/data/residents.parquet')",
    "glob": "SELECT count(*) FROM glob('/data/*')",
    "set": "SET enable_external_access = true",
    "copy": "COPY residents TO '/output/x.csv'",
    "attach": "ATTACH '/tmp/x.db' AS x",
    "limit-probe": "SELECT count(*) FROM (SELECT gender FROM residents LIMIT 1)",
}


@pytest.mark.parametrize("case", sorted(REJECTED_SQL))
def test_sql_refused_before_running(city: City, case: str) -> None:
    outcome = run(city, case, "sql", REJECTED_SQL[case])
    assert outcome.status == "rejected", describe(outcome)
    assert outcome.run is None


# -- Jobs that run: stopped by the output rules ----------------------------------------

HEAD = """
import base64, hashlib
from sandbox.sdk import connect, publish_table, publish_text, publish_model_from
con = connect()
"""


def py(body: str) -> str:
    return HEAD + textwrap.dedent(body)


ENCODINGS = {
    "plain": "v",
    "upper": "v.upper()",
    "hex": "v.encode().hex()",
    "base64": "base64.b64encode(v.encode()).decode()",
    "base64-nopad": "base64.b64encode(v.encode()).decode().rstrip('=')",
    "reversed": "v[::-1]",
    "md5": "hashlib.md5(v.encode()).hexdigest()",
    "sha1": "hashlib.sha1(v.encode()).hexdigest()",
    "sha256": "hashlib.sha256(v.encode()).hexdigest()",
    "truncated": "v[:16]",
    "dashed": "'-'.join(v[i:i + 8] for i in range(0, 64, 8))",
}

# Ten legal persons' pseudonyms, encoded, as "group" labels with a fake count.
ENCODED_LABELS = """
rows = con.sql("SELECT DISTINCT legal_person_id FROM enterprises LIMIT 10").fetchall()
import pandas as pd
df = pd.DataFrame({{"label": [(lambda v: {encoding})(r[0]) for r in rows],
                   "n": [50] * len(rows)}})
publish_table("labels.csv", df, group_by=["label"], measures=[], count="n")
"""

SQL_JOBS = {
    # gender x birth year x district: mostly cells of a handful of persons.
    "qi-rows": "SELECT gender, birth_date, district_code, count(*) AS n FROM residents "
    "GROUP BY ALL",
    # social_insurance blocks small cells: month x birth year x district is mostly tiny.
    "tiny-cells": "SELECT s.month, r.birth_date, r.district_code, "
    "count(DISTINCT s.person_id) AS n FROM social_insurance AS s JOIN residents AS r "
    "ON s.person_id = r.person_id WHERE s.month >= DATE '2024-07-01' GROUP BY ALL",
    # Registered capital by industry x founding year: a few large firms dominate some cells.
    "dominance": "SELECT industry, established, count(*) AS n, "
    "sum(registered_capital) AS capital FROM enterprises GROUP BY ALL",
}

PYTHON_JOBS = {
    "py-raw-table": """
        df = con.sql("SELECT * FROM enterprises").df()
        publish_table("all.csv", df, group_by=list(df.columns), measures=[])
    """,
    "py-qi-rows": """
        df = con.sql(
            "SELECT industry, district_code, established, 1 AS n FROM enterprises"
        ).df()
        df = df.drop_duplicates(["industry", "district_code", "established"])
        publish_table("rows.csv", df, group_by=["industry", "district_code", "established"],
                      measures=[], count="n")
    """,
    **{f"py-key-{e}": ENCODED_LABELS.format(encoding=code) for e, code in ENCODINGS.items()},
    "py-key-split": """
        import pandas as pd
        rows = con.sql("SELECT DISTINCT legal_person_id FROM enterprises LIMIT 10").fetchall()
        df = pd.DataFrame({"a": [r[0][:32] for r in rows], "b": [r[0][32:] for r in rows],
                           "n": [50] * len(rows)})
        publish_table("parts.csv", df, group_by=["a", "b"], measures=[], count="n")
    """,
    "py-key-text": """
        import pandas as pd
        v = con.sql("SELECT legal_person_id FROM enterprises LIMIT 1").fetchall()[0][0]
        publish_text("note.txt", "Summary of the study. Reference: " + v)
        df = pd.DataFrame({"industry": ["all"], "n": [3000]})
        df = df.rename(columns={"n": "n_" + v[:20]})
        publish_table("t.csv", df, group_by=["industry"], measures=[], count="n_" + v[:20])
    """,
    "py-lying-count": """
        df = con.sql(
            "SELECT industry, district_code, established, avg(employees) AS mean_employees "
            "FROM enterprises GROUP BY ALL"
        ).df()
        df["n"] = 100  # a claim, not a count
        publish_table("fine.csv", df, group_by=["industry", "district_code", "established"],
                      measures=["mean_employees"], count="n")
    """,
    "py-max": """
        df = con.sql(
            "SELECT industry, count(*) AS n, max(registered_capital) AS top_capital "
            "FROM enterprises GROUP BY 1"
        ).df()
        publish_table("max.csv", df, group_by=["industry"], measures=["top_capital"], count="n")
    """,
    "py-blob": """
        import zlib
        raw = con.sql("SELECT * FROM enterprises").df().to_csv().encode()
        blob = base64.b64encode(zlib.compress(raw)).decode()
        publish_text("appendix.txt", "Appendix A\\n" + blob[:60000])
    """,
    "py-model-dof": """
        import statsmodels.api as sm
        df = con.sql("SELECT employees, registered_capital FROM enterprises LIMIT 8").df()
        e = df[["employees"]]
        X = sm.add_constant(e.assign(e2=df.employees ** 2, e3=df.employees ** 3))
        fit = sm.OLS(df.registered_capital, X).fit()
        publish_model_from("tiny.json", fit)
    """,
    "py-undeclared": """
        con.sql("SELECT * FROM enterprises").df().to_csv("/output/everything.csv")
    """,
    "py-undeclared-beside-a-table": """
        con.sql("SELECT * FROM enterprises").df().to_csv("/output/everything.csv")
        df = con.sql("SELECT industry, count(*) AS n FROM enterprises GROUP BY 1").df()
        publish_table("industries.csv", df, group_by=["industry"], measures=[], count="n")
    """,
}

# Under residents' policy (auto_release: sql_only), with the whole city's grant.
RESIDENT_JOBS = {
    "py-residents": """
        df = con.sql("SELECT gender, count(*) AS n FROM residents GROUP BY 1").df()
        publish_table("g.csv", df, group_by=["gender"], measures=[], count="n")
    """,
}

Results = dict[str, JobOutcome | Exception]


@pytest.fixture(scope="module")
def outcomes(city: City) -> Results:
    jobs: dict[str, Job] = {}
    for case, sql in SQL_JOBS.items():
        jobs[case] = (city_grant(), "sql", sql, f"leak-{case}")
    for case, body in PYTHON_JOBS.items():
        jobs[case] = (enterprise_grant(), "python", py(body), f"leak-{case}")
    for case, body in RESIDENT_JOBS.items():
        jobs[case] = (city_grant(), "python", py(body), f"leak-{case}")
    return run_concurrently(city, jobs)


def got(outcomes: Results, case: str) -> JobOutcome:
    """The outcome of a case run by the fixture: tallied, and never released."""
    return tallied(case, outcome_of(outcomes, case))


def test_fine_grouping_of_quasi_identifiers_is_not_released(outcomes: Results) -> None:
    outcome = got(outcomes, "qi-rows")
    assert outcome.status == "held", describe(outcome)
    assert "suppressed" in rules(outcome, "REVIEW")


def test_tiny_cells_under_block_policy_are_blocked(outcomes: Results) -> None:
    outcome = got(outcomes, "tiny-cells")
    assert outcome.status == "blocked", describe(outcome)
    assert "min_aggregation" in rules(outcome, "FAIL")


def test_dominated_totals_are_blocked(outcomes: Results) -> None:
    outcome = got(outcomes, "dominance")
    assert "dominance" in rules(outcome, "FAIL"), describe(outcome)
    assert outcome.status == "blocked"


def test_python_raw_table_is_blocked(outcomes: Results) -> None:
    outcome = got(outcomes, "py-raw-table")
    assert outcome.status == "blocked", describe(outcome)
    assert {"row_level", "identifier_leakage"} <= rules(outcome, "FAIL")


def test_python_quasi_identifier_rows_are_blocked(outcomes: Results) -> None:
    outcome = got(outcomes, "py-qi-rows")
    # Most rows are single firms: suppressed, and the table held as a probe.
    assert outcome.status in ("held", "blocked"), describe(outcome)
    assert "suppressed" in rules(outcome, "REVIEW") or rules(outcome, "FAIL")


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_python_encoded_pseudonyms_are_blocked(outcomes: Results, encoding: str) -> None:
    outcome = got(outcomes, f"py-key-{encoding}")
    assert outcome.status == "blocked", describe(outcome)
    assert "identifier_leakage" in rules(outcome, "FAIL"), describe(outcome)


def test_python_pseudonym_split_across_columns_is_blocked(outcomes: Results) -> None:
    outcome = got(outcomes, "py-key-split")
    assert "identifier_leakage" in rules(outcome, "FAIL"), describe(outcome)


def test_python_pseudonym_in_text_and_names_is_blocked(outcomes: Results) -> None:
    outcome = got(outcomes, "py-key-text")
    assert outcome.status == "blocked", describe(outcome)
    failing = {f.file for f in outcome.report.all_findings() if f.rule == "identifier_leakage"}  # type: ignore[union-attr]
    assert failing == {"note.txt", "t.csv"}, describe(outcome)


def test_python_lying_count_column_is_blocked(outcomes: Results) -> None:
    outcome = got(outcomes, "py-lying-count")
    assert outcome.status == "blocked", describe(outcome)
    assert "rare_combination" in rules(outcome, "FAIL")


def test_python_exact_sensitive_values_are_not_released(outcomes: Results) -> None:
    outcome = got(outcomes, "py-max")
    assert outcome.status in ("held", "blocked"), describe(outcome)
    assert "sensitive_value" in rules(outcome)


def test_python_compressed_payload_is_blocked(outcomes: Results) -> None:
    outcome = got(outcomes, "py-blob")
    assert outcome.status == "blocked", describe(outcome)
    assert "high_entropy" in rules(outcome, "FAIL")


def test_python_overfitted_model_is_held(outcomes: Results) -> None:
    outcome = got(outcomes, "py-model-dof")
    assert outcome.status == "held", describe(outcome)
    assert "model_dof" in rules(outcome, "REVIEW")


def test_python_undeclared_files_are_never_released(outcomes: Results) -> None:
    # Alone, the file is written on dummy data only: nothing is declared, so the
    # job never runs on real data. Beside a declared table it is refused.
    alone = outcome_of(outcomes, "py-undeclared")
    TALLY["py-undeclared"] = "nothing to release (nothing declared)"
    assert alone.report is None or alone.report.outputs == (), describe(alone)
    outcome = got(outcomes, "py-undeclared-beside-a-table")
    assert outcome.report is not None, describe(outcome)
    assert "everything.csv" not in {c.output.file for c in outcome.report.outputs}
    assert "undeclared_file" in rules(outcome), describe(outcome)


def test_python_resident_outputs_wait_for_a_reviewer(outcomes: Results) -> None:
    # A table the job computed itself is held under every policy: here sql_only.
    outcome = got(outcomes, "py-residents")
    assert outcome.status == "held", describe(outcome)
    assert not rules(outcome, "FAIL"), describe(outcome)


# -- Differencing: pairs run one after the other ---------------------------------------


def test_differencing_pair_is_blocked(city: City) -> None:
    first = city.pipeline.run(
        city_grant(),
        "sql",
        "SELECT district_code, count(*) AS n FROM residents GROUP BY 1",
        "leak-diff-1",
    )
    assert first.status == "released", describe(first)
    # The same counts without the (few) oldest residents, born before 1938:
    # subtracting one release from the other would tell about them.
    outcome = run(
        city,
        "differencing",
        "sql",
        "SELECT district_code, count(*) AS n FROM residents "
        "WHERE birth_date > DATE '1937-12-31' GROUP BY 1",
    )
    assert outcome.status == "blocked", describe(outcome)
    assert "differencing" in rules(outcome, "FAIL")


def test_differencing_across_operators_and_grants(city: City) -> None:
    # Another operator, under another grant, released the totals by gender; these
    # leave out the residents born in 1936 (the oldest year): fewer than k of one gender.
    base = city.pipeline.run(
        city_grant("g-other", "op-9"),
        "sql",
        "SELECT gender, count(*) AS n FROM residents GROUP BY 1",
        "leak-diff-other-1",
    )
    assert base.status == "released", describe(base)
    outcome = run(
        city,
        "differencing-other-grant",
        "sql",
        "SELECT gender, count(*) AS n FROM residents WHERE birth_date > DATE '1936-12-31' "
        "GROUP BY 1",
    )
    assert "differencing" in rules(outcome, "FAIL"), describe(outcome)
