"""Request and response bodies of the data-product routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.products.service import Category, Product


class ProductIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=2, max_length=200)
    description: str = Field(min_length=1, max_length=10_000)
    category: Category


class ProductOut(BaseModel):
    id: str
    registration_code: str
    name: str
    description: str
    category: str
    operator: str
    job: str
    grant: str
    code_sha256: str
    datasets: list[str]
    dataset_versions: dict[str, str]
    policy_versions: dict[str, str]
    manifest: list[dict[str, Any]]
    manifest_sha256: str
    registered_at: datetime
    valid_until: datetime
    renewed_at: datetime | None

    @classmethod
    def of(cls, p: Product) -> ProductOut:
        return cls(
            id=p.id,
            registration_code=p.registration_code,
            name=p.name,
            description=p.description,
            category=p.category,
            operator=p.operator,
            job=p.job_id,
            grant=p.grant_id,
            code_sha256=p.code_sha256,
            datasets=list(p.datasets),
            dataset_versions=p.dataset_versions,
            policy_versions=p.policy_versions,
            manifest=p.manifest,
            manifest_sha256=p.manifest_sha256,
            registered_at=p.registered_at,
            valid_until=p.valid_until,
            renewed_at=p.renewed_at,
        )
