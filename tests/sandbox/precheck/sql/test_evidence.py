"""The evidence rewrite of SQL products: released values unchanged, evidence exact.

Every query runs twice on real DuckDB over real views: as checked, and as
rewritten. The released columns must be identical, and the evidence must
equal what an independent query computes (distinct entities per group,
per-entity contributions).
"""

from __future__ import annotations

import duckdb
import pytest

from sandbox.errors import EvidenceUnavailable
from sandbox.precheck.sql import check_sql
from sandbox.precheck.sql.evidence import rewrite
from tests.support.views_fixtures import grant, make_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    w = make_world(tmp_path_factory.mktemp("evidence"))
    views = w.builder.build(grant())
    con = duckdb.connect()
    for v in views.views:
        con.execute(f"CREATE VIEW {v.name} AS SELECT * FROM read_parquet('{v.path}')")
    policies = {n: w.policies.get(n).policy for n in ("people", "payments")}
    yield con, policies
    con.close()


def _rounded(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    # Sums of doubles depend on the order DuckDB adds them in; compare to 4 places.
    return [tuple(round(v, 4) if isinstance(v, float) else v for v in r) for r in rows]


def evidence(con: duckdb.DuckDBPyConnection, policies, sql: str):  # type: ignore[no-untyped-def]
    checked = check_sql(sql, policies)
    query = rewrite(checked, {n: p.entity_column for n, p in policies.items()}, 2)
    plain = _rounded(con.sql(checked.sql).fetchall())
    full = con.sql(query.sql)
    names = full.columns
    rows = full.fetchall()
    if query.keep is not None:  # the groups the query dropped carry evidence only
        rows = [r for r in rows if r[names.index(query.keep)]]
    released = _rounded([r[: len(query.output_columns)] for r in rows])
    return query, plain, released, [dict(zip(names, r, strict=True)) for r in rows]


QUERIES = [
    "SELECT district, count(*) AS n, avg(income) AS mean_income FROM people GROUP BY district",
    "SELECT age, status, count(*) AS n, sum(income) AS s FROM people GROUP BY age, status "
    "ORDER BY age, status",
    "SELECT p.age, count(DISTINCT p.person_id) AS n, sum(y.amount) AS total FROM people AS p "
    "JOIN payments AS y ON p.person_id = y.person_id GROUP BY p.age ORDER BY p.age",
    "SELECT age, count(*) AS n, sum(income) AS s FROM people GROUP BY ROLLUP (age) ORDER BY 1",
    "SELECT sum(amount) AS s, count(*) AS c FROM payments",
    "WITH x AS (SELECT age AS a, income FROM people WHERE status = 'active') "
    "SELECT a, avg(income) AS m FROM x GROUP BY a HAVING count(*) > 5 ORDER BY a",
    "SELECT age, count(*) AS n FROM "
    "(SELECT age, person_id FROM people WHERE status = 'active') AS t GROUP BY age ORDER BY n DESC",
    "SELECT age, count(*) AS n, sum(income) AS s FROM people GROUP BY age "
    "HAVING sum(income) > 100000 ORDER BY s DESC",
    "SELECT age, status, count(*) AS n FROM people GROUP BY ALL ORDER BY n DESC, age, status "
    "LIMIT 3 OFFSET 2",
    "SELECT age, count(*) AS n FROM people GROUP BY ROLLUP (age) HAVING count(*) > 40 "
    "ORDER BY age NULLS FIRST",
    "SELECT age, sum(income) AS s, rank() OVER (ORDER BY sum(income) DESC) AS r FROM people "
    "GROUP BY age QUALIFY r <= 3 ORDER BY r, age",
    "SELECT district, avg(CASE WHEN status = 'active' THEN 1.0 ELSE 0.0 END) AS share, "
    "count(*) FILTER (WHERE status <> 'active') AS other FROM people GROUP BY 1 ORDER BY 1",
]


@pytest.mark.parametrize("sql", QUERIES)
def test_released_columns_are_the_checked_query(world, sql: str) -> None:  # type: ignore[no-untyped-def]
    con, policies = world
    _, plain, released, _ = evidence(con, policies, sql)
    assert sorted(map(repr, plain)) == sorted(map(repr, released))
    if "ORDER BY" in sql:
        assert plain == released


def test_entity_counts_are_distinct_entities(world) -> None:  # type: ignore[no-untyped-def]
    con, policies = world
    query, _, _, rows = evidence(
        con,
        policies,
        "SELECT p.age, count(*) AS n FROM people AS p JOIN payments AS y "
        "ON p.person_id = y.person_id GROUP BY p.age",
    )
    expected = dict(
        con.sql(
            "SELECT p.age, count(DISTINCT p.person_id) FROM people p JOIN payments y "
            "ON p.person_id = y.person_id GROUP BY p.age"
        ).fetchall()
    )
    for row in rows:
        people = row[query.entity_columns["people"]]
        payers = row[query.entity_columns["payments"]]
        assert len(people) == len(set(people)) == expected[row["age"]]
        assert set(people) == set(payers)
        # count(*) counts payments (two per person), not persons.
        assert row["n"] == 2 * expected[row["age"]]


def test_contributions_are_per_entity_sums(world) -> None:  # type: ignore[no-untyped-def]
    con, policies = world
    query, _, _, rows = evidence(
        con, policies, "SELECT count(*) AS n, sum(amount) AS total FROM payments"
    )
    (measure,) = query.measures["total"]
    per_person = [
        r[0]
        for r in con.sql(
            "SELECT sum(amount) AS s FROM payments GROUP BY person_id ORDER BY s DESC LIMIT 2"
        ).fetchall()
    ]
    assert rows[0][measure.top] == per_person
    assert rows[0][measure.total] == pytest.approx(rows[0]["total"])
    assert query.additive == {"n", "total"}


def test_rollup_margins_get_their_own_evidence(world) -> None:  # type: ignore[no-untyped-def]
    con, policies = world
    query, _, _, rows = evidence(
        con,
        policies,
        "SELECT age, count(*) AS n, sum(income) AS s FROM people GROUP BY ROLLUP (age)",
    )
    total = next(r for r in rows if r["age"] is None)
    parts = [r for r in rows if r["age"] is not None]
    ent = query.entity_columns["people"]
    assert len(total[ent]) == sum(len(r[ent]) for r in parts) == total["n"]
    (measure,) = query.measures["s"]
    assert total[measure.top][0] == max(r[measure.top][0] for r in parts)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT age, count(*) AS n FROM people GROUP BY age UNION ALL "
        "SELECT age, count(*) AS n FROM people GROUP BY age",
    ],
)
def test_queries_that_cannot_be_followed_say_so(world, sql: str) -> None:  # type: ignore[no-untyped-def]
    _, policies = world
    checked = check_sql(sql, policies)
    with pytest.raises(EvidenceUnavailable):
        rewrite(checked, {n: p.entity_column for n, p in policies.items()}, 2)


