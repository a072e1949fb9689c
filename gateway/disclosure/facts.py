"""The public facts of a period, read from the store: one place, so the portal and the
implementing agency's disclosure report say the same thing.

Everything here is public by design: product and grant metadata, counts of jobs
and products, dataset and column *names*. Never a data value, a job's code or
output, a log, a pseudonym, an account's token or a person's name beyond the
display name of an organisation or account acting as grantee, operator or provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from gateway.periods import Period


@dataclass(frozen=True)
class PublicProduct:
    """A product registered (or still valid) in the period."""

    id: str
    registration_code: str
    name: str
    description: str
    category: str  # gateway.products.model.Category value
    price_class: str  # gateway.pricing.model.PriceClass value
    price_basis: dict[str, object]  # the condition, tariff item, margin: no secrets
    operator: str  # the operator's organisation name, else its account display name
    datasets: tuple[str, ...]
    kind: str  # "file" (a released job's outputs) or "verify"/"score" (encrypted)
    status: str  # gateway.products.model.Status value
    registered_at: datetime
    valid_until: datetime


@dataclass(frozen=True)
class PublicGrant:
    """A grant (授权) live at some time in the period: grantee, content, scope, term."""

    id: str
    grantee: str  # the operator's organisation name, else its account display name
    scenario: str
    purpose: str
    scopes: tuple[tuple[str, tuple[str, ...]], ...]  # (dataset, column names)
    valid_from: datetime
    valid_until: datetime
    state: str
    ended_at: datetime | None  # revoked, expired or terminated: when


@dataclass(frozen=True)
class UsageLine:
    """The period's use of one dataset by one grantee (the yearly usage disclosure)."""

    grantee: str
    dataset: str
    provider: str  # the dataset's provider (organisation or display name)
    grants: int  # grants of the grantee covering the dataset, live in the period
    jobs: int  # jobs run on it in the period (not counting dummy runs)
    released: int  # of those, released
    products: int  # products registered in the period from it


def products(conn: Connection, period: Period) -> list[PublicProduct]:
    """Products registered at some time in the period (registered before its end and not
    cancelled or revoked before its start), ordered by registration code."""
    raise NotImplementedError


def grantees(conn: Connection, period: Period) -> list[PublicGrant]:
    """Grants whose term met the period (``valid_from < end`` and the grant not ended
    before ``start``), ordered by grantee then valid_from."""
    raise NotImplementedError


def usage(conn: Connection, period: Period) -> list[UsageLine]:
    """Per grantee and dataset: what the period saw, ordered by grantee then dataset."""
    raise NotImplementedError
