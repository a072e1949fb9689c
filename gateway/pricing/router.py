"""``/v1/products/{id}/price``, ``/v1/products/{id}/charges`` and ``/v1/charges``.

Who does what (001 authorized-operation art. 26, 34; 004 art. 23, 28):

- a product's operator, or an administrator, sets its price (class and basis);
- a product's operator records a sale of it (the amount is the platform's);
- administrators and auditors read every charge of a period, an operator the charges of
  its products, a consumer what it was charged; providers and reviewers none.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from gateway.auth import read, requires
from gateway.costs.ledger import Rates
from gateway.identity import Account, Role
from gateway.periods import Period, PeriodError
from gateway.pricing import service
from gateway.pricing.basis import PricingRules
from gateway.pricing.errors import PricingError, PricingForbidden
from gateway.pricing.model import PriceClass
from gateway.products.schemas import ProductOut

router = APIRouter(tags=["pricing"])
Pricer = Annotated[Account, Depends(requires(Role.OPERATOR, Role.ADMIN))]
Seller = Annotated[Account, Depends(requires(Role.OPERATOR))]
Reader = Annotated[
    Account, Depends(requires(Role.OPERATOR, Role.ADMIN, Role.AUDITOR, Role.CONSUMER))
]
Read = Annotated[Connection, Depends(read)]


def parse_period(text: str) -> Period:
    """A period label (gateway.periods); a bad one is a 422 with its message."""
    try:
        return Period.parse(text)
    except PeriodError as e:
        raise PricingError(str(e)) from e


class PriceIn(BaseModel):
    """A class and its basis: free ``{}``; conditionally_free ``{"condition"}``; guided
    ``{"tariff_item"}``; cost_plus ``{"margin", "expected_units"[, "unit"]}``."""

    model_config = ConfigDict(extra="forbid")

    price_class: PriceClass
    price_basis: dict[str, Any] = Field(default_factory=dict)


class ChargeIn(BaseModel):
    """A sale: who pays, how many units, and the operator's own reference (unique per
    product: a reference used twice is a 409, so a retried request charges once)."""

    model_config = ConfigDict(extra="forbid")

    payer: str = Field(min_length=1, max_length=100)
    quantity: int = Field(ge=1, le=1_000_000)
    reference: str = Field(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9._/-]+$")


class ChargeOut(BaseModel):
    id: str
    product_id: str
    payer: str
    at: datetime
    quantity: int
    unit: str
    amount_fen: int
    price_class: str
    basis: dict[str, Any]
    source: str

    @classmethod
    def of(cls, c: service.Charge) -> ChargeOut:
        return cls(
            id=c.id,
            product_id=c.product_id,
            payer=c.payer,
            at=c.at,
            quantity=c.quantity,
            unit=c.unit,
            amount_fen=c.amount_fen,
            price_class=c.price_class.value,
            basis=c.basis,
            source=c.source,
        )


class ChargesOut(BaseModel):
    period: str
    charges: list[ChargeOut]
    total_fen: int


@router.put("/v1/products/{product_id}/price", response_model=ProductOut)
def set_price(product_id: str, body: PriceIn, account: Pricer, request: Request) -> ProductOut:
    """Set a registered product's price (its operator, or an administrator); audited
    ``product.price``. A public-governance product takes only free or conditionally free."""
    state = request.app.state
    with state.engine.begin() as conn:
        done = service.set_price(
            conn,
            product_id,
            body.price_class,
            body.price_basis,
            actor=account.name,
            now=state.clock(),
            rules=PricingRules.of(state.settings),
            rates=Rates.of(state.settings),
            operator=None if account.has(Role.ADMIN) else account.name,
        )
    return ProductOut.of(done)


@router.post("/v1/products/{product_id}/charges", response_model=ChargeOut, status_code=201)
def record_charge(product_id: str, body: ChargeIn, operator: Seller, request: Request) -> ChargeOut:
    """Record a sale of your product; the amount is quantity x the product's unit price
    (422 for a free product, 409 for a reference used already)."""
    state = request.app.state
    with state.engine.begin() as conn:
        done = service.record_charge(
            conn,
            product_id,
            operator=operator.name,
            payer=body.payer,
            quantity=body.quantity,
            reference=body.reference,
            now=state.clock(),
        )
    return ChargeOut.of(done)


@router.get("/v1/charges", response_model=ChargesOut)
def charges(
    account: Reader,
    conn: Read,
    period: Annotated[str, Query(max_length=40)],
    product: Annotated[str | None, Query(max_length=32)] = None,
    operator: Annotated[str | None, Query(max_length=100)] = None,
) -> ChargesOut:
    """The period's charges: all (administrators, auditors), of your products
    (operators), or what you were charged (consumers)."""
    found_period = parse_period(period)
    payer = None
    if not account.has(Role.ADMIN, Role.AUDITOR):
        if account.has(Role.OPERATOR):
            if operator not in (None, account.name):
                raise PricingForbidden("an operator reads the charges of its own products")
            operator = account.name
        else:
            payer = account.name
    found = service.list_charges(
        conn, found_period, product=product, operator=operator, payer=payer
    )
    return ChargesOut(
        period=found_period.label,
        charges=[ChargeOut.of(c) for c in found],
        total_fen=sum(c.amount_fen for c in found),
    )
