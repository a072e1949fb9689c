"""Authorized views, proven by reading the materialised Parquet files."""

from __future__ import annotations

import hashlib
import hmac
import json

import duckdb
import pyarrow.parquet as pq
import pytest

from sandbox.errors import ViewError
from sandbox.views.build import DatasetScope, Grant
from tests.support.views_fixtures import grant, make_world


@pytest.fixture
def world(tmp_path):  # type: ignore[no-untyped-def]
    # Uncompressed, so a raw value that leaked would show in the file's bytes.
    return make_world(tmp_path, compression="uncompressed")


def rows(path):  # type: ignore[no-untyped-def]
    return pq.read_table(path).to_pylist()


def test_hidden_columns_are_absent_and_no_raw_identifier_is_in_the_bytes(world):
    vs = world.builder.build(grant())
    people = next(v for v in vs.views if v.name == "people")
    names = {c.name for c in people.columns}
    assert "name" not in names and "phone" not in names
    blob = b"".join(p.read_bytes() for p in vs.directory.iterdir())
    for person in world.people:
        for col in ("person_id", "name", "phone"):  # identifiers: hidden or pseudonymised
            assert str(person[col]).encode() not in blob, f"raw {col} leaked"
    # The parquet footer's statistics are bytes too; read them as values as well.
    meta = pq.ParquetFile(people.path).metadata
    stats = [str(meta.row_group(0).column(i).statistics) for i in range(meta.num_columns)]
    assert not any(str(p["person_id"]) in " ".join(stats) for p in world.people)


def test_a_plain_identifier_with_an_override_is_shown(world):
    vs = world.builder.build(grant())
    got = {r["guardian_id"] for r in rows(vs.directory / "people.parquet")}
    assert got <= {p["guardian_id"] for p in world.people}


def test_pseudonyms_are_hmac_stable_within_and_different_across_grants(world):
    g1, g2 = grant("g1"), grant("g2")
    a, b = world.builder.build(g1), world.builder.build(g2)
    people_a = [r["person_id"] for r in rows(a.directory / "people.parquet")]
    pay_a = {r["person_id"] for r in rows(a.directory / "payments.parquet")}
    people_b = {r["person_id"] for r in rows(b.directory / "people.parquet")}
    assert set(people_a) <= pay_a  # joins within a grant work
    assert not set(people_a) & people_b  # two grants cannot link
    expected = {
        hmac.new(g1.key, str(p["person_id"]).encode(), hashlib.sha256).hexdigest()
        for p in world.people
    }
    assert set(people_a) <= expected
    con = duckdb.connect()
    joined = con.execute(
        "SELECT count(*) FROM read_parquet($p) p JOIN read_parquet($q) q USING (person_id)",
        {"p": str(a.directory / "people.parquet"), "q": str(a.directory / "payments.parquet")},
    ).fetchall()[0][0]
    assert joined == 2 * len(people_a)


def test_generalisations_and_row_filters(world):
    vs = world.builder.build(grant())
    got = rows(vs.directory / "people.parquet")
    active = [p for p in world.people if p["status"] == "active"]
    assert len(got) == len(active)  # the row filter keeps active residents only
    assert {r["status"] for r in got} == {"active"}
    assert {r["age"] for r in got} <= {"<18", "[18,35)", "[35,60)", ">=60"}
    assert all(r["birth"].day == 1 for r in got)  # truncated to the month
    assert {r["district"] for r in got} <= {"5001"}  # first 4 characters
    assert all(isinstance(r["income"], float) for r in got)


def test_catalog_describes_the_views(world):
    vs = world.builder.build(grant())
    catalog = json.loads((vs.directory / "catalog.json").read_text())
    people = next(v for v in catalog["views"] if v["name"] == "people")
    assert people["entity_column"] == "person_id" and people["k"] == 5
    cols = {c["name"]: c for c in people["columns"]}
    assert cols["person_id"]["visibility"] == "entity"
    assert cols["income"]["visibility"] == "aggregate_only"
    assert cols["income"]["class"] == "sensitive"
    assert cols["age"]["generalised"].startswith("bands")
    assert (
        people["sha256"]
        == hashlib.sha256((vs.directory / "people.parquet").read_bytes()).hexdigest()
    )


def test_second_build_is_a_cache_hit(world):
    first = world.builder.build(grant())
    mtime = (first.directory / "people.parquet").stat().st_mtime_ns
    second = world.builder.build(grant())
    assert not first.cache_hit and second.cache_hit
    assert second.directory == first.directory and second.views == first.views
    assert (second.directory / "people.parquet").stat().st_mtime_ns == mtime
    # A different scope or key is a different entry.
    narrower = world.builder.build(grant(people_columns=("person_id", "age")))
    assert not narrower.cache_hit and narrower.directory != first.directory


def test_the_entity_column_is_always_present_as_a_pseudonym(world):
    vs = world.builder.build(grant(people_columns=("age",), with_payments=False))
    people = vs.views[0]
    assert [c.name for c in people.columns] == ["person_id", "age"]


@pytest.mark.parametrize(
    "scopes,match",
    [
        ((DatasetScope("people", ("name",)),), "hidden by the exposure policy"),
        ((DatasetScope("people", ("nonexistent",)),), "no column"),
        ((DatasetScope("nobody", ("x",)),), "nobody"),
    ],
)
def test_out_of_policy_requests_fail(world, scopes, match):
    g = Grant("g9", "op", "s", scopes, key=b"k" * 32, key_id="k9")
    with pytest.raises(ViewError, match=match):
        world.builder.build(g)
    views_dir = world.root / "cache" / "views"
    assert (
        not views_dir.exists()
        or [p for p in views_dir.iterdir() if not p.name.startswith(".")] == []
    )


def test_short_keys_are_refused():
    with pytest.raises(ViewError, match="32 bytes"):
        Grant("g", "op", "s", (DatasetScope("people", ("age",)),), key=b"short", key_id="k")


def test_destroy_by_grant_with_records(world):
    a = world.builder.build(grant("g1"))
    b = world.builder.build(grant("g2"))
    hashes = {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in a.directory.iterdir()
        if p.is_file()
    }
    records = world.builder.destroy_grant("g1")
    assert len(records) == 1
    record = records[0]
    assert "g1" in record.what and "zeros" in record.how
    assert dict(record.files) == hashes
    assert not a.directory.exists()
    assert b.directory.exists()  # other grants are untouched
    assert world.builder.destroy_grant("g1") == []
    rebuilt = world.builder.build(grant("g1"))
    assert not rebuilt.cache_hit
