"""Stage 2, static checks of an SQL product: a leak corpus that must be rejected
(each with its rule and clause) and a utility corpus that must pass (and run)."""

from __future__ import annotations

import re

import duckdb
import pytest

from sandbox.errors import SandboxError
from sandbox.intake.policy import ExposurePolicy, parse_policy
from sandbox.precheck.sql import (
    ALLOWED_AGGREGATES,
    RULES,
    CheckedQuery,
    Rejection,
    SqlRejected,
    can_run_sql,
    check_sql,
)
from sandbox.precheck.sql.relations import view_schema
from tests.support.engine import ROOT

# residents.yaml as shipped, plus an aggregate-only income column.
RESIDENTS = """\
dataset: residents
entity_column: person_id
k: 10
columns:
  person_id: {class: identifier, level: 4, visibility: join_key}
  name: {class: identifier, level: 4, visibility: hidden}
  phone: {class: identifier, level: 4, visibility: hidden}
  gender: {class: quasi_identifier, level: 2, visibility: group_key}
  birth_date: {class: quasi_identifier, level: 3, visibility: group_key,
               generalise: {truncate: year}}
  district_code: {class: quasi_identifier, level: 2, visibility: group_key}
  district_name: {class: attribute, level: 1, visibility: plain}
  income: {class: sensitive, level: 3, visibility: aggregate_only,
           domain: {min: 0, max: 1000000}}
"""


def policies() -> dict[str, ExposurePolicy]:
    social = (ROOT / "policies" / "exposure" / "social_insurance.yaml").read_text()
    return {"residents": parse_policy(RESIDENTS), "social_insurance": parse_policy(social)}


def rejections(sql: str, **kwargs: object) -> list[Rejection]:
    with pytest.raises(SqlRejected) as info:
        check_sql(sql, policies(), **kwargs)  # type: ignore[arg-type]
    return info.value.rejections


