"""A small registry with two datasets and their policies, for view and dummy tests."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sandbox.intake.policy import PolicyStore
from sandbox.intake.registry import Registry
from sandbox.synthetic import identifiers
from sandbox.views.build import DatasetScope, Grant, ViewBuilder

PEOPLE_POLICY = """\
dataset: people
entity_column: person_id
k: 5
row_filters:
  - {column: status, op: "=", value: active}
columns:
  person_id: {class: identifier, level: 4, visibility: join_key, domain: {format: resident_id}}
  name: {class: identifier, level: 4, visibility: hidden, domain: {format: person_name}}
  phone: {class: identifier, level: 4, visibility: hidden, domain: {format: mobile}}
  guardian_id:
    class: identifier
    level: 2
    visibility: plain
    plain_override: "test fixture: a plain identifier to check dummy identifiers"
    domain: {format: resident_id}
  age:
    class: quasi_identifier
    level: 2
    visibility: group_key
    generalise: {bands: [18, 35, 60]}
    domain: {min: 0, max: 100, integer: true}
  birth: {class: quasi_identifier, level: 3, visibility: group_key,
          generalise: {truncate: month}, domain: {min_date: 1950-01-01, max_date: 2010-12-31}}
  district: {class: quasi_identifier, level: 2, visibility: group_key,
             generalise: {prefix: 4}, domain: {categories: ["500101", "500103", "500112"]}}
  income: {class: sensitive, level: 3, visibility: aggregate_only,
           domain: {min: 1000, max: 90000}}
  status: {class: attribute, level: 1, visibility: plain,
           domain: {categories: [active, moved]}}
"""

PAYMENTS_POLICY = """\
dataset: payments
entity_column: person_id
columns:
  person_id: {class: identifier, level: 4, visibility: join_key, domain: {format: resident_id}}
  amount: {class: sensitive, level: 3, visibility: aggregate_only, domain: {min: 1, max: 5000}}
"""

NAMES = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄强"]


@dataclass
class World:
    root: Path
    registry: Registry
    policies: PolicyStore
    builder: ViewBuilder
    people: list[dict[str, object]]
    payments: list[dict[str, object]]


def make_world(root: Path, *, rows: int = 400, compression: str = "zstd") -> World:
    rng = random.Random(11)
    people = []
    for i in range(rows):
        born = date(1950, 1, 1) + timedelta(days=rng.randint(0, 21000))
        people.append(
            {
                "person_id": identifiers.resident_id(rng, birth=born),
                "name": rng.choice(NAMES) + str(i),
                "phone": identifiers.mobile(rng),
                "guardian_id": identifiers.resident_id(rng),
                "age": 2024 - born.year,
                "birth": born,
                "district": rng.choice(["500101", "500103", "500112"]),
                "income": round(rng.uniform(1000, 90000), 2),
                "status": "active" if i % 4 else "moved",
            }
        )
    payments = [
        {"person_id": p["person_id"], "amount": float(rng.randint(1, 5000))}
        for p in people
        for _ in range(2)
    ]
    src = root / "src"
    src.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(people), src / "people.parquet")
    pq.write_table(pa.Table.from_pylist(payments), src / "payments.parquet")
    registry = Registry(root / "data")
    policies = PolicyStore(root / "data")
    for name, text in (("people", PEOPLE_POLICY), ("payments", PAYMENTS_POLICY)):
        dv = registry.register(
            src / f"{name}.parquet", name=name, entity_column="person_id", provider="test-bureau"
        )
        policies.apply(text, {c.name: c.type for c in dv.columns}, dataset=name, author="t")
    builder = ViewBuilder(registry, policies, root / "cache", compression=compression)
    return World(root, registry, policies, builder, people, payments)


def grant(
    grant_id: str = "g1",
    *,
    key: bytes | None = None,
    people_columns: tuple[str, ...] = (
        "person_id",
        "age",
        "birth",
        "district",
        "income",
        "status",
        "guardian_id",
    ),
    with_payments: bool = True,
) -> Grant:
    scopes = [DatasetScope("people", people_columns)]
    if with_payments:
        scopes.append(DatasetScope("payments", ("person_id", "amount")))
    return Grant(
        grant_id=grant_id,
        operator="op-1",
        scenario="employment-study",
        scopes=tuple(scopes),
        key=key or grant_id.encode().ljust(32, b"k"),
        key_id=f"{grant_id}-key-1",
    )
