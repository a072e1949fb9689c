"""Setting a product's price and recording what consumers are charged.

Stage: after registration (the product exists); the revenue side of the cost accounting
(``gateway.costs``). Rules (001 authorized-operation art. 26, 34; 004 art. 23, 28; 002
art. 24):

- A price is set with the registration (the application carries it, checked when it is
  made: :func:`priced_application`; written when the registration is granted:
  :func:`price_registered`) or later by the product's operator or an administrator
  (:func:`set_price`), only while the product is registered. Every setting is audited
  ``product.price`` with the class and basis before and after, and who set it.
- A public-governance product is never chargeable: its class is free or conditionally
  free (:mod:`gateway.pricing.basis`), a charge for it is refused, and a change of
  category to public governance that leaves a chargeable class makes it free.
- A charge's amount is the platform's: quantity x the unit price of the product's stored
  basis (:func:`gateway.pricing.model.unit_price`), never the caller's. Each charge names
  its source (an operator's sale reference, an encrypted call), unique: nothing is charged
  twice (409). Audited ``charge.recorded`` in the charge's transaction.
- A chargeable privacy-computing product's answered call is charged one unit, in the
  transaction that settles the call (:func:`charge_he_call`).
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.audit import append
from gateway.costs.ledger import Rates, cost_to_date
from gateway.periods import Period
from gateway.pricing.basis import RULES, PricingRules, check, freeze
from gateway.pricing.errors import PricingConflict, PricingError, PricingForbidden
from gateway.pricing.model import CHARGEABLE, NO_CHARGE, PriceClass, unit_price
from gateway.products.model import Category, Kind, Product, Registration, Status, get_product
from gateway.products.procedure import Application
from gateway.store.tables import accounts, charges, products

SYSTEM = "system"  # the actor of charges the platform records itself (encrypted calls)


@dataclass(frozen=True)
class Charge:
    id: str
    product_id: str
    payer: str
    at: datetime
    quantity: int
    unit: str
    amount_fen: int
    price_class: PriceClass
    basis: dict[str, Any]
    source: str
    recorded_by: str


def _price(product: Product) -> dict[str, Any]:
    return {"class": product.price_class.value, "basis": product.price_basis}


def priced_application(conn: Connection, app: Application, rules: PricingRules) -> Application:
    """The application with its price checked (422 when the rules refuse it; the basis as
    the applicant gave it, checked again against the settings at registration): a first
    registration of a public-governance product is free unless it names its class; an
    industry product names its class; a change or correction that leaves a
    public-governance product with a chargeable class names a free one."""
    if app.kind == Kind.CANCELLATION:
        return app
    current: Product | None = None
    if app.kind != Kind.FIRST:
        current = get_product(conn, str(app.product_id))
    category = app.category or (Category(current.category) if current else None)
    if category is None:  # the schema requires a first registration's category
        raise PricingError("a first registration names its category")
    if app.price_class is None:
        if current is None and category == Category.PUBLIC_GOVERNANCE:
            return dataclasses.replace(app, price_class=PriceClass.FREE, price_basis={})
        if current is None:
            raise PricingError(
                "an industry-development product names its price class (free, "
                f"conditionally_free, guided or cost_plus) and basis ({RULES})"
            )
        if category == Category.PUBLIC_GOVERNANCE and current.price_class in CHARGEABLE:
            raise PricingError(
                f"product {current.id} is {current.price_class.value}: as a public-governance "
                f"product it names price_class free or conditionally_free ({RULES})"
            )
        return app
    basis = dict(app.price_basis or {})
    check(category, app.price_class, basis, rules)  # checked again when it is set
    return dataclasses.replace(app, price_basis=basis)


def set_price(
    conn: Connection,
    product_id: str,
    price_class: PriceClass,
    basis: dict[str, Any],
    *,
    actor: str,
    now: datetime,
    rules: PricingRules,
    rates: Rates,
    operator: str | None = None,
    registration: Registration | None = None,
) -> Product:
    """Set a registered product's price (``operator``: only their own product); audited
    (``from`` is None for the price a first registration gives the new product)."""
    product = get_product(conn, product_id)
    if operator is not None and product.operator != operator:
        raise PricingForbidden(f"product {product_id} was registered by another operator")
    if product.status != Status.REGISTERED:
        raise PricingConflict(f"product {product_id} is {product.status}: its price is fixed")
    checked = check(Category(product.category), price_class, basis, rules)
    costed = price_class == PriceClass.COST_PLUS
    cost = cost_to_date(conn, product_id, rates, now) if costed else 0
    default_unit = "call" if product.he_product_id else "copy"
    stored = freeze(price_class, checked, cost_to_date_fen=cost, default_unit=default_unit, now=now)
    conn.execute(
        sa.update(products)
        .where(products.c.id == product_id)
        .values(price_class=price_class.value, price_basis=stored)
    )
    first = registration is not None and registration.type == Kind.FIRST
    detail: dict[str, Any] = {
        "product": product_id,
        "from": None if first else _price(product),
        "to": {"class": price_class.value, "basis": stored},
        "by": actor,
    }
    if registration is not None:
        detail["registration"] = registration.id
    append(
        conn,
        "product.price",
        actor,
        grant_id=product.grant_id,
        datasets=product.datasets,
        detail=detail,
    )
    return get_product(conn, product_id)


def price_registered(
    conn: Connection,
    registration: Registration,
    *,
    admin: str,
    now: datetime,
    rules: PricingRules,
    rates: Rates,
) -> None:
    """A granted registration's price becomes the product's (nothing for a cancellation);
    a public-governance product left with a chargeable class becomes free."""
    if registration.type == Kind.CANCELLATION or registration.product_id is None:
        return
    product = get_product(conn, registration.product_id)
    price_class, basis = registration.price_class, registration.price_basis
    if price_class is None:
        if product.category != Category.PUBLIC_GOVERNANCE or product.price_class in NO_CHARGE:
            return
        price_class, basis = PriceClass.FREE, {}
    set_price(
        conn,
        product.id,
        price_class,
        basis or {},
        actor=admin,
        now=now,
        rules=rules,
        rates=rates,
        registration=registration,
    )


def _chargeable(product: Product, now: datetime) -> tuple[str, int]:
    """The product's unit and unit price, or why it cannot be charged."""
    if product.category == Category.PUBLIC_GOVERNANCE or product.price_class in NO_CHARGE:
        raise PricingError(
            f"product {product.id} is {product.price_class.value} ({product.category}): "
            f"it carries no charge ({RULES})"
        )
    if product.status != Status.REGISTERED or product.valid_until <= now:
        raise PricingConflict(f"product {product.id} is not offered now ({product.status})")
    unit, price = unit_price(product.price_class, product.price_basis)
    if unit is None or price is None:
        raise PricingConflict(
            f"product {product.id} has no unit price yet: its operator sets the price first"
        )
    return unit, price