# (sql, clause, rule): the rejection each query must at least produce.
LEAKS: list[tuple[str, str, str]] = [
    # -- hidden columns, in every clause ---------------------------------------------
    ("SELECT name, COUNT(*) FROM residents GROUP BY name", "SELECT", "hidden_column"),
    ("SELECT COUNT(*) FROM residents WHERE name = 'x'", "WHERE", "hidden_column"),
    ("SELECT COUNT(*) FROM residents GROUP BY phone", "GROUP BY", "hidden_column"),
    (
        "SELECT COUNT(*) FROM residents r WHERE EXISTS "
        "(SELECT 1 FROM residents x WHERE x.phone LIKE '139%')",
        "WHERE",
        "hidden_column",
    ),
    (
        "SELECT COUNT(*) FROM residents WHERE district_code IN "
        "(SELECT district_code FROM residents WHERE name = 'x')",
        "WHERE",
        "hidden_column",
    ),
    (
        "SELECT COUNT(*) FROM residents WHERE district_code IN (SELECT name FROM residents)",
        "WHERE",
        "hidden_column",
    ),
    (
        "SELECT gender, COUNT(*) FROM residents GROUP BY gender ORDER BY MAX(name)",
        "ORDER BY",
        "hidden_column",
    ),
    (
        "SELECT gender, COUNT(*) FROM residents GROUP BY gender HAVING MAX(phone) > 'a'",
        "HAVING",
        "hidden_column",
    ),
    (
        "WITH t AS (SELECT name, gender FROM residents) "
        "SELECT gender, COUNT(*) FROM t GROUP BY gender",
        "SELECT",
        "hidden_column",
    ),
    (
        "SELECT gender, COUNT(*), RANK() OVER (PARTITION BY MAX(phone) ORDER BY COUNT(*)) "
        "FROM residents GROUP BY gender",
        "WINDOW",
        "hidden_column",
    ),
    (
        "SELECT COUNT(*) FROM residents r JOIN social_insurance s ON r.name = s.person_id",
        "JOIN",
        "hidden_column",
    ),
    (
        "SELECT COUNT(*) FROM (SELECT phone AS p FROM residents) t WHERE p LIKE '13%'",
        "SELECT",
        "hidden_column",
    ),
    # -- aggregate-only columns --------------------------------------------------------
    ("SELECT income FROM residents", "SELECT", "aggregate_only"),
    (
        "SELECT gender, income, COUNT(*) FROM residents GROUP BY gender, income",
        "SELECT",
        "aggregate_only",
    ),
    ("SELECT COUNT(*) FROM residents WHERE income > 100000", "WHERE", "aggregate_only"),
    ("SELECT COUNT(*) FROM residents GROUP BY income", "GROUP BY", "aggregate_only"),
    ("SELECT district_code, MIN(income) FROM residents GROUP BY 1", "SELECT", "aggregate_only"),
    ("SELECT district_code, MAX(income) FROM residents GROUP BY 1", "SELECT", "aggregate_only"),
    ("SELECT MEDIAN(income) FROM residents", "SELECT", "aggregate_only"),
    ("SELECT QUANTILE_CONT(income, 0.9) FROM residents", "SELECT", "aggregate_only"),
    ("SELECT MODE(income) FROM residents", "SELECT", "aggregate_only"),
    ("SELECT ANY_VALUE(income) FROM residents", "SELECT", "aggregate_only"),
    ("SELECT gender, LIST(income) FROM residents GROUP BY 1", "SELECT", "aggregate_only"),
    ("SELECT gender, LIST(income) FROM residents GROUP BY 1", "SELECT", "forbidden_function"),
    (
        "SELECT STRING_AGG(CAST(income AS VARCHAR), ',') FROM residents",
        "SELECT",
        "aggregate_only",
    ),
    ("SELECT ARG_MAX(district_code, income) FROM residents", "SELECT", "aggregate_only"),
    ("SELECT SUM(income) OVER () FROM residents", "SELECT", "window_aggregate"),
    (
        "SELECT district_code, SUM(income) OVER (PARTITION BY district_code) FROM residents",
        "SELECT",
        "window_aggregate",
    ),
    (
        "SELECT gender, COUNT(*) FROM residents GROUP BY gender HAVING MAX(income) > 1",
        "HAVING",
        "aggregate_only",
    ),
    (
        "SELECT gender, SUM(income) FROM residents GROUP BY gender ORDER BY MAX(income)",
        "ORDER BY",
        "aggregate_only",
    ),
    (
        "SELECT CASE WHEN income > 1 THEN 'rich' END AS c, COUNT(*) FROM residents GROUP BY 1",
        "GROUP BY",
        "aggregate_only",
    ),
    (
        "SELECT COUNT(*) FROM residents r JOIN social_insurance s "
        "ON r.person_id = s.person_id AND r.income = s.amount",
        "JOIN",
        "aggregate_only",
    ),
    (
        "WITH t AS (SELECT district_code, income FROM residents) "
        "SELECT district_code, COUNT(*) FROM t GROUP BY district_code, income",
        "GROUP BY",
        "aggregate_only",
    ),
    (
        "SELECT band, COUNT(*) FROM (SELECT CASE WHEN income < 5000 THEN 'low' END AS band "
        "FROM residents) t GROUP BY band",
        "GROUP BY",
        "aggregate_only",
    ),
    (  # an aggregate from a subquery is a result, not a new aggregate-only input
        "WITH t AS (SELECT gender, district_code, SUM(income) AS s FROM residents GROUP BY ALL) "
        "SELECT MAX(s) FROM t",
        "SELECT",
        "aggregate_only",
    ),
    (
        "WITH t AS (SELECT district_code, SUM(income) AS s FROM residents GROUP BY 1) "
        "SELECT s, COUNT(*) FROM t GROUP BY s",
        "GROUP BY",
        "aggregate_only",
    ),
    # -- picking one row: ranking over rows, LIMIT in a subquery -----------------------------
    (
        "WITH t AS (SELECT district_code, income, ROW_NUMBER() OVER "
        "(PARTITION BY district_code ORDER BY birth_date) AS rn FROM residents) "
        "SELECT district_code, SUM(income) FROM t WHERE rn = 1 GROUP BY 1",
        "SELECT",
        "window_function",
    ),
    (
        "WITH t AS (SELECT income FROM residents ORDER BY birth_date LIMIT 1) "
        "SELECT SUM(income) FROM t",
        "LIMIT",
        "row_selection",
    ),
    # -- singling out an entity inside an aggregate ---------------------------------------
    (
        "SELECT SUM(CASE WHEN person_id = 'x' THEN income END) FROM residents",
        "SELECT",
        "entity_condition_in_aggregate",
    ),
    (
        "SELECT SUM(income) FILTER (WHERE person_id = 'x') FROM residents",
        "SELECT",
        "entity_condition_in_aggregate",
    ),
    (
        "SELECT SUM(income) FILTER (WHERE person_id IN "
        "(SELECT person_id FROM social_insurance WHERE month = DATE '2025-01-01')) "
        "FROM residents",
        "SELECT",
        "entity_condition_in_aggregate",
    ),
    (
        "SELECT AVG(IF(person_id = 'x', income, NULL)) FROM residents",
        "SELECT",
        "entity_condition_in_aggregate",
    ),
    (
        "SELECT SUM(CASE person_id WHEN 'x' THEN income END) FROM residents",
        "SELECT",
        "entity_condition_in_aggregate",
    ),
    (
        "SELECT SUM(income * CAST(person_id = 'x' AS INT)) FROM residents",
        "SELECT",
        "entity_condition_in_aggregate",
    ),
    (
        "SELECT s.month, SUM(CASE WHEN s.credit_code = 'x' THEN s.amount END) "
        "FROM social_insurance s GROUP BY 1",
        "SELECT",
        "entity_condition_in_aggregate",
    ),
    (
        "WITH t AS (SELECT person_id = 'x' AS me, income FROM residents) "
        "SELECT SUM(CASE WHEN me THEN income END) FROM t",
        "SELECT",
        "entity_condition_in_aggregate",
    ),
    # -- conditions on aggregate-only values inside aggregates ------------------------------
    *(
        (f"SELECT district_code, {agg} FROM residents GROUP BY 1", "SELECT", "nonlinear_measure")
        for agg in (
            "STDDEV_POP(CASE WHEN income > 5000 THEN income END)",
            "SUM(CASE WHEN income > 5000 THEN 1 ELSE 0 END)",
            "COUNT(*) FILTER (WHERE income > 5000)",
            "SUM(income) FILTER (WHERE income > 5000)",
            "SUM(IF(income > 5000, 1, 0))",
            "SUM(NULLIF(income, 5000))",
            "SUM(GREATEST(income - 5000, 0))",
            "SUM(LEAST(income, 5000))",
            "SUM(FLOOR(income / 5000))",
            "SUM(ROUND(income / 5000))",
            "SUM(ABS(income - 5000))",
            "SUM(CAST(income / 5000 AS INT))",
            "SUM(income // 5000)",
            "SUM(income % 5000)",
            "AVG(COALESCE(income, 0))",
            "SUM(LN(income))",
            "SUM(income * income)",
            "SUM(1 / income)",
            "SUM(income / district_code)",
            "COUNT(DISTINCT income)",
            "SUM(DISTINCT income)",
            "SUM(CASE income WHEN 5000 THEN 1 END)",
            "SUM(CAST(income > 5000 AS INT))",
            "AVG(LENGTH(CAST(income AS VARCHAR)))",
        )
    ),
    (
        "WITH t AS (SELECT district_code, GREATEST(income - 5000, 0) AS x FROM residents) "
        "SELECT district_code, SUM(x) FROM t GROUP BY 1",
        "SELECT",
        "nonlinear_measure",
    ),
    (
        "WITH t AS (SELECT district_code, SUM(income) AS s FROM residents GROUP BY 1) "
        "SELECT SUM(CASE WHEN s > 5000 THEN 1 END) FROM t",
        "SELECT",
        "nonlinear_measure",
    ),
    (
        "WITH t AS (SELECT district_code, GREATEST(SUM(income) - 5000, 0) AS s FROM residents "
        "GROUP BY 1) SELECT SUM(s) FROM t",
        "SELECT",
        "nonlinear_measure",
    ),
    # -- picking rows or groups by an aggregate that is not judged ---------------------------
    (
        "SELECT COUNT(*) FROM (SELECT district_code, SUM(income) AS s FROM residents "
        "GROUP BY 1) t WHERE s > 5000",
        "WHERE",
        "measure_filter",
    ),
    (
        "WITH t AS (SELECT district_code, SUM(income) AS s FROM residents GROUP BY 1) "
        "SELECT district_code, s FROM t WHERE s > 1000000 ORDER BY s DESC",
        "WHERE",
        "measure_filter",
    ),
    (
        "SELECT COUNT(*) FROM residents WHERE district_code IN (SELECT district_code "
        "FROM residents GROUP BY 1 HAVING SUM(income) > 5000)",
        "HAVING",
        "measure_filter",
    ),
    (
        "SELECT COUNT(*) FROM residents WHERE (SELECT SUM(income) FROM residents "
        "WHERE gender = 'x') > 5000",
        "WHERE",
        "measure_filter",
    ),
    (
        "SELECT SUM(n) FROM (SELECT district_code, COUNT(*) AS n FROM residents GROUP BY 1 "
        "ORDER BY SUM(income) DESC LIMIT 1) t",
        "ORDER BY",
        "measure_filter",
    ),
    (
        "SELECT COUNT(*) FROM (SELECT district_code, RANK() OVER (ORDER BY SUM(income)) AS r "
        "FROM residents GROUP BY 1) t WHERE r = 1",
        "WHERE",
        "measure_filter",
    ),
    (
        "SELECT t.district_code, COUNT(*) FROM residents r JOIN (SELECT district_code, "
        "CASE WHEN SUM(income) > 5000 THEN 1 END AS f FROM residents GROUP BY 1) t "
        "ON r.district_code = t.district_code GROUP BY 1",
        "SELECT",
        "measure_filter",
    ),
    (
        "WITH t AS (SELECT district_code, SUM(income) AS s FROM residents GROUP BY 1) "
        "SELECT district_code, CASE WHEN s > 5000 THEN 'high' END FROM t",
        "SELECT",
        "measure_filter",
    ),
    # -- join keys ------------------------------------------------------------------------
    ("SELECT person_id, COUNT(*) FROM residents GROUP BY person_id", "SELECT", "join_key_misuse"),
    ("SELECT COUNT(*) FROM residents GROUP BY person_id", "GROUP BY", "join_key_misuse"),
    ("SELECT COUNT(*) FROM residents WHERE person_id = 'abc'", "WHERE", "join_key_misuse"),
    (
        "SELECT gender, COUNT(*) FROM residents GROUP BY gender ORDER BY MIN(person_id)",
        "ORDER BY",
        "join_key_misuse",
    ),
    (
        "SELECT gender, COUNT(*) FROM residents GROUP BY gender HAVING MAX(person_id) > 'a'",
        "HAVING",
        "join_key_misuse",
    ),
    (
        "SELECT gender, COUNT(*), RANK() OVER (PARTITION BY MIN(person_id) ORDER BY COUNT(*)) "
        "FROM residents GROUP BY gender",
        "WINDOW",
        "join_key_misuse",
    ),
    (
        "SELECT COUNT(*) FROM residents r JOIN social_insurance s ON r.person_id = 'x'",
        "JOIN",
        "join_key_misuse",
    ),
    (
        "SELECT COUNT(*) FROM residents r JOIN social_insurance s ON r.person_id = s.month",
        "JOIN",
        "join_key_misuse",
    ),
    ("SELECT COUNT(person_id) FROM residents", "SELECT", "join_key_misuse"),
    ("SELECT COUNT(DISTINCT LEFT(person_id, 2)) FROM residents", "SELECT", "join_key_misuse"),
    ("SELECT MAX(person_id) FROM residents", "SELECT", "join_key_misuse"),
    (
        "SELECT credit_code, SUM(amount) FROM social_insurance GROUP BY 1",
        "GROUP BY",
        "join_key_misuse",
    ),
    (
        "SELECT p, COUNT(*) FROM (SELECT person_id AS p FROM residents) t GROUP BY p",
        "GROUP BY",
        "join_key_misuse",
    ),
    (
        "SELECT COUNT(*) FROM residents r WHERE EXISTS "
        "(SELECT 1 FROM social_insurance s WHERE s.person_id = r.person_id)",
        "WHERE",
        "join_key_misuse",
    ),
    (
        "SELECT SUM(r.income) FROM residents r JOIN (SELECT person_id AS k FROM "
        "social_insurance UNION ALL SELECT 'abc') c ON r.person_id = c.k",
        "SELECT",
        "join_key_misuse",
    ),
    # -- row-level output --------------------------------------------------------------
    ("SELECT district_code FROM residents", "SELECT", "row_level_output"),
    ("SELECT DISTINCT district_code FROM residents", "SELECT", "row_level_output"),
    ("SELECT 1 FROM residents", "SELECT", "row_level_output"),
    ("WITH t AS (SELECT gender FROM residents) SELECT gender FROM t", "SELECT", "row_level_output"),
    (
        "SELECT gender, COUNT(*) FROM residents GROUP BY gender "
        "UNION ALL SELECT gender, 1 FROM residents",
        "SELECT",
        "row_level_output",
    ),
    ("SELECT (SELECT district_code FROM residents LIMIT 1)", "SELECT", "row_level_output"),
    # -- *, table functions, files, catalogs, settings ------------------------------------
    ("SELECT * FROM residents", "SELECT", "select_star"),
    ("SELECT r.* FROM residents r", "SELECT", "select_star"),
    ("SELECT COUNT(*), * EXCLUDE (name) FROM residents", "SELECT", "select_star"),
    ("SELECT COLUMNS('inc.*') FROM residents", "SELECT", "forbidden_function"),
    ("SELECT COUNT(*) FROM read_csv('/etc/passwd')", "FROM", "forbidden_function"),
    ("SELECT COUNT(*) FROM read_parquet('/data/residents.parquet')", "FROM", "forbidden_function"),
    ("SELECT COUNT(*) FROM read_json('/data/x.json')", "FROM", "forbidden_function"),
    ("SELECT COUNT(*) FROM glob('/data/*')", "FROM", "forbidden_function"),
    ("SELECT COUNT(*) FROM 'file.parquet'", "FROM", "file_access"),
    ("SELECT COUNT(*) FROM 'residents'", "FROM", "file_access"),
    ("SELECT COUNT(*) FROM residents JOIN '/data/x.csv' ON true", "FROM", "file_access"),
    ('SELECT COUNT(*) FROM "residents.parquet"', "FROM", "file_access"),
    ("SELECT * FROM duckdb_settings()", "FROM", "forbidden_function"),
    ("SELECT COUNT(*) FROM information_schema.tables", "FROM", "unknown_table"),
    ("SELECT COUNT(*) FROM pg_catalog.pg_class", "FROM", "unknown_table"),
    ("SELECT COUNT(*) FROM duckdb_tables", "FROM", "unknown_table"),
    ("SELECT COUNT(*) FROM sqlite_master", "FROM", "unknown_table"),
    ("SELECT COUNT(*) FROM query('SELECT name FROM residents')", "FROM", "forbidden_function"),
    ("SELECT COUNT(*) FROM query_table('residents')", "FROM", "forbidden_function"),
    ("SELECT getenv('HOME')", "SELECT", "forbidden_function"),
    ("SELECT current_setting('access_mode')", "SELECT", "forbidden_function"),
    ("SELECT read_text('/etc/passwd')", "SELECT", "forbidden_function"),
    ("SELECT read_blob('/etc/passwd')", "SELECT", "forbidden_function"),
    (
        "SELECT COUNT(*) FROM residents WHERE district_code = getvariable('x')",
        "WHERE",
        "forbidden_function",
    ),
    ("SELECT histogram(district_code) FROM residents", "SELECT", "forbidden_function"),
    ("SELECT COUNT(*) FROM residents WHERE district_code = $1", "WHERE", "forbidden_syntax"),
    ("SELECT COUNT(*) FROM residents USING SAMPLE 10%", "STATEMENT", "forbidden_syntax"),
    (
        "SELECT COUNT(*) FROM residents POSITIONAL JOIN social_insurance",
        "FROM",
        "forbidden_syntax",
    ),
    ("SELECT COUNT(*) FROM residents NATURAL JOIN social_insurance", "FROM", "forbidden_syntax"),
    ("SELECT COUNT(*) FROM residents r, LATERAL (SELECT r.income) x", "FROM", "forbidden_syntax"),
    ("WITH RECURSIVE t AS (SELECT 1 AS n) SELECT COUNT(*) FROM t", "WITH", "forbidden_syntax"),
    ("SELECT COUNT(*) FROM residents LIMIT (SELECT 1)", "LIMIT", "forbidden_syntax"),
    (  # renames person_id to gender
        "SELECT r.gender, COUNT(*) FROM residents AS r(gender) GROUP BY 1",
        "FROM",
        "forbidden_syntax",
    ),
    (  # BY NAME matches columns by name: here it would put person_id under g
        "SELECT g, COUNT(*) FROM (SELECT gender AS g, person_id AS p FROM residents "
        "UNION ALL BY NAME SELECT gender AS p, person_id AS g FROM residents) t GROUP BY g",
        "FROM",
        "forbidden_syntax",
    ),
    (
        "SELECT DISTINCT ON (district_code) district_code FROM residents",
        "STATEMENT",
        "forbidden_syntax",
    ),
    # -- statements other than one SELECT ------------------------------------------------
    ("SET access_mode = 'READ_WRITE'", "STATEMENT", "forbidden_statement"),
    ("RESET access_mode", "STATEMENT", "forbidden_statement"),
    ("PRAGMA database_list", "STATEMENT", "forbidden_statement"),
    ("ATTACH '/tmp/x.db' AS x", "STATEMENT", "forbidden_statement"),
    ("DETACH x", "STATEMENT", "forbidden_statement"),
    ("COPY residents TO '/tmp/out.csv'", "STATEMENT", "forbidden_statement"),
    ("COPY (SELECT COUNT(*) FROM residents) TO '/tmp/out.csv'", "STATEMENT", "forbidden_statement"),
    ("INSTALL httpfs", "STATEMENT", "forbidden_statement"),
    ("LOAD httpfs", "STATEMENT", "forbidden_statement"),
    ("CREATE TABLE t AS SELECT COUNT(*) FROM residents", "STATEMENT", "forbidden_statement"),
    ("INSERT INTO residents (gender) VALUES ('x')", "STATEMENT", "forbidden_statement"),
    ("UPDATE residents SET gender = 'x'", "STATEMENT", "forbidden_statement"),
    ("DELETE FROM residents", "STATEMENT", "forbidden_statement"),
    ("DROP TABLE residents", "STATEMENT", "forbidden_statement"),
    ("CALL pragma_version()", "STATEMENT", "forbidden_statement"),
    ("DESCRIBE residents", "STATEMENT", "forbidden_statement"),
    ("SUMMARIZE residents", "STATEMENT", "forbidden_statement"),
    ("USE x", "STATEMENT", "forbidden_statement"),
    ("SELECT COUNT(*) FROM residents; SELECT 1", "STATEMENT", "forbidden_statement"),
    ("SELECT 1; DROP TABLE residents", "STATEMENT", "forbidden_statement"),
    ("", "STATEMENT", "forbidden_statement"),
    ("EXPORT DATABASE '/tmp/x'", "STATEMENT", "parse_error"),
    ("SELEC 1", "STATEMENT", "parse_error"),
    # -- resolution ----------------------------------------------------------------------
    ("SELECT COUNT(*) FROM nosuch", "FROM", "unknown_table"),
    ("SELECT COUNT(*) FROM enterprises", "FROM", "unknown_table"),
    ("SELECT nosuch, COUNT(*) FROM residents GROUP BY 1", "SELECT", "unknown_column"),
    ("SELECT COUNT(*) FROM residents r WHERE r.nosuch = 1", "WHERE", "unknown_column"),
    ("SELECT COUNT(*) FROM residents r WHERE x.gender = 'x'", "WHERE", "unknown_column"),
    (
        "WITH t AS (SELECT gender FROM residents) SELECT t.income, COUNT(*) FROM t GROUP BY 1",
        "SELECT",
        "unknown_column",
    ),
    (
        "SELECT gender, COUNT(*) FROM residents a JOIN residents b "
        "ON a.person_id = b.person_id GROUP BY gender",
        "SELECT",
        "ambiguous_column",
    ),
    (
        "SELECT COUNT(*) FROM residents a JOIN social_insurance a ON true",
        "FROM",
        "ambiguous_column",
    ),
    (  # DuckDB renames the first column only: t has two columns b
        "WITH t(b) AS (SELECT gender AS a, person_id AS b FROM residents) "
        "SELECT b, COUNT(*) FROM t GROUP BY b",
        "SELECT",
        "ambiguous_column",
    ),
]


