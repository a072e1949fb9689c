"""The states of a product registration, of a registered product and of an objection.

Three tables of moves (``gateway.store.lifecycle.Lifecycle``), registered in
``gateway.lifecycles``; every state change goes through :func:`move`, which
calls the one ``transition()`` (checked, compare-and-set, audited in the
caller's transaction) and answers a refused or stale move with
:class:`~gateway.products.errors.ProcedureConflict` (409).

- :data:`REGISTRATION`, the procedure of the registration measures (001 art.
  13: 申请、受理、形式审核、公示、赋码)::

      applied -> accepted -> formal_review -> publicity -> registered
      applied | accepted | formal_review | publicity -> refused  (reason, legal basis)

- :data:`PRODUCT`, a registered product's own status (art. 15, 16, 21)::

      registered -> expired      (validity ended without renewal; the sweep)
      expired -> cancelled       (注销 of an unrenewed registration, art. 16; the sweep)
      registered -> cancelled    (a cancellation registration of its operator)
      registered | expired -> revoked   (撤销 by the registration body, art. 21)

- :data:`OBJECTION`, an objection raised during publicity::

      pending -> upheld | dismissed   (an administrator, once)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.pricing.model import PriceClass
from gateway.products.errors import ProcedureConflict, UnknownProduct, UnknownRegistration
from gateway.store import lifecycle
from gateway.store.lifecycle import Audit, IllegalMove, Lifecycle, MovedMeanwhile
from gateway.store.tables import product_objections, product_registrations, products


class Step(StrEnum):
    """A registration application's state. Values are stored: never change them."""

    APPLIED = "applied"
    ACCEPTED = "accepted"
    FORMAL_REVIEW = "formal_review"
    PUBLICITY = "publicity"
    REGISTERED = "registered"
    REFUSED = "refused"


class Kind(StrEnum):
    """The registration types of 001 art. 13."""

    FIRST = "first"  # 首次登记
    CHANGE = "change"  # 变更登记
    CORRECTION = "correction"  # 更正登记
    CANCELLATION = "cancellation"  # 注销登记


class Status(StrEnum):
    """A registered product's status. Values are stored: never change them."""

    REGISTERED = "registered"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    REVOKED = "revoked"


class Objection(StrEnum):
    PENDING = "pending"
    UPHELD = "upheld"
    DISMISSED = "dismissed"


class Category(StrEnum):
    """The two classes of the catalogue: free for public governance and welfare; priced
    at cost plus reasonable profit for industry and sector development."""

    PUBLIC_GOVERNANCE = "public_governance"
    INDUSTRY_DEVELOPMENT = "industry_development"


OPEN = frozenset({Step.APPLIED, Step.ACCEPTED, Step.FORMAL_REVIEW, Step.PUBLICITY})
REGISTRATION: Lifecycle[Step] = Lifecycle(
    name="product_registration",
    states=Step,
    moves={
        Step.APPLIED: frozenset({Step.ACCEPTED, Step.REFUSED}),
        Step.ACCEPTED: frozenset({Step.FORMAL_REVIEW, Step.REFUSED}),
        Step.FORMAL_REVIEW: frozenset({Step.PUBLICITY, Step.REFUSED}),
        Step.PUBLICITY: frozenset({Step.REGISTERED, Step.REFUSED}),
        Step.REGISTERED: frozenset(),
        Step.REFUSED: frozenset(),
    },
    table=product_registrations,
    key="id",
    state="state",
    event="product.registration",
    description=(
        "A product registration application (registration measures 001 art. 13): accepted, "
        "formally reviewed and publicised by the registration body, registered once publicity "
        "ended with no objection pending; refused with reason and legal basis at any step "
        "before."
    ),
    notes={(Step.PUBLICITY, Step.REFUSED): "objection upheld, or refused"},
)
PRODUCT: Lifecycle[Status] = Lifecycle(
    name="product",
    states=Status,
    moves={
        Status.REGISTERED: frozenset({Status.EXPIRED, Status.CANCELLED, Status.REVOKED}),
        Status.EXPIRED: frozenset({Status.CANCELLED, Status.REVOKED}),
        Status.CANCELLED: frozenset(),
        Status.REVOKED: frozenset(),
    },
    table=products,
    key="id",
    state="status",
    event="product.status",
    description=(
        "A registered product: expired and then cancelled when its validity ends unrenewed "
        "(001 art. 16), cancelled by its cancellation registration, revoked by the "
        "registration body for a registration obtained by fraud (art. 21)."
    ),
    notes={(Status.REGISTERED, Status.EXPIRED): "validity ended unrenewed"},
)
OBJECTION: Lifecycle[Objection] = Lifecycle(
    name="product_objection",
    states=Objection,
    moves={
        Objection.PENDING: frozenset({Objection.UPHELD, Objection.DISMISSED}),
        Objection.UPHELD: frozenset(),
        Objection.DISMISSED: frozenset(),
    },
    table=product_objections,
    key="id",
    state="state",
    event="product.objection",
    description="An objection to a registration in publicity, resolved once by an administrator.",
)


