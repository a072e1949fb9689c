"""Request and response bodies of the privacy-computing product routes.

Calls and context registrations carry raw bytes (``application/octet-stream``):
the serialized TenSEAL context or ciphertext, nothing else; their parameters
(context id, bucket) are in the query string.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.he.model import HEProduct

Name = Annotated[str, Field(min_length=1, max_length=200)]
Column = Annotated[str, Field(min_length=1, max_length=256)]
Account = Annotated[str, Field(min_length=2, max_length=100)]
# What only the product's operator and oversight read (a provider of its data sees the rest).
HIDDEN_FROM_OTHERS = ("coefficients", "intercept", "subjects")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    grant: Annotated[str, Field(min_length=1, max_length=64)]
    consumers: Annotated[list[Account], Field(min_length=1, max_length=100)]


class VerifyIn(_In):
    """A band over one column of the grant's view, keyed by the dataset's subject.

    Give ``boundaries`` (strictly increasing; a value's band is the number of
    boundaries at or below it) or ``threshold`` (yes/no: band 1 when the value
    is at or above it)."""

    kind: Literal["verify"]
    dataset: Annotated[str, Field(min_length=1, max_length=64)]
    subject_column: Column | None = None
    value_column: Column
    boundaries: Annotated[list[float], Field(min_length=1, max_length=63)] | None = None
    threshold: float | None = None

    @model_validator(mode="after")
    def _one_predicate(self) -> VerifyIn:
        if (self.boundaries is None) == (self.threshold is None):
            raise ValueError("give boundaries or a threshold, not both")
        if self.threshold is not None:
            self.boundaries = [self.threshold]
        if not all(math.isfinite(b) for b in self.boundaries or []):
            raise ValueError("boundaries must be finite")
        return self


class ScoreIn(_In):
    """A linear model released by one of the operator's jobs under ``grant``."""

    kind: Literal["score"]
    job: Annotated[str, Field(min_length=1, max_length=64)]
    file: Annotated[str, Field(min_length=1, max_length=200)]
    features: Annotated[list[Column], Field(min_length=1, max_length=1024)]
    intercept_term: Column | None = None
    resolution: Annotated[float, Field(ge=0, le=1)] | None = None


ProductIn = Annotated[VerifyIn | ScoreIn, Field(discriminator="kind")]


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "deny"]
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(min_length=1, max_length=2000)]


class ProductOut(BaseModel):
    id: str
    kind: str
    name: str
    operator: str
    grant: str
    datasets: list[str]
    state: str
    state_reason: str
    consumers: list[str]
    created_at: datetime
    state_changed_at: datetime
    spec: dict[str, Any]

    @classmethod
    def of(cls, p: HEProduct, *, full: bool) -> ProductOut:
        hidden = () if full else HIDDEN_FROM_OTHERS
        spec = {k: v for k, v in p.spec.items() if k not in hidden}
        return cls(
            id=p.id,
            kind=p.kind.value,
            name=p.name,
            operator=p.operator,
            grant=p.grant_id,
            datasets=list(p.datasets),
            state=p.state.value,
            state_reason=p.state_reason,
            consumers=list(p.consumers),
            created_at=p.created_at,
            state_changed_at=p.state_changed_at,
            spec=spec,
        )


class ConsumerSpecOut(BaseModel):
    """What a consumer needs to call a product: for ``verify`` the dataset, its subject
    and value columns, the band boundaries and the bucket bits; for ``score`` the
    feature order, the model's kind and the score's resolution. Never coefficients."""

    model_config = ConfigDict(extra="forbid")

    dataset: str | None = None
    subject_column: str | None = None
    value_column: str | None = None
    boundaries: list[float] | None = None
    bucket_bits: int | None = None
    features: list[str] | None = None
    model_kind: str | None = None
    resolution: float | None = None


class ConsumerProductOut(BaseModel):
    """A product as a consumer it lists sees it (approved ones only): what to call and
    how, never its operator, job, grant, datasets' other details or coefficients."""

    model_config = ConfigDict(extra="forbid")

    id: str
    kind: str
    name: str
    state: str
    spec: ConsumerSpecOut

    @classmethod
    def of(cls, p: HEProduct) -> ConsumerProductOut:
        names = ConsumerSpecOut.model_fields
        spec = ConsumerSpecOut(**{k: v for k, v in p.spec.items() if k in names})
        return cls(id=p.id, kind=p.kind.value, name=p.name, state=p.state.value, spec=spec)


class ContextOut(BaseModel):
    id: str
    kind: str
    sha256: str
    bytes: int
    created_at: datetime