@pytest.mark.parametrize(("sql", "clause", "rule"), LEAKS)
def test_leak_is_rejected(sql: str, clause: str, rule: str) -> None:
    found = rejections(sql)
    assert (clause, rule) in {(r.clause, r.rule) for r in found}, found
    assert not can_run_sql(sql, policies())


@pytest.mark.parametrize("sql", sorted({sql for sql, _, _ in LEAKS}))
def test_rejections_name_clause_and_known_rule_and_no_literal(sql: str) -> None:
    found = rejections(sql)
    literals = [v for v in re.findall(r"'([^']*)'", sql) if len(v) >= 4]
    for r in found:
        assert r.rule in RULES
        assert r.message.startswith(f"{r.clause}: ")
        assert not any(v in r.message for v in literals), r.message


def test_every_rule_has_a_leak_case() -> None:
    assert {rule for _, _, rule in LEAKS} == set(RULES)


def test_messages_never_echo_literals() -> None:
    secret = "SECRET-4711-张三"
    sql = (
        f"SELECT SUM(CASE WHEN person_id = '{secret}' THEN income END), name "
        f"FROM residents WHERE phone = '{secret}' AND income > 0 "
        f"AND district_code IN (SELECT district_code FROM residents WHERE person_id = '{secret}')"
    )
    with pytest.raises(SqlRejected) as info:
        check_sql(sql, policies())
    assert len(info.value.rejections) >= 5
    assert secret not in str(info.value)
    assert all(secret not in r.message for r in info.value.rejections)
    for bad in (f"SELEC '{secret}'", f"SELECT COUNT(*) FROM '{secret}.csv'"):
        with pytest.raises(SqlRejected) as info:
            check_sql(bad, policies())
        assert secret not in str(info.value)


