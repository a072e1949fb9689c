"""What the seeded year did, as it did it: the record the year's end-to-end tests compare
the gateway's reports, portal, ledger and metrics with (``tests.support.seeded_year``).

Written step by step from what the seed sent and what the gateway answered, never
read back from the store. Months are CST months of the seeded year.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class JobDone:
    id: str
    operator: str
    grant: str  # the key of Expected.grants
    dataset: str
    kind: str  # sql | python
    month: int
    state: str  # released | denied (after review)
    reviewed: str | None = None  # approve | deny


@dataclass(frozen=True)
class Refusal:
    operator: str
    grant: str
    dataset: str
    month: int


@dataclass
class GrantDone:
    id: str
    operator: str
    provider: str
    dataset: str
    columns: tuple[str, ...]
    valid_from: datetime
    valid_until: datetime
    ended: str | None = None  # expired | revoked
    ended_month: int | None = None


@dataclass(frozen=True)
class ProductDone:
    id: str
    name: str
    operator: str
    category: str
    price_class: str
    price_basis: dict[str, Any]
    dataset: str
    month: int
    source: str  # the job id or the HE product id


@dataclass(frozen=True)
class ChargeDone:
    product: str  # the key of Expected.products
    payer: str
    quantity: int
    amount_fen: int
    month: int
    source: str  # "manual" or "he-call"


@dataclass
class Expected:
    """What the seed did, as it did it (see the module docstring)."""

    year: int
    jobs: list[JobDone] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    grants: dict[str, GrantDone] = field(default_factory=dict)
    products: dict[str, ProductDone] = field(default_factory=dict)
    charges: list[ChargeDone] = field(default_factory=list)
    he_calls: list[int] = field(default_factory=list)  # the month of each answered call
    incidents: list[str] = field(default_factory=list)
    failed_signins: int = 0
    refused_charges: list[tuple[str, int]] = field(default_factory=list)  # (product, status)
    prices_applied: bool = True  # the registrations took price fields (H2)
    charging: bool = True  # POST .../charges exists (H2)
    identifying: list[str] = field(default_factory=list)  # values naming data subjects
    datasets: dict[str, str] = field(default_factory=dict)  # dataset -> provider account

    def jobs_by(self, attribute: str) -> Counter[Any]:
        return Counter(getattr(j, attribute) for j in self.jobs)

    def charged_fen(self, product: str | None = None) -> int:
        return sum(c.amount_fen for c in self.charges if product in (None, c.product))
