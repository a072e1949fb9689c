"""The public portal: the yearly disclosure as HTML pages (``/portal``) and open data
(``/v1/public/*``), for anyone, without signing in (001 authorized-operation art.
24-26; 004 art. 30; 003).

Invariants:
- No route reads a token, a session or a cookie, and none sets one: the language is
  the ``lang`` query parameter (zh-CN by default), the year the ``year`` parameter
  (this CST year by default); every link carries both.
- What is shown comes from ``gateway.disclosure.facts`` through ``opendata`` only:
  product, grant and usage metadata and counts, never a data value (no dataset row,
  pseudonym, log, job code or output, token or key).
- A year outside 2000-2200 or not a number is a 422 (the data routes' validation
  error; an error page of the portal for the pages).
- Answers may be cached publicly for a short time (``Cache-Control: public,
  max-age=300``); pages carry a self-only Content-Security-Policy and no script.
- The pages are left out of the OpenAPI document, like the console's; the data
  routes are in it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import jinja2
from fastapi import APIRouter, Query, Request
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Connection
from starlette.responses import HTMLResponse, JSONResponse, Response

from gateway.auth import engine_of
from gateway.disclosure import facts
from gateway.periods import Period, PeriodError
from gateway.portal import opendata
from gateway.portal.messages import pick, translator
from gateway.portal.opendata import Table
from gateway.store import read_transaction
from gateway.workdays import CST

HERE = Path(__file__).parent
PREFIX = "/portal"
CACHE = "public, max-age=300"
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": CACHE,
}
# The data routes' description of their answers in the OpenAPI document.
DATA_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The year's rows: JSON `{year, items}`, or CSV (UTF-8 with a BOM).",
        "content": {"application/json": {}, "text/csv": {}},
    }
}
Year = Annotated[int | None, Query(ge=2000, le=2200, description="CST year; default this year")]
Format = Annotated[Literal["json", "csv"], Query(alias="format")]

data = APIRouter(prefix="/v1/public", tags=["public"])
pages = APIRouter(prefix=PREFIX, include_in_schema=False)

templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def day(value: datetime | None) -> str:
    """A stored time as its CST calendar day."""
    return value.astimezone(CST).date().isoformat() if value is not None else ""


templates.filters["day"] = day


# -- open data -------------------------------------------------------------------------


def _data(request: Request, table: Table, year: int | None, fmt: str) -> Response:
    chosen = year if year is not None else opendata.year_now(request.app.state.clock())
    with read_transaction(engine_of(request)) as conn:
        items = opendata.rows(conn, table, Period.year(chosen))
    headers = {"Cache-Control": CACHE}
    if fmt == "csv":
        headers["Content-Disposition"] = f'attachment; filename="{table}-{chosen}.csv"'
        return Response(
            opendata.as_csv(table, items), media_type="text/csv; charset=utf-8", headers=headers
        )
    return JSONResponse(opendata.as_json(chosen, items), headers=headers)


@data.get("/products", responses=DATA_RESPONSES)
def public_products(request: Request, year: Year = None, fmt: Format = "json") -> Response:
    """The registered products and services of a year in their two classes, with the
    class and basis of their price (001 art. 25-26)."""
    return _data(request, Table.PRODUCTS, year, fmt)


@data.get("/grants", responses=DATA_RESPONSES)
def public_grants(request: Request, year: Year = None, fmt: Format = "json") -> Response:
    """The grants in force at some time of a year: grantee, content, scope and term
    (001 art. 24; 004 art. 30)."""
    return _data(request, Table.GRANTS, year, fmt)


@data.get("/usage", responses=DATA_RESPONSES)
def public_usage(request: Request, year: Year = None, fmt: Format = "json") -> Response:
    """The use of public data in a year, per grantee and dataset: counts only (001 art. 25)."""
    return _data(request, Table.USAGE, year, fmt)


# -- pages -----------------------------------------------------------------------------


class Page:
    """What every portal page shares: the language, the year and the links carrying them."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.lang = pick(request.query_params.get("lang"))
        self.t = translator(self.lang)
        self.now: datetime = request.app.state.clock()
        asked = request.query_params.get("year")
        self.year = opendata.year_now(self.now)
        self.bad_year = False
        if asked is not None:
            try:
                self.year = int(asked)
                Period.year(self.year)
            except (ValueError, PeriodError):
                self.year, self.bad_year = opendata.year_now(self.now), True

    def link(self, path: str, **extra: str) -> str:
        """``path`` in this page's year and language."""
        query = {"year": str(self.year)} | ({"lang": "en"} if self.lang == "en" else {}) | extra
        return f"{path}?{urlencode(query)}"

    def data_link(self, table: Table, fmt: str) -> str:
        """The open data of ``table`` in this page's year."""
        return f"/v1/public/{table}?{urlencode({'year': str(self.year), 'format': fmt})}"

    def switch(self) -> str:
        """This page in the other language."""
        other = {"lang": "zh-CN"} if self.lang == "en" else {"lang": "en"}
        return f"{self.request.url.path}?{urlencode({'year': str(self.year)} | other)}"

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        body = templates.get_template(template).render(
            t=self.t,
            lang=self.lang,
            year=self.year,
            link=self.link,
            data_link=self.data_link,
            switch=self.switch(),
            path=self.request.url.path,
            prefix=PREFIX,
            **context,
        )
        return HTMLResponse(body, status, headers=PAGE_HEADERS)

    def answer(self, template: str, build: Callable[[Connection], dict[str, Any]]) -> HTMLResponse:
        """The page, or the portal's error page for a bad year (422)."""
        if self.bad_year:
            return self.render("error.html", 422, years=[], message=self.t("error.year"))
        with read_transaction(engine_of(self.request)) as conn:
            first = opendata.first_year(conn, self.now)
            context = build(conn)
        years = sorted({*range(first, opendata.year_now(self.now) + 1), self.year}, reverse=True)
        return self.render(template, years=years, **context)

    def rows(self, conn: Connection, table: Table) -> list[Any]:
        return opendata.rows(conn, table, Period.year(self.year))