def test_all_problems_are_listed_with_view_and_column() -> None:
    found = rejections(
        "SELECT name, income, person_id FROM residents WHERE phone = 'x' ORDER BY income"
    )
    messages = {r.message for r in found}
    assert "SELECT: column residents.name is hidden" in messages
    assert "WHERE: column residents.phone is hidden" in messages
    assert {(r.clause, r.rule) for r in found} >= {
        ("SELECT", "aggregate_only"),
        ("SELECT", "join_key_misuse"),
        ("ORDER BY", "aggregate_only"),
        ("SELECT", "row_level_output"),
    }
    assert any("residents.income" in m for m in messages)
    assert any("residents.person_id" in m for m in messages)


def test_sql_rejected_is_a_sandbox_error() -> None:
    with pytest.raises(SandboxError) as info:
        check_sql("SELECT name FROM residents", policies())
    assert isinstance(info.value, SqlRejected)
    assert "residents.name" in str(info.value)


UTILITY: list[str] = [
    "SELECT district_code, COUNT(*) AS n FROM residents GROUP BY district_code",
    "SELECT district_code, gender, COUNT(*) AS n, SUM(income) AS total, AVG(income) AS mean "
    "FROM residents GROUP BY district_code, gender",
    "SELECT gender, STDDEV(income), STDDEV_SAMP(income), STDDEV_POP(income), VARIANCE(income), "
    "VAR_SAMP(income), VAR_POP(income) FROM residents GROUP BY gender",
    "SELECT COUNT(*), COUNT(income), COUNT(DISTINCT person_id), AVG(income) FROM residents",
    # age pyramids on the generalised birth year
    "SELECT YEAR(birth_date) // 10 * 10 AS decade, gender, COUNT(*) AS n "
    "FROM residents GROUP BY ALL ORDER BY decade, gender",
    "SELECT date_trunc('year', birth_date) AS y, gender, COUNT(*) FROM residents "
    "GROUP BY 1, 2 ORDER BY 1",
    "SELECT CASE WHEN YEAR(birth_date) < 1965 THEN '60+' WHEN YEAR(birth_date) < 2007 "
    "THEN '18-59' ELSE '<18' END AS band, gender, COUNT(*) FROM residents GROUP BY 1, 2",
    # joins on the entity pseudonym
    "SELECT r.district_code, COUNT(DISTINCT r.person_id) AS people, SUM(s.amount) AS paid "
    "FROM residents r JOIN social_insurance s USING (person_id) GROUP BY r.district_code",
    "SELECT r.gender, COUNT(DISTINCT r.person_id) AS people FROM residents r "
    "JOIN social_insurance s ON r.person_id = s.person_id GROUP BY r.gender",
    "SELECT gender, COUNT(DISTINCT person_id) FROM residents JOIN social_insurance "
    "USING (person_id) GROUP BY gender",
    "SELECT r.district_code, COUNT(DISTINCT r.person_id), COUNT(DISTINCT s.person_id) "
    "FROM residents r LEFT JOIN social_insurance s ON r.person_id = s.person_id GROUP BY 1",
    "SELECT district_code, COUNT(*) FROM residents GROUP BY district_code HAVING COUNT(*) >= 10",
    # CTEs aggregating, then re-aggregating
    "WITH by_district AS (SELECT district_code, gender, COUNT(*) AS n, SUM(income) AS total "
    "FROM residents GROUP BY ALL) "
    "SELECT gender, SUM(n) AS n, SUM(total) AS total FROM by_district GROUP BY gender",
    "WITH t AS (SELECT district_code, SUM(income) AS s FROM residents GROUP BY 1) "
    "SELECT district_code, s FROM t ORDER BY s DESC",
    "SELECT decade, COUNT(*), SUM(income) FROM (SELECT YEAR(birth_date) // 10 * 10 AS decade, "
    "income FROM residents) t GROUP BY decade",
    "SELECT COUNT(DISTINCT p) FROM (SELECT person_id AS p FROM residents "
    "UNION SELECT person_id FROM social_insurance) t",
    # set operations
    "SELECT 'gender' AS dim, gender AS value, COUNT(*) AS n FROM residents GROUP BY gender "
    "UNION ALL SELECT 'district', district_code, COUNT(*) FROM residents GROUP BY district_code "
    "ORDER BY n DESC",
    "SELECT gender FROM residents GROUP BY gender HAVING COUNT(*) > 5 "
    "INTERSECT SELECT gender FROM residents GROUP BY gender",
    # conditional aggregates on group keys and plain columns
    "SELECT r.district_code, SUM(CASE WHEN r.gender = '男' THEN s.amount END) AS male_paid "
    "FROM residents r JOIN social_insurance s USING (person_id) GROUP BY 1",
    "SELECT district_code, COUNT(*) FILTER (WHERE gender = '女') AS women FROM residents "
    "GROUP BY 1",
    "SELECT district_code, COUNT(DISTINCT person_id) FILTER (WHERE gender = '男') FROM residents "
    "GROUP BY 1",
    "SELECT district_code, AVG(CASE WHEN gender = '女' THEN 1.0 ELSE 0.0 END) AS share, "
    "SUM(income * 2 - 1) / 12.0 AS s, AVG(CAST(income AS DOUBLE) / 100) FROM residents "
    "GROUP BY 1",
    "SELECT district_code, SUM(income) FILTER (WHERE gender = '女') AS women FROM residents "
    "GROUP BY 1 HAVING SUM(income) > 1000 ORDER BY SUM(income) DESC LIMIT 3",
    # filters, subqueries, ranking, ordering, limits
    "SELECT gender, COUNT(*) FROM residents WHERE district_name = '渝中区' "
    "AND birth_date >= DATE '1990-01-01' GROUP BY gender",
    "SELECT gender, COUNT(*) FROM residents WHERE district_code IN (SELECT district_code "
    "FROM residents GROUP BY district_code HAVING COUNT(*) > 100) GROUP BY gender",
    "SELECT district_code, COUNT(*) * 1.0 / (SELECT COUNT(*) FROM residents) AS share "
    "FROM residents GROUP BY 1",
    "SELECT district_code, SUM(income) AS total, RANK() OVER (ORDER BY SUM(income) DESC) AS r "
    "FROM residents GROUP BY district_code",
    "SELECT gender, COUNT(*) AS c FROM residents GROUP BY gender QUALIFY RANK() OVER "
    "(ORDER BY c) < 3",
    "SELECT district_code, SUM(income) AS total FROM residents GROUP BY 1 "
    "ORDER BY total DESC LIMIT 5 OFFSET 1",
    "SELECT s.month, COUNT(DISTINCT s.person_id) AS contributors, SUM(s.amount) "
    "FROM social_insurance s GROUP BY s.month",
    "FROM residents SELECT gender, COUNT(*) GROUP BY ALL",
    "SELECT gender, COUNT(*) FROM residents GROUP BY ROLLUP (gender)",
    'SELECT "Gender", COUNT(*) FROM Residents GROUP BY 1',
]


