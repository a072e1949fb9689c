"""Operators browse the catalogue: the views of the grants they hold (names, columns,
types, column classes) and download dummy data for a view. Never a real value."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from gateway.auth import requires
from gateway.catalog.schemas import ViewOut
from gateway.catalog.service import CatalogService, catalog_service
from gateway.identity import Account, Role

router = APIRouter(prefix="/v1/catalog", tags=["catalog"])
Operator = Annotated[Account, Depends(requires(Role.OPERATOR))]
GrantParam = Annotated[
    str | None, Query(min_length=1, max_length=200, description="only views under this grant")
]


def service(request: Request) -> CatalogService:
    return catalog_service(request.app)


Service = Annotated[CatalogService, Depends(service)]


@router.get("", response_model=list[ViewOut])
def list_views(operator: Operator, catalog: Service, grant: GrantParam = None) -> list[ViewOut]:
    """The views of every active grant the caller holds (or of ``grant``)."""
    return [ViewOut.of(e.grant_id, e.view) for e in catalog.entries(operator.name, grant)]


@router.get("/{view}", response_model=ViewOut)
def one_view(view: str, operator: Operator, catalog: Service, grant: GrantParam = None) -> ViewOut:
    """One view's schema; ``grant`` names the grant when several hold a view of that name."""
    entry = catalog.entry(operator.name, view, grant)
    return ViewOut.of(entry.grant_id, entry.view)


@router.get("/{view}/dummy", response_class=Response)
def dummy(
    view: str,
    operator: Operator,
    catalog: Service,
    grant: GrantParam = None,
    fmt: Annotated[Literal["parquet", "csv"], Query(alias="format")] = "parquet",
) -> Response:
    """Schema-faithful synthetic rows of the view (never sampled from real values)."""
    made = catalog.dummy_file(operator.name, view, grant, fmt)
    return Response(
        made.content,
        media_type=made.media_type,
        headers={"Content-Disposition": f'attachment; filename="{made.filename}"'},
    )
