"""The in-container SDK, on the host against a temporary /data."""

from __future__ import annotations

import json

import duckdb
import pytest

from sandbox.sdk import catalog, connect


@pytest.fixture
def data_dir(tmp_path):  # type: ignore[no-untyped-def]
    duckdb.sql("SELECT i AS id, 'd' || (i % 3) AS district FROM range(30) t(i)").write_parquet(
        str(tmp_path / "residents.parquet")
    )
    duckdb.sql("SELECT 1 AS x").write_parquet(str(tmp_path / "odd name.parquet"))
    (tmp_path / "catalog.json").write_text(json.dumps({"views": [{"name": "residents"}]}))
    return tmp_path


def test_views_are_registered_by_name(data_dir):
    con = connect(data_dir)
    assert con.sql("SELECT count(*) FROM residents").fetchall() == [(30,)]
    assert con.sql('SELECT x FROM "odd name"').fetchall() == [(1,)]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM glob('/*')",
        "COPY (SELECT 1) TO '{d}/copied.csv'",
        "ATTACH '{d}/new.duckdb' AS other",
        "SET enable_external_access = true",
        "SET allowed_paths = ['/etc/passwd']",
        "INSTALL httpfs",
    ],
)
def test_nothing_else_is_reachable(data_dir, sql):
    con = connect(data_dir)
    with pytest.raises(duckdb.Error):
        con.sql(sql.format(d=data_dir)).fetchall()
    assert sorted(p.name for p in data_dir.iterdir()) == [
        "catalog.json",
        "odd name.parquet",
        "residents.parquet",
    ]


def test_catalog(data_dir, tmp_path):
    assert catalog(data_dir) == {"views": [{"name": "residents"}]}
    assert catalog(tmp_path / "nowhere") == {"views": []}