@pytest.mark.parametrize("sql", UTILITY)
def test_utility_query_passes_and_runs(sql: str, database: duckdb.DuckDBPyConnection) -> None:
    checked = check_sql(sql, policies())
    assert isinstance(checked, CheckedQuery)
    assert set(checked.views) <= {"residents", "social_insurance"}
    assert can_run_sql(sql, policies())
    # The normalised SQL is what runs: it must be valid DuckDB over the views.
    result = database.execute(checked.sql)
    assert [d[0] for d in result.description] == list(checked.output_columns)
    result.fetchall()


@pytest.fixture
def database() -> duckdb.DuckDBPyConnection:
    """Tables shaped like the views: the entity column plus every non-hidden column."""
    con = duckdb.connect()
    for policy in policies().values():
        types = view_schema(policy)
        cols = [c for c in policy.visible_columns() if c != policy.entity_column]
        cols = [policy.entity_column, *cols]
        con.execute(f"CREATE TABLE {policy.dataset} ({', '.join(f'{c} {types[c]}' for c in cols)})")
    con.execute(
        "INSERT INTO residents VALUES ('a1', '男', DATE '1980-01-01', '500103', '渝中区', 9000),"
        " ('b2', '女', DATE '1995-01-01', '500103', '渝中区', 12000)"
    )
    con.execute(
        "INSERT INTO social_insurance VALUES ('a1', 'c1', DATE '2025-01-01', 5000, 500),"
        " ('b2', 'c1', DATE '2025-01-01', 6000, 600)"
    )
    return con


