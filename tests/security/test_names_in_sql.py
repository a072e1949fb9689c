"""A provider's names are data, never SQL: names stored by any route run nothing.

The attack: a provider's file whose column name closes the identifier's quote
and appends statements (``COPY`` another provider's raw rows to a file of its
choosing). The intake now refuses such names (``test_names_at_intake.py``);
these tests take the step the intake prevents: the names are written into the
registry directly, as if stored before the rules existed or by anyone who can
write the data directory, and every trusted-side builder that reads them
(views, dummy views, entity maps, identifier fingerprints, the checker's view
facts, encrypted products' tables) is run over them. The injected statements
must not run: no file appears where they write, and the views hold the
hostile-named columns as plain data.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sandbox.intake.policy import PolicyStore
from sandbox.intake.registry import Registry
from sandbox.judge import fingerprints
from sandbox.judge.ledger_keys import EntityMaps
from sandbox.synthetic import identifiers
from sandbox.views.build import DatasetScope, Grant, ViewBuilder
from sandbox.views.dummy import DummyBuilder

T = TypeVar("T")


def payload(victim: Path, canary: Path, escape: Path) -> str:
    """A column name that, pasted into the dummy builder's COPY, copies the victim's rows."""
    return (
        f"amount\" AS VARCHAR) AS a FROM generated) TO '{escape}' (FORMAT parquet); "
        f"COPY (SELECT * FROM read_parquet('{victim}')) TO '{canary}' (FORMAT csv); --"
    )


HOSTILE_EXTRA = [
    'x"; DROP TABLE t; --',
    "名字\" FROM read_csv('/etc/passwd') --",
    "a\u202e\u200bb",  # right-to-left override, zero-width space
    "q" * 200,
]


def _store(registry: Registry, name: str, table: pa.Table, entity: str, provider: str) -> Path:
    """Write a dataset version straight into the registry's layout (no intake checks)."""
    version = f"{random.getrandbits(64):016x}"
    folder = registry.datasets / name / version
    folder.mkdir(parents=True)
    pq.write_table(table, folder / "data.parquet")
    meta = {
        "name": name,
        "version": version,
        "columns": [{"name": f.name, "type": _duck(f.type)} for f in table.schema],
        "row_count": table.num_rows,
        "entity_column": entity,
        "source": "written-directly.parquet",
        "source_sha256": "0" * 64,
        "source_format": "parquet",
        "source_encoding": None,
        "provider": provider,
        "registered_at": "2026-12-01T00:00:00+00:00",
        "format": 1,
    }
    (folder / "dataset.json").write_text(json.dumps(meta))
    return folder / "data.parquet"


def _duck(t: pa.DataType) -> str:
    return (
        "BIGINT" if pa.types.is_integer(t) else "DOUBLE" if pa.types.is_floating(t) else "VARCHAR"
    )


def _yaml_key(name: str) -> str:
    return json.dumps(name, ensure_ascii=True)  # a JSON string is a YAML flow scalar


