"""``GET /v1/costs`` (the cost ledger) and ``GET /v1/statements/{operator}``.

Who reads what (001 authorized-operation art. 34; 004 art. 28: the operator's books are
its own and open to supervision): administrators and auditors every operator's, an
operator its own (a filter naming another operator is a 403); nobody else.
Every statement generated is audited ``report.generated`` (kind ``statement``, period,
format, operator, the SHA-256 of the bytes served).
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from gateway.audit import append
from gateway.auth import requires
from gateway.costs import statement as statements
from gateway.costs.errors import CostError, CostForbidden
from gateway.costs.ledger import Ledger, Rates, ledger
from gateway.identity import Account, Role, get_account
from gateway.periods import Period, PeriodError
from gateway.products.model import get_product

router = APIRouter(tags=["costs"])
Bookkeeper = Annotated[Account, Depends(requires(Role.OPERATOR, Role.ADMIN, Role.AUDITOR))]
MEDIA = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "pdf": "application/pdf",
}


def _period(text: str) -> Period:
    try:
        return Period.parse(text)
    except PeriodError as e:
        raise CostError(str(e)) from e


def _own(account: Account, operator: str | None) -> str | None:
    """Rule: administrators and auditors read any operator's books; an operator only its
    own (its name is the filter, whatever it asked)."""
    if account.has(Role.ADMIN, Role.AUDITOR):
        return operator
    if operator not in (None, account.name):
        raise CostForbidden("an operator reads its own costs and statements only")
    return account.name


def _ledger_json(led: Ledger) -> dict[str, Any]:
    def lines(items: Any) -> list[dict[str, Any]]:
        return [vars(x) for x in items]

    return {
        "period": led.period.label,
        "rates": led.rates.as_dict(),
        "products": [
            {
                "product_id": p.product_id,
                "name": p.name,
                "operator": p.operator,
                "category": p.category,
                "price_class": p.price_class,
                "lines": lines(p.lines),
                "cost_fen": p.cost_fen,
                "revenue_fen": p.revenue_fen,
            }
            for p in led.products
        ],
        "unattributed": [
            {"grant_id": g.grant_id, "lines": lines(g.lines), "cost_fen": g.cost_fen}
            for g in led.unattributed
        ],
        "totals": {"cost_fen": led.cost_fen, "revenue_fen": led.revenue_fen},
    }


@router.get("/v1/costs")
def costs(
    account: Bookkeeper,
    request: Request,
    period: Annotated[str, Query(max_length=40)],
    product: Annotated[str | None, Query(max_length=32)] = None,
    operator: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    """The cost ledger of a period: per product its cost lines (usage x the unit rates),
    cost and revenue (its charges); the usage no product carries, per grant; totals."""
    state = request.app.state
    found_period = _period(period)
    operator = _own(account, operator)
    with state.engine.connect() as conn:
        if product is not None and operator not in (None, get_product(conn, product).operator):
            raise CostForbidden(f"product {product} is another operator's")
        led = ledger(
            conn,
            found_period,
            Rates.of(state.settings),
            state.clock(),
            operator=operator,
            product=product,
        )
    return _ledger_json(led)


@router.get(
    "/v1/statements/{operator}",
    responses={200: {"content": {m: {} for m in MEDIA.values()}}},
    response_class=Response,
)
def statement(
    operator: str,
    account: Bookkeeper,
    request: Request,
    period: Annotated[str, Query(max_length=40)],
    format: Annotated[Literal["json", "csv", "pdf"], Query()] = "json",
    lang: Annotated[Literal["zh-CN", "en"], Query()] = "zh-CN",
) -> Response:
    """An operator's statement for a period (per product cost, revenue, result; usage no
    product carries; totals) as JSON, CSV or PDF; audited ``report.generated``."""
    state = request.app.state
    found_period = _period(period)
    _own(account, operator)
    now = state.clock()
    with state.engine.connect() as conn:
        get_account(conn, operator)  # 404 for no such account
        led = ledger(conn, found_period, Rates.of(state.settings), now, operator=operator)
    made = statements.Statement(operator=operator, generated_at=now, ledger=led)
    if format == "csv":
        body = statements.as_csv(made)
    elif format == "pdf":
        body = statements.as_pdf(made, lang)
    else:
        body = json.dumps(statements.as_json(made), ensure_ascii=False).encode("utf-8")
    digest = hashlib.sha256(body).hexdigest()
    with state.engine.begin() as conn:
        append(
            conn,
            "report.generated",
            account.name,
            detail={
                "kind": "statement",
                "period": found_period.label,
                "format": format,
                "subject": operator,
                "operator": operator,
                "sha256": digest,
            },
        )
    filename = f"statement-{operator}-{found_period.label}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if format == "json":
        headers = {}
    return Response(content=body, media_type=MEDIA[format], headers=headers)