def test_lineage_and_outputs() -> None:
    c = check_sql(UTILITY[0], policies())
    assert c.views == ("residents",)
    assert c.columns == (("residents", "district_code"),)
    assert c.output_columns == ("district_code", "n")

    c = check_sql(UTILITY[7], policies())  # USING join
    assert c.views == ("residents", "social_insurance")
    assert c.columns == (
        ("residents", "district_code"),
        ("residents", "person_id"),
        ("social_insurance", "amount"),
        ("social_insurance", "person_id"),
    )
    assert c.output_columns == ("district_code", "people", "paid")

    c = check_sql(UTILITY[12], policies())  # through a CTE
    assert c.columns == (
        ("residents", "district_code"),
        ("residents", "gender"),
        ("residents", "income"),
    )
    assert c.output_columns == ("gender", "n", "total")

    c = check_sql("SELECT COUNT(*) AS n FROM residents", policies())
    assert c.columns == ()
    assert c.views == ("residents",)
    assert c.sql == 'SELECT COUNT(*) AS "n" FROM "residents" AS "residents"'


def test_cte_shadowing_a_view_is_resolved_as_the_cte() -> None:
    sql = (
        "WITH residents AS (SELECT gender, COUNT(*) AS n FROM residents GROUP BY gender) "
        "SELECT gender, n FROM residents"
    )
    c = check_sql(sql, policies())
    assert c.columns == (("residents", "gender"),)


