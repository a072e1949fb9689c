"""The public facts of a period, read from the store: one place, so the portal and the
implementing agency's disclosure report say the same thing.

Everything here is public by design: product and grant metadata, counts of jobs
and products, dataset and column *names*. Never a data value, a job's code or
output, a log, a pseudonym, an account's token or a person's name beyond the
display name of an organisation or account acting as grantee, operator or provider.

What the functions read (the store only; who provides a dataset is the actor of its
first ``dataset.registered`` audit event: every upload is audited, and the dataset
registry itself lives outside the store):

- ``products``: the ``products`` table (and ``he_products.kind``); a product shows in a
  period it was registered at some time of: registered before the period's end, valid
  after its start, not cancelled or revoked before its start. Registrations that never
  ended registered have no ``products`` row and never show.
- ``grantees``: the ``grants`` table; a grant shows when its term met the period and it
  had not ended (revoked, expired) before the period's start.
- ``usage``: those grants, the ``jobs`` that ran in the period (not dummy runs; counted
  in the period of their ``finished_at``, like metering), the products registered in it.

States are the current ones, with the time a grant or product ended (``ended_at``), so a
past year's disclosure says what became of what it lists.
Names are an account's organisation's name, else the account's display name.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.periods import Period
from gateway.pricing.model import PriceClass, unit_price
from gateway.store.tables import (
    accounts,
    audit_events,
    grants,
    he_products,
    jobs,
    organisation_members,
    organisations,
)
from gateway.store.tables import (
    products as products_table,
)

# Grant and product states that end them (gateway.grants.model.State,
# gateway.products.model.Status values).
GRANT_ENDED = frozenset({"revoked", "expired"})
PRODUCT_ENDED = frozenset({"cancelled", "revoked"})
RELEASED = "released"  # gateway.jobs.model.State.RELEASED


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
    # What one unit costs a user, in fen, and the unit (gateway.pricing.model.unit_price):
    # None for the free classes and for a cost-plus basis with no unit cost yet.
    unit: str | None = None
    unit_price_fen: int | None = None
    ended_at: datetime | None = None  # cancelled, revoked or expired: when


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
    p = products_table.c
    rows = conn.execute(
        sa.select(products_table, he_products.c.kind)
        .select_from(products_table.outerjoin(he_products, p.he_product_id == he_products.c.id))
        .where(p.registered_at < period.end, p.valid_until > period.start)
        .order_by(p.registration_code)
    ).all()
    names = display_names(conn)
    found = []
    for r in rows:
        ended_at = _product_end(r.status, r.status_changed_at, r.valid_until)
        if ended_at is not None and ended_at <= period.start:
            continue
        basis = dict(r.price_basis or {})
        unit, price = unit_price(PriceClass(r.price_class), basis)
        found.append(
            PublicProduct(
                id=r.id,
                registration_code=r.registration_code,
                name=r.name,
                description=r.description,
                category=r.category,
                price_class=r.price_class,
                price_basis=basis,
                operator=names.get(r.operator, r.operator),
                datasets=tuple(sorted(r.datasets)),
                kind=r.kind or "file",
                status=r.status,
                registered_at=r.registered_at,
                valid_until=r.valid_until,
                unit=unit,
                unit_price_fen=price,
                ended_at=ended_at,
            )
        )
    return found


def grantees(conn: Connection, period: Period) -> list[PublicGrant]:
    """Grants whose term met the period (``valid_from < end`` and the grant not ended
    before ``start``), ordered by grantee then valid_from."""
    g = grants.c
    rows = conn.execute(
        sa.select(
            g.id,
            g.operator,
            g.scenario,
            g.purpose,
            g.scopes,
            g.state,
            g.valid_from,
            g.valid_until,
            g.state_changed_at,
        )
        .where(g.valid_from < period.end, g.valid_until > period.start)
        .order_by(g.valid_from, g.id)
    ).all()
    names = display_names(conn)
    found = []
    for r in rows:
        ended_at = _grant_end(r.state, r.state_changed_at, r.valid_until)
        if ended_at is not None and ended_at <= period.start:
            continue
        found.append(
            PublicGrant(
                id=r.id,
                grantee=names.get(r.operator, r.operator),
                scenario=r.scenario,
                purpose=r.purpose,
                scopes=tuple(
                    (s["dataset"], tuple(s["columns"]))
                    for s in sorted(r.scopes, key=lambda s: s["dataset"])
                ),
                valid_from=r.valid_from,
                valid_until=r.valid_until,
                state=r.state,
                ended_at=ended_at,
            )
        )
    return sorted(found, key=lambda x: (x.grantee, x.valid_from, x.id))


def usage(conn: Connection, period: Period) -> list[UsageLine]:
    """Per grantee and dataset: what the period saw, ordered by grantee then dataset."""
    names = display_names(conn)
    held: Counter[tuple[str, str]] = Counter()
    for grant in grantees(conn, period):
        for dataset, _ in grant.scopes:
            held[grant.grantee, dataset] += 1
    ran: Counter[tuple[str, str]] = Counter()
    released: Counter[tuple[str, str]] = Counter()
    j = jobs.c
    for r in conn.execute(
        sa.select(j.operator, j.datasets, j.state).where(
            j.dummy.is_(False),
            j.started_at.is_not(None),
            j.finished_at >= period.start,
            j.finished_at < period.end,
        )
    ):
        for dataset in r.datasets:
            key = (names.get(r.operator, r.operator), dataset)
            ran[key] += 1
            released[key] += r.state == RELEASED
    made: Counter[tuple[str, str]] = Counter()
    p = products_table.c
    for product in conn.execute(
        sa.select(p.operator, p.datasets).where(
            p.registered_at >= period.start, p.registered_at < period.end
        )
    ):
        for dataset in product.datasets:
            made[names.get(product.operator, product.operator), dataset] += 1
    providers = dataset_providers(conn)
    return [
        UsageLine(
            grantee=grantee,
            dataset=dataset,
            provider=names.get(providers.get(dataset, ""), providers.get(dataset, "")),
            grants=held[grantee, dataset],
            jobs=ran[grantee, dataset],
            released=released[grantee, dataset],
            products=made[grantee, dataset],
        )
        for grantee, dataset in sorted(set(held) | set(ran) | set(made))
    ]


# -- what the facts are made of -----------------------------------------------------------


def display_names(conn: Connection) -> dict[str, str]:
    """Account name -> its organisation's name, else its display name."""
    a = accounts.c
    rows = conn.execute(
        sa.select(a.name, a.display_name, organisations.c.name.label("organisation")).select_from(
            accounts.outerjoin(
                organisation_members, organisation_members.c.account == a.name
            ).outerjoin(organisations, organisations.c.id == organisation_members.c.organisation_id)
        )
    ).all()
    return {r.name: r.organisation or r.display_name or r.name for r in rows}


def dataset_providers(conn: Connection) -> dict[str, str]:
    """Dataset name -> the account that registered its first version (the audit log's
    ``dataset.registered`` events, the same owner as ``ProviderService.owner``)."""
    e = audit_events.c
    owners: dict[str, str] = {}
    for r in conn.execute(
        sa.select(e.actor, e.detail).where(e.type == "dataset.registered").order_by(e.id)
    ):
        owners.setdefault(str(r.detail.get("name", "")), r.actor)
    return owners


def _product_end(status: str, changed: datetime | None, valid_until: datetime) -> datetime | None:
    if status in PRODUCT_ENDED:
        return changed or valid_until
    return valid_until if status == "expired" else None


def _grant_end(state: str, changed: datetime, valid_until: datetime) -> datetime | None:
    if state == "expired":
        return min(changed, valid_until)
    return changed if state in GRANT_ENDED else None
