"""Data products: a released job registered for the catalogue, with its lineage.

An operator registers a product from one of their released jobs: a name, a
description and a class (``public_governance``: public governance and
welfare, free; ``industry_development``: industry and sector development,
priced at cost plus reasonable profit). The gateway generates the
registration code, records the lineage (job, code hash, dataset and policy
versions the outputs were checked against, the output manifest and its hash)
and audits ``product.registered``. A registration is valid for three years
and can be renewed by its operator for three years from the renewal
(audited as ``product.registered`` with ``"action": "renewed"``).

Invariants:
- Only a released job becomes a product, and only once.
- Lineage is copied at registration and never changes.
- A stop stops products too: registration and renewal happen only while the
  job's grant may be used (``*_while_usable``); under a suspended, revoked or
  expired grant they are refused (409) and audited as a denied
  ``scope.decision`` (``gateway.jobs.service.grant_refusal``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from gateway.audit import append
from gateway.jobs.errors import Conflict, Forbidden, NotFound
from gateway.jobs.model import State
from gateway.jobs.service import (
    GrantResolver,
    get_outcome,
    grant_refusal,
    manifest,
    manifest_sha256,
    own_job,
)
from gateway.store.tables import products

TERM = timedelta(days=3 * 365 + 1)  # three years, a leap day included


class Category(StrEnum):
    PUBLIC_GOVERNANCE = "public_governance"
    INDUSTRY_DEVELOPMENT = "industry_development"


@dataclass(frozen=True)
class Product:
    id: str
    registration_code: str
    name: str
    description: str
    category: str
    operator: str
    job_id: str
    grant_id: str
    code_sha256: str
    datasets: tuple[str, ...]
    dataset_versions: dict[str, str]
    policy_versions: dict[str, str]
    manifest: list[dict[str, Any]]
    manifest_sha256: str
    registered_at: datetime
    valid_until: datetime
    renewed_at: datetime | None


def _product(row: sa.Row[Any]) -> Product:
    m = dict(row._mapping)
    m["datasets"] = tuple(m["datasets"])
    return Product(**m)


def registration_code(now: datetime) -> str:
    """``DP-<year>-<12 hex>``: unguessable, unique by the table's constraint."""
    return f"DP-{now.year}-{secrets.token_hex(6).upper()}"


def register(
    conn: Connection,
    *,
    operator: str,
    job_id: str,
    name: str,
    description: str,
    category: Category,
) -> Product:
    job = own_job(conn, job_id, operator)
    if job.state != State.RELEASED:
        raise Conflict(f"job {job_id} is {job.state}; only a released job becomes a product")
    if conn.execute(sa.select(products.c.id).where(products.c.job_id == job_id)).first():
        raise Conflict(f"job {job_id} is registered as a product already")
    outcome = get_outcome(conn, job_id)
    files = manifest(conn, job)
    now = datetime.now(UTC)
    product_id = "prd-" + secrets.token_hex(8)
    valid_until = now + TERM
    values: dict[str, Any] = {
        "id": product_id,
        "registration_code": registration_code(now),
        "name": name,
        "description": description,
        "category": category.value,
        "operator": operator,
        "job_id": job_id,
        "grant_id": job.grant_id,
        "code_sha256": job.code_sha256,
        "datasets": list(job.datasets),
        "dataset_versions": dict(outcome.dataset_versions) if outcome else {},
        "policy_versions": dict(outcome.policy_versions) if outcome else {},
        "manifest": files,
        "manifest_sha256": manifest_sha256(files),
        "registered_at": now,
        "valid_until": valid_until,
        "renewed_at": None,
    }
    conn.execute(sa.insert(products).values(values))
    append(
        conn,
        "product.registered",
        operator,
        grant_id=job.grant_id,
        datasets=job.datasets,
        detail={
            "action": "registered",
            "product": product_id,
            "registration_code": values["registration_code"],
            "category": category.value,
            "job": job_id,
            "code_sha256": job.code_sha256,
            "manifest_sha256": values["manifest_sha256"],
            "dataset_versions": values["dataset_versions"],
            "policy_versions": values["policy_versions"],
            "valid_until": valid_until.isoformat(),
        },
    )
    return get_product(conn, product_id)


def get_product(conn: Connection, product_id: str) -> Product:
    row = conn.execute(sa.select(products).where(products.c.id == product_id)).first()
    if row is None:
        raise NotFound(f"no product {product_id!r}")
    return _product(row)


def list_products(conn: Connection) -> list[Product]:
    query = sa.select(products).order_by(products.c.registered_at.desc(), products.c.id)
    return [_product(r) for r in conn.execute(query)]


def renew(conn: Connection, product_id: str, *, operator: str) -> Product:
    """Rule: only the registering operator renews; valid three years from the renewal."""
    product = get_product(conn, product_id)
    if product.operator != operator:
        raise Forbidden(f"product {product_id} was registered by another operator")
    now = datetime.now(UTC)
    valid_until = max(product.valid_until, now + TERM)
    conn.execute(
        sa.update(products)
        .where(products.c.id == product_id)
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
            "valid_until": valid_until.isoformat(),
        },
    )
    return get_product(conn, product_id)


def register_while_usable(
    engine: Engine,
    resolver: GrantResolver | None,
    *,
    operator: str,
    job_id: str,
    name: str,
    description: str,
    category: Category,
) -> Product:
    """:func:`register`, while the job's grant may be used (see the module docstring)."""
    with engine.begin() as conn:
        job = own_job(conn, job_id, operator)
        detail = {"job": job_id, "action": "product.register"}
        refusal = grant_refusal(conn, resolver, job.grant_id, actor=operator,
                                datasets=job.datasets, detail=detail)  # fmt: skip
        if refusal is None:
            return register(conn, operator=operator, job_id=job_id, name=name,
                            description=description, category=category)  # fmt: skip
    raise refusal


def renew_while_usable(
    engine: Engine, resolver: GrantResolver | None, product_id: str, *, operator: str
) -> Product:
    """:func:`renew`, while the product's grant may be used (see the module docstring)."""
    with engine.begin() as conn:
        product = get_product(conn, product_id)
        if product.operator != operator:
            raise Forbidden(f"product {product_id} was registered by another operator")
        detail = {"product": product_id, "action": "product.renew"}
        refusal = grant_refusal(conn, resolver, product.grant_id, actor=operator,
                                datasets=product.datasets, detail=detail)  # fmt: skip
        if refusal is None:
            return renew(conn, product_id, operator=operator)
    raise refusal