def test_allowed_aggregates_can_be_widened() -> None:
    sql = "SELECT district_code, MEDIAN(income) FROM residents GROUP BY 1"
    assert ("SELECT", "aggregate_only") in {(r.clause, r.rule) for r in rejections(sql)}
    check_sql(sql, policies(), allowed_aggregates=ALLOWED_AGGREGATES | {"MEDIAN"})
    # LIST releases row values whatever the policy says.
    widened = ALLOWED_AGGREGATES | {"LIST"}
    found = rejections("SELECT LIST(income) FROM residents", allowed_aggregates=widened)
    assert {r.rule for r in found} == {"forbidden_function"}


def test_hidden_entity_column_is_still_a_join_key() -> None:
    text = RESIDENTS.replace(
        "person_id: {class: identifier, level: 4, visibility: join_key}",
        "person_id: {class: identifier, level: 4, visibility: hidden}",
    )
    grant = {"residents": parse_policy(text)}
    check_sql("SELECT COUNT(DISTINCT person_id) FROM residents", grant)
    with pytest.raises(SqlRejected) as info:
        check_sql("SELECT person_id, COUNT(*) FROM residents GROUP BY 1", grant)
    assert "join_key_misuse" in {r.rule for r in info.value.rejections}


# -- row-level mode: model inputs -------------------------------------------------------

