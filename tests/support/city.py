"""The synthetic city registered with its example policies, and a pipeline over it.

Plain factory functions (no fixtures): corpus tests build one city per
module and run real jobs against it through real containers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sandbox.intake.policy import PolicyStore
from sandbox.intake.registry import Registry
from sandbox.judge.fingerprints import FingerprintStore
from sandbox.judge.ledger import Ledger
from sandbox.judge.ledger_keys import EntityMaps, ledger_secret
from sandbox.pipeline import Pipeline
from sandbox.run.backends.base import Backend, Limits
from sandbox.synthetic import demo
from sandbox.views.build import DatasetScope, Grant, ViewBuilder
from sandbox.views.dummy import DummyBuilder

ROOT = Path(__file__).resolve().parents[2]
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
    views: ViewBuilder
    dummy: DummyBuilder
    ledger: Ledger
    pipeline: Pipeline


def make_city(
    root: Path,
    backend: Backend,
    *,
    residents: int = 20_000,
    enterprises: int = 1_500,
    policy_overrides: dict[str, str] | None = None,
) -> City:
    """Generate, register and apply policies; a pipeline running jobs on ``backend``."""
    paths = demo.generate_city(root / "src", residents=residents, enterprises=enterprises, seed=5)
    data = root / "data"
    registry = Registry(data)
    policies = PolicyStore(data)
    for name, path in paths.items():
        version = registry.register(
            path, name=name, entity_column=ENTITY[name], provider="city-bureau"
        )
        text = (policy_overrides or {}).get(name) or (POLICIES / f"{name}.yaml").read_text()
        policies.apply(text, {c.name: c.type for c in version.columns}, dataset=name, author="t")
    cache = root / "cache"
    views = ViewBuilder(registry, policies, cache)
    dummy = DummyBuilder(views, cache)
    ledger = Ledger(data / "ledger.sqlite")
    pipeline = Pipeline(
        views=views,
        dummy=dummy,
        backend=backend,
        ledger=ledger,
        fingerprints=FingerprintStore(data),
        entity_maps=EntityMaps(cache, ledger_secret(data)),
        work_dir=root / "work",
        limits=Limits(wall_seconds=120, memory_bytes=1024 * 1024 * 1024),
    )
    # The sandbox uid reads views and job files: pytest's directories are 0700.
    for path in (root, *root.parents[:2]):
        path.chmod(path.stat().st_mode | 0o755)
    return City(root, registry, policies, views, dummy, ledger, pipeline)


RESIDENT_COLUMNS = ("person_id", "gender", "birth_date", "district_code", "district_name")
ENTERPRISE_COLUMNS = (
    "credit_code",
    "name",
    "industry",
    "district_code",
    "registered_capital",
    "employees",
    "established",
    "legal_person_id",
)
INSURANCE_COLUMNS = ("person_id", "credit_code", "month", "contribution_base", "amount")
TAX_COLUMNS = ("credit_code", "quarter", "tax_type", "amount")


def city_grant(grant_id: str = "g-city", operator: str = "op-1") -> Grant:
    """A grant over all four datasets with every column their policies expose."""
    return Grant(
        grant_id=grant_id,
        operator=operator,
        scenario="city-labour-market",
        scopes=(
            DatasetScope("residents", RESIDENT_COLUMNS),
            DatasetScope("enterprises", ENTERPRISE_COLUMNS),
            DatasetScope("social_insurance", INSURANCE_COLUMNS),
            DatasetScope("tax_payments", TAX_COLUMNS),
        ),
        key=(grant_id.encode() * 8)[:32].ljust(32, b"k"),
        key_id=f"{grant_id}-k1",
    )
