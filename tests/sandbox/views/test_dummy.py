"""Dummy views: the real views' schema and the declared domains, none of the real values."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from sandbox.errors import ViewError
from sandbox.synthetic.identifiers import is_valid_resident_id
from sandbox.views.dummy import DummyBuilder
from tests.support.views_fixtures import grant, make_world


@pytest.fixture
def world(tmp_path):  # type: ignore[no-untyped-def]
    return make_world(tmp_path)


def schema(path):  # type: ignore[no-untyped-def]
    return [(f.name, str(f.type)) for f in pq.read_schema(path)]


def test_same_schema_as_the_real_views(world):
    real = world.builder.build(grant())
    dummy = DummyBuilder(world.builder, world.root / "cache").build(grant(), rows=300, seed=1)
    assert [v.name for v in dummy.views] == [v.name for v in real.views]
    for r, d in zip(real.views, dummy.views, strict=True):
        assert schema(d.path) == schema(r.path)
        assert [c.name for c in d.columns] == [c.name for c in r.columns]
        assert [c.type for c in d.columns] == [c.type for c in r.columns]
    catalog = json.loads((dummy.directory / "catalog.json").read_text())
    assert catalog["dummy"] is True and catalog["seed"] == 1


def test_declared_domains_and_valid_identifiers(world):
    dummy = DummyBuilder(world.builder, world.root / "cache").build(grant(), rows=500, seed=2)
    people = pq.read_table(dummy.directory / "people.parquet").to_pylist()
    assert people  # the row filter (status = active) keeps part of them
    assert {r["status"] for r in people} == {"active"}
    assert {r["district"] for r in people} <= {"5001"}
    assert {r["age"] for r in people} <= {"<18", "[18,35)", "[35,60)", ">=60"}
    assert all(1000 <= r["income"] <= 90000 for r in people)
    assert all(1950 <= r["birth"].year <= 2010 and r["birth"].day == 1 for r in people)
    assert all(is_valid_resident_id(r["guardian_id"]) for r in people)
    assert all(len(r["person_id"]) == 64 for r in people)  # pseudonyms, as in the real view
    payments = pq.read_table(dummy.directory / "payments.parquet").to_pylist()
    assert all(1 <= r["amount"] <= 5000 for r in payments)
    # Dummy joins work: the views share entity pools.
    assert {r["person_id"] for r in people} & {r["person_id"] for r in payments}


def test_no_value_shared_with_the_real_identifier_columns(world):
    real = world.builder.build(grant())
    dummy = DummyBuilder(world.builder, world.root / "cache").build(grant(), rows=800, seed=3)
    for name, cols in (("people", ("person_id", "guardian_id")), ("payments", ("person_id",))):
        r = pq.read_table(real.directory / f"{name}.parquet").to_pydict()
        d = pq.read_table(dummy.directory / f"{name}.parquet").to_pydict()
        for col in cols:
            assert not set(r[col]) & set(d[col]), f"{name}.{col} shares a value"
    raw = {str(p[c]) for p in world.people for c in ("person_id", "guardian_id", "name", "phone")}
    blob = b"".join(p.read_bytes() for p in dummy.directory.iterdir())
    assert not any(v.encode() in blob for v in raw)


def test_a_clashing_plain_identifier_is_replaced(world, monkeypatch):
    # Force the generator to propose real guardian ids first: they must be replaced.
    from sandbox.views import dummy as dummy_module

    real_ids = [str(p["guardian_id"]) for p in world.people]
    original = dummy_module._Pools.fresh
    calls = {"n": 0}

    def rigged(self, fmt):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if fmt == "resident_id" and calls["n"] <= 50:
            return real_ids[calls["n"] % len(real_ids)]
        return original(self, fmt)

    monkeypatch.setattr(dummy_module._Pools, "fresh", rigged)
    dummy = DummyBuilder(world.builder, world.root / "cache").build(grant(), rows=200, seed=4)
    got = pq.read_table(dummy.directory / "people.parquet").to_pydict()["guardian_id"]
    assert not set(got) & set(real_ids)


def test_deterministic_for_a_seed_and_cached(world):
    builder = DummyBuilder(world.builder, world.root / "cache")
    a = builder.build(grant(), rows=100, seed=5)
    b = builder.build(grant(), rows=100, seed=5)
    assert b.cache_hit and a.directory == b.directory
    c = builder.build(grant(), rows=100, seed=6)
    assert c.directory != a.directory


def test_row_count_bounds(world):
    with pytest.raises(ViewError, match="between 1 and"):
        DummyBuilder(world.builder, world.root / "cache").build(grant(), rows=0)