ROW_LEVEL_INPUTS = [
    "SELECT gender, district_code, income FROM residents",
    "SELECT gender, income / 1000.0 AS k_income, CAST(income AS DOUBLE) AS x FROM residents "
    "WHERE district_code = '500103'",
    "SELECT r.gender, s.amount FROM residents r JOIN social_insurance s "
    "ON r.person_id = s.person_id",
    "SELECT r.gender, t.total FROM residents r JOIN (SELECT district_code, SUM(income) AS total "
    "FROM residents GROUP BY 1) t ON r.district_code = t.district_code",
]


@pytest.mark.parametrize("sql", ROW_LEVEL_INPUTS)
def test_row_level_mode_accepts_model_inputs(sql: str) -> None:
    checked = check_sql(sql, policies(), row_level=True)
    assert isinstance(checked, CheckedQuery)
    # The same rows are no SQL product: an SQL product aggregates.
    assert "row_level_output" in {r.rule for r in rejections(sql)}


@pytest.mark.parametrize(
    ("sql", "rule"),
    [
        ("SELECT gender, person_id, income FROM residents", "join_key_misuse"),
        ("SELECT gender, phone FROM residents", "hidden_column"),
        ("SELECT gender FROM residents WHERE income > 5000", "aggregate_only"),
        ("SELECT CASE WHEN income > 5000 THEN 1 ELSE 0 END AS y FROM residents", "aggregate_only"),
        ("SELECT GREATEST(income - 5000, 0) AS y FROM residents", "nonlinear_measure"),
        ("SELECT FLOOR(income / 5000) AS y FROM residents", "nonlinear_measure"),
        ("SELECT income FROM residents ORDER BY birth_date LIMIT 10", "row_selection"),
        ("SELECT income FROM residents OFFSET 5", "row_selection"),
        (
            "SELECT r.gender FROM residents r JOIN social_insurance s "
            "ON r.person_id = s.person_id AND r.income = s.amount",
            "aggregate_only",
        ),
        ("SELECT income FROM residents GROUP BY income", "aggregate_only"),
    ],
)
def test_row_level_mode_refuses(sql: str, rule: str) -> None:
    with pytest.raises(SqlRejected) as info:
        check_sql(sql, policies(), row_level=True)
    assert rule in {r.rule for r in info.value.rejections}, info.value.rejections