@dataclass(frozen=True)
class Registration:
    id: str
    type: Kind
    state: Step
    job_id: str | None
    he_product_id: str | None
    product_id: str | None
    applicant: str
    grant_id: str
    name: str
    description: str
    category: Category
    statement: str
    applied_at: datetime
    state_changed_at: datetime
    publicity_ends_at: datetime | None
    decided_by: str | None
    refusal_reason: str | None
    refusal_basis: str | None
    # The price the application asks for (gateway.pricing); None: the product's stays.
    price_class: PriceClass | None = None
    price_basis: dict[str, Any] | None = None

    @property
    def subject(self) -> str:
        """What the registration is of: ``job:<id>``, ``he:<id>`` or ``product:<id>``."""
        if self.product_id is not None:
            return f"product:{self.product_id}"
        return f"job:{self.job_id}" if self.job_id is not None else f"he:{self.he_product_id}"


@dataclass(frozen=True)
class Product:
    id: str
    registration_code: str
    name: str
    description: str
    category: str
    operator: str
    job_id: str | None
    he_product_id: str | None
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
    status: Status
    status_changed_at: datetime | None
    status_reason: str | None
    price_class: PriceClass = PriceClass.FREE  # gateway.pricing: set at registration
    price_basis: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectionRecord:
    id: str
    registration_id: str
    objector: str
    reasons: str
    state: Objection
    filed_at: datetime
    resolved_by: str | None
    resolution: str | None
    resolved_at: datetime | None


def _registration(row: sa.Row[Any]) -> Registration:
    m = dict(row._mapping)
    m["type"], m["state"] = Kind(m["type"]), Step(m["state"])
    m["category"] = Category(m["category"])
    m["price_class"] = PriceClass(m["price_class"]) if m["price_class"] else None
    return Registration(**m)


def _product(row: sa.Row[Any]) -> Product:
    m = dict(row._mapping)
    m["datasets"], m["status"] = tuple(m["datasets"]), Status(m["status"])
    m["price_class"] = PriceClass(m["price_class"])
    return Product(**m)


def _objection(row: sa.Row[Any]) -> ObjectionRecord:
    m = dict(row._mapping)
    m["state"] = Objection(m["state"])
    return ObjectionRecord(**m)


def get_registration(conn: Connection, registration_id: str) -> Registration:
    query = sa.select(product_registrations).where(product_registrations.c.id == registration_id)
    row = conn.execute(query).first()
    if row is None:
        raise UnknownRegistration(f"no registration application {registration_id!r}")
    return _registration(row)


def list_registrations(conn: Connection, *, applicant: str | None = None) -> list[Registration]:
    query = sa.select(product_registrations).order_by(
        product_registrations.c.applied_at, product_registrations.c.id
    )
    if applicant is not None:
        query = query.where(product_registrations.c.applicant == applicant)
    return [_registration(r) for r in conn.execute(query)]


def open_registrations(conn: Connection, column: str, value: str) -> list[Registration]:
    """Applications not yet decided whose ``column`` (job, HE product, product) is ``value``."""
    table = product_registrations
    query = sa.select(table).where(
        table.c[column] == value, table.c.state.in_([s.value for s in OPEN])
    )
    return [_registration(r) for r in conn.execute(query)]


def get_product(conn: Connection, product_id: str) -> Product:
    row = conn.execute(sa.select(products).where(products.c.id == product_id)).first()
    if row is None:
        raise UnknownProduct(f"no product {product_id!r}")
    return _product(row)


def find_product(conn: Connection, column: str, value: str) -> Product | None:
    """The product registered for a job (``job_id``) or HE product (``he_product_id``)."""
    row = conn.execute(sa.select(products).where(products.c[column] == value)).first()
    return _product(row) if row is not None else None


def list_products(conn: Connection, *, status: Status | None = None) -> list[Product]:
    query = sa.select(products).order_by(products.c.registered_at.desc(), products.c.id)
    if status is not None:
        query = query.where(products.c.status == status.value)
    return [_product(r) for r in conn.execute(query)]


def objections_of(conn: Connection, registration_id: str) -> list[ObjectionRecord]:
    table = product_objections
    query = (
        sa.select(table)
        .where(table.c.registration_id == registration_id)
        .order_by(table.c.filed_at, table.c.id)
    )
    return [_objection(r) for r in conn.execute(query)]


def move(
    conn: Connection,
    lc: Lifecycle[Any],
    key: str,
    frm: StrEnum,
    to: StrEnum,
    audit: Audit,
    values: Mapping[str, Any] | None = None,
) -> None:
    """``transition()``; a move the table refuses, or a record moved meanwhile, is a 409."""
    try:
        lifecycle.transition(conn, lc, key, frm, to, audit, values=values)
    except IllegalMove as e:
        raise ProcedureConflict(str(e)) from e
    except MovedMeanwhile as e:
        raise ProcedureConflict(f"{lc.name} {key} changed meanwhile; read it again") from e
