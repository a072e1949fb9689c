"""Data products: operators register released jobs; every signed-in role reads the list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy import Connection

from gateway.auth import ANY_ROLE, engine_of, read, requires
from gateway.identity import Account, Role
from gateway.products import service
from gateway.products.schemas import ProductIn, ProductOut

router = APIRouter(prefix="/v1/products", tags=["products"])
Operator = Annotated[Account, Depends(requires(Role.OPERATOR))]
# Consumers call the privacy-computing products offered to them and nothing else
# (gateway.he); the data products' lineage (jobs, grants) is not theirs to read.
Anyone = Annotated[Account, Depends(requires(*(r for r in ANY_ROLE if r != Role.CONSUMER)))]


@router.post("", response_model=ProductOut, status_code=201)
def register(body: ProductIn, operator: Operator, request: Request) -> ProductOut:
    """Register a released job as a product, while its grant is active (else 409)."""
    product = service.register_while_usable(
        engine_of(request),
        getattr(request.app.state, "grant_resolver", None),
        operator=operator.name,
        job_id=body.job,
        name=body.name,
        description=body.description,
        category=body.category,
    )
    return ProductOut.of(product)


@router.get("", response_model=list[ProductOut])
def catalogue(account: Anyone, conn: Annotated[Connection, Depends(read)]) -> list[ProductOut]:
    return [ProductOut.of(p) for p in service.list_products(conn)]


@router.get("/{product_id}", response_model=ProductOut)
def one_product(
    product_id: str, account: Anyone, conn: Annotated[Connection, Depends(read)]
) -> ProductOut:
    return ProductOut.of(service.get_product(conn, product_id))


@router.post("/{product_id}/renew", response_model=ProductOut)
def renew(product_id: str, operator: Operator, request: Request) -> ProductOut:
    """Renew a product for three years, while its grant is active (else 409)."""
    resolver = getattr(request.app.state, "grant_resolver", None)
    renewed = service.renew_while_usable(
        engine_of(request), resolver, product_id, operator=operator.name
    )
    return ProductOut.of(renewed)
