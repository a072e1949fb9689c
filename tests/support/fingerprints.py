"""The synthetic city registered for the identifier tests (fingerprint indexes and the
``identifier_leakage`` rule), and every form an analyst could write an identifier in.

Plain functions: ``registered_city`` generates a small city (seed 13) and
registers it with the example exposure policies, keeping its rows to pick real
identifiers from; ``city_views`` builds residents' and enterprises' views under
one grant. The city jobs run against, with a pipeline, is ``tests.support.city``.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from sandbox.intake.policy import PolicyStore
from sandbox.intake.registry import Registry
from sandbox.judge.fingerprints import FingerprintIndex, build_for_dataset
from sandbox.synthetic import demo
from sandbox.views.build import DatasetScope, Grant, ViewBuilder, ViewSet
from tests.support.engine import ROOT

POLICIES = ROOT / "policies" / "exposure"
ENTITY = {
    "residents": "person_id",
    "enterprises": "credit_code",
    "social_insurance": "person_id",
    "tax_payments": "credit_code",
}


@dataclass
class City:
    root: Path
    registry: Registry
    policies: PolicyStore
    rows: dict[str, list[dict[str, object]]]


def registered_city(root: Path, *, residents: int = 300, enterprises: int = 40) -> City:
    """The synthetic city, registered with the example exposure policies."""
    paths = demo.generate_city(root / "src", residents=residents, enterprises=enterprises, seed=13)
    registry, policies = Registry(root / "data"), PolicyStore(root / "data")
    for name, path in paths.items():
        version = registry.register(path, name=name, entity_column=ENTITY[name], provider="bureau")
        text = (POLICIES / f"{name}.yaml").read_text()
        policies.apply(text, {c.name: c.type for c in version.columns}, dataset=name, author="t")
    rows = {name: pq.read_table(path).to_pylist() for name, path in paths.items()}
    return City(root, registry, policies, rows)


def city_views(city: City, grant_id: str = "g-fp") -> ViewSet:
    """Views of residents and enterprises under one grant (pseudonymised keys)."""
    grant = Grant(
        grant_id=grant_id,
        operator="op-1",
        scenario="test",
        scopes=(
            DatasetScope("residents", ("person_id", "district_code")),
            DatasetScope("enterprises", ("credit_code", "industry", "legal_person_id")),
        ),
        key=grant_id.encode().ljust(32, b"k"),
        key_id=f"{grant_id}-1",
    )
    return ViewBuilder(city.registry, city.policies, city.root / "cache").build(grant)


def index_for(city: City, dataset: str) -> FingerprintIndex:
    return build_for_dataset(city.registry.get(dataset), city.policies.get(dataset).policy)


def encodings(v: str) -> dict[str, str]:
    """Every form an analyst could write an identifier in."""
    raw = v.encode()
    return {
        "raw": v,
        "lower": v.lower(),
        "upper": v.upper(),
        "dashes": "-".join(v[i : i + 4] for i in range(0, len(v), 4)),
        "spaces": " ".join(v[i : i + 3] for i in range(0, len(v), 3)),
        "reversed": v[::-1],
        "hex": raw.hex(),
        "HEX": raw.hex().upper(),
        "base64": base64.b64encode(raw).decode(),
        "base64-nopad": base64.b64encode(raw).decode().rstrip("="),
        "urlsafe": base64.urlsafe_b64encode(raw).decode(),
        "md5": hashlib.md5(raw).hexdigest(),
        "sha1": hashlib.sha1(raw).hexdigest(),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "SHA256": hashlib.sha256(raw).hexdigest().upper(),
    }