def _record(
    conn: Connection,
    product: Product,
    *,
    payer: str,
    quantity: int,
    source: str,
    actor: str,
    now: datetime,
) -> Charge:
    unit, price = _chargeable(product, now)
    values: dict[str, Any] = {
        "id": "chg-" + secrets.token_hex(8),
        "product_id": product.id,
        "payer": payer,
        "at": now,
        "quantity": quantity,
        "unit": unit,
        "amount_fen": price * quantity,
        "price_class": product.price_class.value,
        "basis": product.price_basis,
        "source": source,
        "recorded_by": actor,
    }
    try:
        with conn.begin_nested():
            conn.execute(sa.insert(charges).values(values))
    except sa.exc.IntegrityError as e:
        raise PricingConflict(f"{source} was charged already") from e
    append(
        conn,
        "charge.recorded",
        actor,
        grant_id=product.grant_id,
        datasets=product.datasets,
        detail={
            "charge": values["id"],
            "product": product.id,
            "payer": payer,
            "quantity": quantity,
            "unit": unit,
            "unit_price_fen": price,
            "amount_fen": values["amount_fen"],
            "price_class": product.price_class.value,
            "source": source,
        },
    )
    return _charge(values)


def record_charge(
    conn: Connection,
    product_id: str,
    *,
    operator: str,
    payer: str,
    quantity: int,
    reference: str,
    now: datetime,
) -> Charge:
    """An operator records a sale of its product to ``payer`` (an account of the gateway)."""
    product = get_product(conn, product_id)
    if product.operator != operator:
        raise PricingForbidden(f"product {product_id} was registered by another operator")
    known = conn.execute(sa.select(accounts.c.name).where(accounts.c.name == payer)).first()
    if known is None:
        raise PricingError(f"the payer {payer!r} is not an account of this gateway")
    source = f"sale:{product_id}:{reference}"
    return _record(
        conn, product, payer=payer, quantity=quantity, source=source, actor=operator, now=now
    )


def charge_he_call(
    conn: Connection, he_product_id: str, consumer: str, call_id: int, now: datetime
) -> Charge | None:
    """One unit for an answered call of a registered, chargeable encrypted product (None:
    the product is free, not registered or has no unit price yet: nothing is charged)."""
    row = conn.execute(
        sa.select(products.c.id).where(
            products.c.he_product_id == he_product_id,
            products.c.status == Status.REGISTERED.value,
        )
    ).first()
    if row is None:
        return None
    product = get_product(conn, str(row.id))
    try:
        _chargeable(product, now)
    except PricingError:
        return None
    return _record(
        conn,
        product,
        payer=consumer,
        quantity=1,
        source=f"he-call:{call_id}",
        actor=SYSTEM,
        now=now,
    )


def list_charges(
    conn: Connection,
    period: Period,
    *,
    product: str | None = None,
    operator: str | None = None,
    payer: str | None = None,
) -> list[Charge]:
    """The period's charges, oldest first, narrowed to a product, an operator's products
    or a payer."""
    c = charges.c
    query = (
        sa.select(charges)
        .join(products, products.c.id == c.product_id)
        .where(c.at >= period.start, c.at < period.end)
        .order_by(c.at, c.id)
    )
    if product is not None:
        query = query.where(c.product_id == product)
    if operator is not None:
        query = query.where(products.c.operator == operator)
    if payer is not None:
        query = query.where(c.payer == payer)
    return [_charge(dict(r._mapping)) for r in conn.execute(query)]


def _charge(m: dict[str, Any]) -> Charge:
    return Charge(**(m | {"price_class": PriceClass(m["price_class"])}))
