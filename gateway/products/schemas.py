"""Request and response bodies of ``/v1/products`` (registrations and registered products)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.pricing.model import PriceClass, unit_price
from gateway.products.model import (
    Category,
    Kind,
    ObjectionRecord,
    Product,
    Registration,
)
from gateway.products.procedure import Application

Text = Field(min_length=1, max_length=10_000)


class ApplicationIn(BaseModel):
    """A first registration names ``job`` or ``he_product`` (one) with a name, description
    and class; a change or correction names ``product`` and what changes, with a
    statement; a cancellation names ``product`` with a statement."""

    model_config = ConfigDict(extra="forbid")

    type: Kind
    job: str | None = Field(default=None, min_length=1, max_length=64)
    he_product: str | None = Field(default=None, min_length=1, max_length=32)
    product: str | None = Field(default=None, min_length=1, max_length=32)
    name: str | None = Field(default=None, min_length=2, max_length=200)
    description: str | None = Field(default=None, min_length=1, max_length=10_000)
    category: Category | None = None
    statement: str = Field(default="", max_length=10_000)
    # The price (gateway.pricing.basis): required for an industry product's first
    # registration; a public-governance one is free unless it names its class.
    price_class: PriceClass | None = None
    price_basis: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _names_its_subject(self) -> ApplicationIn:
        if self.price_basis is not None and self.price_class is None:
            raise ValueError("a price_basis goes with its price_class")
        if self.type == Kind.FIRST:
            if (self.job is None) == (self.he_product is None) or self.product is not None:
                raise ValueError("a first registration names one of job or he_product")
            if self.name is None or self.description is None or self.category is None:
                raise ValueError("a first registration gives name, description and category")
            return self
        if self.product is None or self.job is not None or self.he_product is not None:
            raise ValueError(f"a {self.type.value} registration names the registered product")
        if not self.statement.strip():
            raise ValueError(f"a {self.type.value} registration states its reason (statement)")
        if self.type == Kind.CANCELLATION and (
            self.name or self.description or self.category or self.price_class
        ):
            raise ValueError("a cancellation changes nothing but the product's status")
        changes = self.name or self.description or self.category or self.price_class
        if self.type != Kind.CANCELLATION and not changes:
            raise ValueError(
                f"a {self.type.value} gives the new name, description, category or price"
            )
        return self

    def application(self) -> Application:
        return Application(
            kind=self.type,
            name=self.name,
            description=self.description,
            category=self.category,
            statement=self.statement,
            job_id=self.job,
            he_product_id=self.he_product,
            product_id=self.product,
            price_class=self.price_class,
            price_basis=(self.price_basis or {}) if self.price_class else None,
        )


class RefusalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Text
    legal_basis: str = Field(min_length=1, max_length=1000)


class ObjectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reasons: str = Text


class ResolutionIn(BaseModel):
    """``uphold`` refuses the registration: it needs the legal basis of the refusal."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["uphold", "dismiss"]
    reason: str = Text
    legal_basis: str = Field(default="", max_length=1000)

    @model_validator(mode="after")
    def _basis_when_upheld(self) -> ResolutionIn:
        if self.decision == "uphold" and not self.legal_basis.strip():
            raise ValueError("an upheld objection refuses the registration: give legal_basis")
        return self


class ObjectionOut(BaseModel):
    id: str
    registration: str
    objector: str
    reasons: str
    state: str
    filed_at: datetime
    resolved_by: str | None
    resolution: str | None
    resolved_at: datetime | None

    @classmethod
    def of(cls, o: ObjectionRecord) -> ObjectionOut:
        return cls(
            id=o.id,
            registration=o.registration_id,
            objector=o.objector,
            reasons=o.reasons,
            state=o.state.value,
            filed_at=o.filed_at,
            resolved_by=o.resolved_by,
            resolution=o.resolution,
            resolved_at=o.resolved_at,
        )


class RegistrationOut(BaseModel):
    id: str
    type: str
    state: str
    job: str | None
    he_product: str | None
    product: str | None
    applicant: str
    grant: str
    name: str
    description: str
    category: str
    statement: str
    applied_at: datetime
    state_changed_at: datetime
    publicity_ends_at: datetime | None
    decided_by: str | None
    refusal_reason: str | None
    refusal_basis: str | None
    objections: list[ObjectionOut]
    price_class: str | None
    price_basis: dict[str, Any] | None

    @classmethod
    def of(cls, r: Registration, objections: list[ObjectionRecord]) -> RegistrationOut:
        return cls(
            id=r.id,
            type=r.type.value,
            state=r.state.value,
            job=r.job_id,
            he_product=r.he_product_id,
            product=r.product_id,
            applicant=r.applicant,
            grant=r.grant_id,
            name=r.name,
            description=r.description,
            category=r.category.value,
            statement=r.statement,
            applied_at=r.applied_at,
            state_changed_at=r.state_changed_at,
            publicity_ends_at=r.publicity_ends_at,
            decided_by=r.decided_by,
            refusal_reason=r.refusal_reason,
            refusal_basis=r.refusal_basis,
            objections=[ObjectionOut.of(o) for o in objections],
            price_class=r.price_class.value if r.price_class else None,
            price_basis=r.price_basis,
        )


class ProductOut(BaseModel):
    id: str
    registration_code: str
    status: str
    name: str
    description: str
    category: str
    operator: str
    job: str | None
    he_product: str | None
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
    status_changed_at: datetime | None
    status_reason: str | None
    price_class: str
    price_basis: dict[str, Any]
    unit_price_fen: int | None  # one unit at the basis's price (gateway.pricing); None: free

    @classmethod
    def of(cls, p: Product) -> ProductOut:
        return cls(
            id=p.id,
            registration_code=p.registration_code,
            status=p.status.value,
            name=p.name,
            description=p.description,
            category=p.category,
            operator=p.operator,
            job=p.job_id,
            he_product=p.he_product_id,
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
            status_changed_at=p.status_changed_at,
            status_reason=p.status_reason,
            price_class=p.price_class.value,
            price_basis=p.price_basis,
            unit_price_fen=unit_price(p.price_class, p.price_basis)[1],
        )