@pytest.fixture
def hostile_world(tmp_path: Path) -> dict[str, object]:
    data = tmp_path / "var"
    outside = tmp_path / "outside"
    outside.mkdir()
    registry, policies = Registry(data), PolicyStore(data)
    rng = random.Random(5)
    # Provider B's raw rows: what the attack copies out.
    victims = pa.table(
        {
            "person_id": [identifiers.resident_id(rng) for _ in range(50)],
            "secret": [f"raw-secret-{i}" for i in range(50)],
        }
    )
    victim_path = _store(registry, "victims", victims, "person_id", "provider-b")
    canary, escape = outside / "stolen.csv", outside / "escape.parquet"
    entity = payload(victim_path, canary, escape)
    plain_id = "public_code"
    rows = 60
    table = pa.table(
        {
            entity: [identifiers.resident_id(rng) for _ in range(rows)],
            "amount": [float(rng.randint(1, 900)) for _ in range(rows)],
            plain_id: [identifiers.credit_code(rng) for _ in range(rows)],
            **{n: [rng.choice(["a", "b"]) for _ in range(rows)] for n in HOSTILE_EXTRA[1:]},
            HOSTILE_EXTRA[0]: [rng.randint(1, 9) for _ in range(rows)],
        }
    )
    version_path = _store(registry, "hostile", table, entity, "provider-a")
    columns = {
        entity: "{class: identifier, level: 4, visibility: join_key, "
        "domain: {format: resident_id}}",
        "amount": "{class: sensitive, level: 3, visibility: aggregate_only, "
        "domain: {min: 1, max: 900}}",
        plain_id: "{class: identifier, level: 2, visibility: plain, "
        "plain_override: a public code, domain: {format: credit_code}}",
        HOSTILE_EXTRA[0]: "{class: quasi_identifier, level: 2, visibility: group_key, "
        "generalise: {bands: [3, 6]}, domain: {min: 1, max: 9, integer: true}}",
        **{
            n: "{class: attribute, level: 1, visibility: plain, domain: {categories: [a, b]}}"
            for n in HOSTILE_EXTRA[1:]
        },
    }
    text = (
        f"dataset: hostile\nentity_column: {_yaml_key(entity)}\nk: 2\n"
        f"row_filters:\n  - {{column: {_yaml_key(HOSTILE_EXTRA[2])}, op: '=', value: a}}\n"
        "columns:\n" + "".join(f"  {_yaml_key(n)}: {c}\n" for n, c in columns.items())
    )
    dataset = registry.get("hostile")
    policies.apply(text, {c.name: c.type for c in dataset.columns}, dataset="hostile", author="a")
    grant = Grant(
        grant_id="g-hostile",
        operator="op",
        scenario="names",
        scopes=(DatasetScope("hostile", tuple(sorted(columns))),),
        key=b"k" * 32,
        key_id="k-1",
    )
    return {
        "data": data,
        "registry": registry,
        "policies": policies,
        "grant": grant,
        "entity": entity,
        "canary": canary,
        "escape": escape,
        "outside": outside,
        "version_path": version_path,
    }


def _nothing_ran(world: dict[str, object]) -> None:
    outside = world["outside"]
    assert isinstance(outside, Path)
    written = sorted(p.name for p in outside.iterdir())
    stolen = world["canary"]
    assert isinstance(stolen, Path)
    leaked = "raw-secret-" in stolen.read_text() if stolen.exists() else False
    assert written == [], f"an injected statement ran: wrote {written}, victim rows {leaked}"


def _then_check(world: dict[str, object], build: Callable[[], T]) -> T:
    """Run ``build``; whether it succeeds or not, no injected statement may have run."""
    try:
        return build()
    finally:
        _nothing_ran(world)


def test_views_of_hostile_names_run_no_injected_sql(hostile_world: dict[str, object]) -> None:
    w = hostile_world
    builder = ViewBuilder(w["registry"], w["policies"], w["data"] / "cache")  # type: ignore[arg-type, operator]
    built = _then_check(w, lambda: builder.build(w["grant"]))  # type: ignore[arg-type]
    view = pq.read_table(built.views[0].path)
    assert w["entity"] in view.column_names  # the name is data: a column like any other
    assert set(HOSTILE_EXTRA) <= set(view.column_names)


def test_dummy_views_of_hostile_names_run_no_injected_sql(
    hostile_world: dict[str, object],
) -> None:
    w = hostile_world
    builder = ViewBuilder(w["registry"], w["policies"], w["data"] / "cache")  # type: ignore[arg-type, operator]
    dummy = DummyBuilder(builder, w["data"] / "cache")  # type: ignore[operator]
    built = _then_check(w, lambda: dummy.build(w["grant"], rows=50, seed=3))  # type: ignore[arg-type]
    assert w["entity"] in pq.read_table(built.views[0].path).column_names


def test_entity_maps_and_fingerprints_of_hostile_names_run_no_injected_sql(
    hostile_world: dict[str, object],
) -> None:
    w = hostile_world
    registry, policies = w["registry"], w["policies"]
    version = registry.get("hostile")  # type: ignore[attr-defined]
    maps = EntityMaps(w["data"] / "cache", b"s" * 32)  # type: ignore[operator]
    assert _then_check(w, lambda: maps.build(w["grant"], version)).is_file()  # type: ignore[arg-type]
    policy = policies.get("hostile").policy  # type: ignore[attr-defined]
    assert _then_check(w, lambda: fingerprints.build_for_dataset(version, policy)) is not None
