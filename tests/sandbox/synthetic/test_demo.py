"""The synthetic demo city: schemas, validity, consistency, links and determinism."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from sandbox.synthetic import demo
from sandbox.synthetic.identifiers import (
    DISTRICTS,
    is_valid_credit_code,
    is_valid_mobile,
    is_valid_resident_id,
    parse_resident_id,
)

RESIDENTS, ENTERPRISES = 2_000, 200
TYPES = {
    "residents": {
        "person_id": "VARCHAR",
        "name": "VARCHAR",
        "gender": "VARCHAR",
        "birth_date": "DATE",
        "district_code": "VARCHAR",
        "district_name": "VARCHAR",
        "phone": "VARCHAR",
    },
    "enterprises": {
        "credit_code": "VARCHAR",
        "name": "VARCHAR",
        "industry": "VARCHAR",
        "district_code": "VARCHAR",
        "registered_capital": "DOUBLE",
        "employees": "INTEGER",
        "established": "DATE",
        "legal_person_id": "VARCHAR",
    },
    "social_insurance": {
        "person_id": "VARCHAR",
        "credit_code": "VARCHAR",
        "month": "DATE",
        "contribution_base": "DOUBLE",
        "amount": "DOUBLE",
    },
    "tax_payments": {
        "credit_code": "VARCHAR",
        "quarter": "DATE",
        "tax_type": "VARCHAR",
        "amount": "DOUBLE",
    },
}


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("city")
    return demo.generate_city(out, residents=RESIDENTS, enterprises=ENTERPRISES, seed=11)


@pytest.fixture(scope="module")
def db(city: dict[str, Path]) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    for name, path in city.items():
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}')")
    yield con
    con.close()


def fetch(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    row = con.execute(sql).fetchone()
    assert row is not None
    return tuple(row)


def one(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    return fetch(con, sql)[0]


def test_tables_and_schemas(city: dict[str, Path], db: duckdb.DuckDBPyConnection) -> None:
    assert set(city) == set(TYPES)
    for name, types in TYPES.items():
        assert city[name].name == f"{name}.parquet"
        described = {r[0]: r[1] for r in db.execute(f"DESCRIBE {name}").fetchall()}
        assert described == types
        nulls = " + ".join(f"count(*) - count({c})" for c in types)
        assert one(db, f"SELECT {nulls} FROM {name}") == 0
    assert one(db, "SELECT count(*) FROM residents") == RESIDENTS
    assert one(db, "SELECT count(*) FROM enterprises") == ENTERPRISES
    assert one(db, "SELECT count(*) FROM social_insurance") > RESIDENTS
    assert one(db, "SELECT count(*) FROM tax_payments") > ENTERPRISES


def test_keys_are_unique(db: duckdb.DuckDBPyConnection) -> None:
    assert one(db, "SELECT count(DISTINCT person_id) FROM residents") == RESIDENTS
    assert one(db, "SELECT count(DISTINCT credit_code) FROM enterprises") == ENTERPRISES
    dup = "SELECT count(*) FROM (SELECT {k} FROM {t} GROUP BY ALL HAVING count(*) > 1)"
    assert one(db, dup.format(k="person_id, month", t="social_insurance")) == 0
    assert one(db, dup.format(k="credit_code, quarter, tax_type", t="tax_payments")) == 0


def test_residents_are_valid_and_consistent(db: duckdb.DuckDBPyConnection) -> None:
    rows = db.execute(
        "SELECT person_id, name, gender, birth_date, district_code, district_name, phone "
        "FROM residents"
    ).fetchall()
    for pid, name, gender, birth, code, district_name, phone in rows:
        assert is_valid_resident_id(pid), pid
        info = parse_resident_id(pid)
        assert gender == ("男" if info.male else "女")
        assert birth == info.birth <= demo.AS_OF
        assert code == info.district and DISTRICTS[code] == district_name
        assert is_valid_mobile(phone), phone
        assert 2 <= len(name) <= 4
    genders = {g for _, _, g, *_ in rows}
    assert genders == {"男", "女"}


def test_enterprises_are_valid_and_consistent(db: duckdb.DuckDBPyConnection) -> None:
    rows = db.execute(
        "SELECT e.credit_code, e.district_code, e.industry, e.established, e.employees, "
        "e.registered_capital, r.birth_date "
        "FROM enterprises e JOIN residents r ON r.person_id = e.legal_person_id"
    ).fetchall()
    assert len(rows) == ENTERPRISES  # every legal person is a resident
    industries = {i[0] for i in demo.INDUSTRIES}
    for code, district, industry, established, employees, capital, legal_birth in rows:
        assert is_valid_credit_code(code), code
        assert code[2:8] == district and district in DISTRICTS
        assert industry in industries
        assert datetime.date(1990, 1, 1) <= established <= demo.AS_OF
        assert established >= legal_birth.replace(year=legal_birth.year + 18, day=1)
        assert employees >= 1 and capital > 0
        assert (code[8:10] == "MA") == (established >= datetime.date(2015, 10, 1))


def test_distributions_are_skewed(db: duckdb.DuckDBPyConnection) -> None:
    for col in ("registered_capital", "employees"):
        mean, median = fetch(db, f"SELECT avg({col}), median({col}) FROM enterprises")
        assert mean > 1.5 * median, col


def test_social_insurance_links_and_values(db: duckdb.DuckDBPyConnection) -> None:
    orphans = (
        "SELECT count(*) FROM social_insurance s "
        "LEFT JOIN residents r USING (person_id) LEFT JOIN enterprises e USING (credit_code) "
        "WHERE r.person_id IS NULL OR e.credit_code IS NULL"
    )
    assert one(db, orphans) == 0
    lo, hi = fetch(db, "SELECT min(month), max(month) FROM social_insurance")
    assert lo >= datetime.date(2024, 1, 1) and hi <= datetime.date(2025, 12, 1)
    assert one(db, "SELECT count(*) FROM social_insurance WHERE day(month) <> 1") == 0
    bad = (
        "SELECT count(*) FROM social_insurance s JOIN enterprises e USING (credit_code) "
        "JOIN residents r USING (person_id) "
        "WHERE s.month < date_trunc('month', e.established) "
        "OR s.month + INTERVAL 1 MONTH <= r.birth_date + INTERVAL 18 YEAR "
        "OR s.contribution_base NOT BETWEEN 4000 AND 21000 "
        "OR abs(s.amount - round(s.contribution_base * 0.24, 2)) > 0.005"
    )
    assert one(db, bad) == 0
    assert one(db, "SELECT count(DISTINCT credit_code) FROM social_insurance") > 1


def test_tax_payments_links_and_values(db: duckdb.DuckDBPyConnection) -> None:
    bad = (
        "SELECT count(*) FROM tax_payments t LEFT JOIN enterprises e USING (credit_code) "
        "WHERE e.credit_code IS NULL OR t.amount <= 0 "
        "OR t.quarter + INTERVAL 3 MONTH <= e.established "
        "OR month(t.quarter) NOT IN (1, 4, 7, 10) OR day(t.quarter) <> 1 "
        "OR t.quarter NOT BETWEEN DATE '2024-01-01' AND DATE '2025-10-01'"
    )
    assert one(db, bad) == 0
    types = {r[0] for r in db.execute("SELECT DISTINCT tax_type FROM tax_payments").fetchall()}
    assert types == set(demo.TAX_TYPES)


def test_same_seed_same_rows(tmp_path: Path, city: dict[str, Path]) -> None:
    again = demo.generate_city(
        tmp_path / "a", residents=RESIDENTS, enterprises=ENTERPRISES, seed=11
    )
    other = demo.generate_city(
        tmp_path / "b", residents=RESIDENTS, enterprises=ENTERPRISES, seed=12
    )
    for name in city:
        assert pq.read_table(again[name]).equals(pq.read_table(city[name])), name
    assert not pq.read_table(other["residents"]).equals(pq.read_table(city["residents"]))


def test_unique_ids_survive_crowding(tmp_path: Path) -> None:
    # 250k residents over ~1.7M (district, birth date, sex) combinations: naive sampling
    # would collide thousands of times; sequence numbers must keep person_id unique.
    paths = demo.generate_city(tmp_path, residents=250_000, enterprises=10, seed=1)
    ids = pq.read_table(paths["residents"], columns=["person_id"]).column(0)
    assert len(ids.unique()) == 250_000


def test_cli_prints_row_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    demo.main([str(tmp_path), "--residents", "300", "--enterprises", "30", "--seed", "3"])
    out = capsys.readouterr().out
    assert "residents" in out and "300 rows" in out and "total" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{t}.parquet" for t in TYPES)


def test_rejects_an_empty_city(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        demo.generate_city(tmp_path, residents=0)