def price_words(t: Callable[..., str], product: facts.PublicProduct) -> str:
    """The product's price class and basis in words."""
    basis = product.price_basis
    unit = product.unit or t("price.unit")
    price = yuan(product.unit_price_fen) if product.unit_price_fen is not None else None
    if product.price_class == "conditionally_free":
        return t("price.conditionally_free", condition=basis.get("condition", ""))
    if product.price_class == "guided":
        item = basis.get("tariff_item", "")
        if price is None:
            return t("price.guided_unknown", item=item)
        return t("price.guided", item=item, price=price, unit=unit)
    if product.price_class == "cost_plus":
        margin = f"{float(str(basis.get('margin', 0))) * 100:g}"
        if price is None:
            return t("price.cost_plus_unknown", margin=margin)
        return t("price.cost_plus", price=price, unit=unit, margin=margin)
    return t("price.free")


def yuan(fen: int) -> str:
    """Fen as yuan with two decimals, exactly."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


@pages.get("/")
def index(request: Request) -> HTMLResponse:
    page = Page(request)

    def build(conn: Connection) -> dict[str, Any]:
        counts = {table.value: len(page.rows(conn, table)) for table in Table}
        return {"counts": counts, "tables": list(Table)}

    return page.answer("index.html", build)


@pages.get("/products")
def products_page(request: Request) -> HTMLResponse:
    page = Page(request)

    def build(conn: Connection) -> dict[str, Any]:
        found: list[facts.PublicProduct] = page.rows(conn, Table.PRODUCTS)
        classes = {
            category: [p for p in found if p.category == category]
            for category in ("public_governance", "industry_development")
        }
        price = lambda p: price_words(page.t, p)  # noqa: E731
        return {"classes": classes, "price": price, "table": Table.PRODUCTS}

    return page.answer("products.html", build)


@pages.get("/grants")
def grants_page(request: Request) -> HTMLResponse:
    page = Page(request)
    return page.answer(
        "grants.html", lambda conn: {"rows": page.rows(conn, Table.GRANTS), "table": Table.GRANTS}
    )


@pages.get("/usage")
def usage_page(request: Request) -> HTMLResponse:
    page = Page(request)
    return page.answer(
        "usage.html", lambda conn: {"rows": page.rows(conn, Table.USAGE), "table": Table.USAGE}
    )


class PortalStatic(StaticFiles):
    """The portal's stylesheet, cached publicly like its pages."""

    async def get_response(self, path: str, scope: Any) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = CACHE
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def static_files() -> PortalStatic:
    return PortalStatic(directory=HERE / "static")


router = APIRouter()
router.include_router(data)
router.include_router(pages)
