"""Data products: operators register released jobs; every signed-in role reads the list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy import Connection

from gateway.auth import ANY_ROLE, read, requires, write
from gateway.identity import Account, Role
from gateway.products import service
from gateway.products.schemas import ProductIn, ProductOut

router = APIRouter(prefix="/v1/products", tags=["products"])
Operator = Annotated[Account, Depends(requires(Role.OPERATOR))]
Anyone = Annotated[Account, Depends(requires(*ANY_ROLE))]


@router.post("", response_model=ProductOut, status_code=201)
def register(
    body: ProductIn, operator: Operator, conn: Annotated[Connection, Depends(write)]
) -> ProductOut:
    product = service.register(
        conn,
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
def renew(
    product_id: str, operator: Operator, conn: Annotated[Connection, Depends(write)]
) -> ProductOut:
    return ProductOut.of(service.renew(conn, product_id, operator=operator.name))
