"""Registered products: renewal, revocation, and whether one may be offered.

A product exists once its first registration ended registered
(:mod:`gateway.products.procedure`); it pins its lineage (a job's code hash,
data and policy versions and output manifest, or an HE product's definition
hash) and carries its code and validity (:mod:`gateway.products.codes`).

Rules:

- Renewal (续展, registration measures 001 art. 16) by the product's operator,
  only in the 60 days before expiry (409 otherwise, naming the window), for
  three years counted from the old expiry, never past the grant's term and
  never under a grant that cannot be used (:mod:`gateway.products.desk`).
- Revocation (撤销, art. 21) by an administrator, with the reason and legal
  basis (a registration obtained by concealment or false material, a forged
  result, an unlawful use of it).
- Offered only when registered (authorized-operation measures 001 art. 9:
  products are registered): :func:`check_offered` refuses a privacy-computing
  product's call by anyone but its operator unless its registration is valid
  now; :func:`offered_he_products` filters what a consumer may see. The only
  path by which a product reaches someone other than its operator is an HE
  product (a verification over the grant's views, or a score whose model is a
  released job's output): a job's released files are served to its operator
  alone (``/v1/jobs/{id}/outputs``), and the catalogue shows metadata, never files.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.audit import append
from gateway.grants.terms import years_after
from gateway.products.codes import (
    RENEWAL_WINDOW,
    grant_term_end,
    in_renewal_window,
    renewal_opens,
)
from gateway.products.errors import NotRegistered, NotYours, OutsideRenewalWindow
from gateway.products.model import PRODUCT, Product, Status, get_product, move
from gateway.store.lifecycle import Audit
from gateway.store.tables import products

ART_16 = "registration measures (001) art. 16"


def own_product(conn: Connection, product_id: str, operator: str) -> Product:
    """Rule: an operator renews and applies for only the products they registered."""
    product = get_product(conn, product_id)
    if product.operator != operator:
        raise NotYours(f"product {product_id} was registered by another operator")
    return product


def renew(conn: Connection, product_id: str, *, operator: str, now: datetime) -> Product:
    """Renew in the window before expiry, from the old expiry, within the grant's term."""
    product = own_product(conn, product_id, operator)
    if product.status != Status.REGISTERED:
        raise OutsideRenewalWindow(f"product {product_id} is {product.status}: not renewable")
    if not in_renewal_window(product.valid_until, now):
        raise OutsideRenewalWindow(
            f"product {product_id} can be renewed only in the {RENEWAL_WINDOW.days} days "
            f"before it expires ({ART_16}): from {renewal_opens(product.valid_until).isoformat()} "
            f"until {product.valid_until.isoformat()}"
        )
    grant_until = grant_term_end(conn, product.grant_id)
    valid_until = min(years_after(product.valid_until), grant_until)
    if valid_until <= product.valid_until:
        raise OutsideRenewalWindow(
            f"the grant of product {product_id} ends {grant_until.isoformat()}: a renewal "
            f"never runs past the operating term ({ART_16})"
        )
    conn.execute(
        sa.update(products)
        .where(products.c.id == product_id, products.c.valid_until == product.valid_until)
        .values(valid_until=valid_until, renewed_at=now)
    )
    append(
        conn,
        "product.registered",
        operator,
        grant_id=product.grant_id,
        datasets=product.datasets,
        detail={
            "action": "renewed",
            "product": product_id,
            "registration_code": product.registration_code,
            "from": product.valid_until.isoformat(),
            "valid_until": valid_until.isoformat(),
        },
    )
    return get_product(conn, product_id)


def revoke(
    conn: Connection, product_id: str, *, admin: str, reason: str, basis: str, now: datetime
) -> Product:
    """Revoke a registration (art. 21), with its reason and legal basis."""
    product = get_product(conn, product_id)
    audit = Audit(
        admin,
        grant_id=product.grant_id,
        datasets=product.datasets,
        detail={"reason": reason, "legal_basis": basis},
    )
    values = {"status_changed_at": now, "status_reason": f"{reason} ({basis})"}
    move(conn, PRODUCT, product_id, product.status, Status.REVOKED, audit, values)
    return get_product(conn, product_id)


def offered_he_products(conn: Connection, he_product_ids: Iterable[str], now: datetime) -> set[str]:
    """Which of these privacy-computing products have a registration valid at ``now``."""
    ids = list(he_product_ids)
    if not ids:
        return set()
    query = sa.select(products.c.he_product_id).where(
        products.c.he_product_id.in_(ids),
        products.c.status == Status.REGISTERED.value,
        products.c.valid_until > now,
    )
    return {str(r[0]) for r in conn.execute(query)}


def check_offered(conn: Connection, he_product_id: str, now: datetime) -> None:
    """Rule: a privacy-computing product answers anyone but its operator only while its
    registration is valid (authorized-operation measures 001 art. 9); else NotRegistered."""
    if not offered_he_products(conn, [he_product_id], now):
        raise NotRegistered(
            f"product {he_product_id} has no valid registration (登记): it is offered only "
            "once registered (authorized-operation measures 001 art. 9)"
        )