def test_keep_flags_exactly_the_rows_the_query_returns(world) -> None:  # type: ignore[no-untyped-def]
    con, policies = world
    sql = (
        "SELECT age, count(*) AS n FROM people GROUP BY age HAVING sum(income) > 100000 "
        "ORDER BY n DESC, age LIMIT 2"
    )
    checked = check_sql(sql, policies)
    query = rewrite(checked, {n: p.entity_column for n, p in policies.items()}, 2)
    assert query.keep == "__dsr_keep"
    rows = con.sql(query.sql).fetchall()
    names = con.sql(query.sql).columns
    keep = names.index(query.keep)
    ages = con.sql("SELECT count(DISTINCT age) FROM people").fetchall()[0][0]
    assert len(rows) == ages  # every group, kept or not
    kept = [r[:2] for r in rows if r[keep]]
    assert kept == con.sql(checked.sql).fetchall()
    assert [r[keep] for r in rows] == sorted((r[keep] for r in rows), reverse=True)
    # HAVING's SUM is judged too (dominance), under the clause's name.
    assert "HAVING" in query.measures and "ORDER BY" not in query.measures


def test_no_keep_without_having_limit_or_qualify(world) -> None:  # type: ignore[no-untyped-def]
    _, policies = world
    checked = check_sql("SELECT age, count(*) AS n FROM people GROUP BY 1 ORDER BY n", policies)
    assert rewrite(checked, {n: p.entity_column for n, p in policies.items()}, 2).keep is None


def test_subpopulations_count_entities_on_each_side(world) -> None:  # type: ignore[no-untyped-def]
    con, policies = world
    query, _, _, rows = evidence(
        con,
        policies,
        "SELECT p.age, count(*) FILTER (WHERE p.status = 'active') "
        "AS n, avg(CASE WHEN p.status = 'active' THEN 1.0 ELSE 0.0 END) AS share FROM people "
        "AS p JOIN payments AS y ON p.person_id = y.person_id GROUP BY p.age",
    )
    assert set(query.subpopulations) == {"n", "share"}
    sides = {s.dataset: s for s in query.subpopulations["share"]}
    people, payments = sides["people"], sides["payments"]
    expected = {
        age: (t, f)
        for age, t, f in con.sql(
            "SELECT age, count(DISTINCT person_id) FILTER (WHERE status = 'active'), "
            "count(DISTINCT person_id) FILTER (WHERE status IS DISTINCT FROM 'active') "
            "FROM people WHERE person_id IN (SELECT person_id FROM payments) GROUP BY age"
        ).fetchall()
    }
    for row in rows:
        assert (row[people.true], row[people.false]) == expected[row["age"]]
        assert (row[payments.true], row[payments.false]) == expected[row["age"]]


@pytest.mark.parametrize(
    "sql",
    [
        # A function of a dimension inside an aggregate: no condition to follow.
        "SELECT district, sum(greatest(age, 40)) AS s FROM people GROUP BY 1",
        # A condition computed in a subquery, aggregated outside it.
        "SELECT district, count(x) AS n FROM (SELECT district, CASE WHEN age > 90 THEN 1 END "
        "AS x FROM people) AS t GROUP BY 1",
        # A conditional aggregate in a subquery: its groups are not judged.
        "SELECT sum(n) AS n FROM (SELECT district, count(*) FILTER (WHERE age > 90) AS n "
        "FROM people GROUP BY 1) AS t",
    ],
)
def test_conditions_that_cannot_be_followed_are_held(world, sql: str) -> None:  # type: ignore[no-untyped-def]
    _, policies = world
    checked = check_sql(sql, policies)
    with pytest.raises(EvidenceUnavailable):
        rewrite(checked, {n: p.entity_column for n, p in policies.items()}, 2)
