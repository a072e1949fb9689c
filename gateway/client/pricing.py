"""``dsr products price``, ``dsr charges``, ``dsr costs`` and ``dsr statements``: prices,
charges, the cost ledger and operators' statements (001 authorized-operation art. 26, 34;
004 art. 23, 28).

- operators (their own products) and administrators: ``dsr products price ID --class
  guided --basis '{"tariff_item": "credit-check"}'``;
- operators: ``dsr charges record PRODUCT --payer bank-1 --quantity 3 --reference INV-1``
  (the amount is the platform's);
- operators (their own), administrators and auditors: ``dsr charges list --period 2025``
  (consumers: what they were charged), ``dsr costs --period 2025-Q2``, ``dsr statements
  OPERATOR --period 2025 --format pdf --out statement.pdf``.

Amounts print in yuan (two decimals) in tables; ``--json`` gives the fen as served.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.client.errors import UsageError
from gateway.client.http import q, save
from gateway.client.options import client_context, client_group, gateway_options
from gateway.client.render import emit_json, fail, fields, note, session, table

charges_app = client_group("Charges for products: record a sale, list a period's charges.")

Period = Annotated[str, typer.Option("--period", help="2025, 2025-Q2, 2025-03 or a..b days")]
ProductFilter = Annotated[str | None, typer.Option("--product", help="one product")]
OperatorFilter = Annotated[str | None, typer.Option("--operator", help="one operator")]


class PriceClass(StrEnum):  # the values of gateway.pricing.model.PriceClass
    FREE = "free"
    CONDITIONALLY_FREE = "conditionally_free"
    GUIDED = "guided"
    COST_PLUS = "cost_plus"


class Format(StrEnum):
    JSON = "json"
    CSV = "csv"
    PDF = "pdf"


class Lang(StrEnum):
    ZH = "zh-CN"
    EN = "en"


def yuan(fen: int | None) -> str:
    if fen is None:
        return "-"
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def json_object(option: str, text: str) -> dict[str, Any]:
    """The JSON object an option gives (a usage error, exit 2, otherwise)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise fail(UsageError(f"{option} is not JSON: {e.msg}")) from e
    if not isinstance(value, dict):
        raise fail(UsageError(f'{option} is a JSON object, e.g. \'{{"tariff_item": "x"}}\''))
    return value


@gateway_options
def products_price(
    ctx: typer.Context,
    product_id: str,
    price_class: Annotated[PriceClass, typer.Option("--class", help="the price class")],
    basis: Annotated[
        str,
        typer.Option(
            "--basis",
            help='JSON: free {}; conditionally_free {"condition"}; guided {"tariff_item"}; '
            'cost_plus {"margin", "expected_units"}',
        ),
    ] = "{}",
) -> None:
    """Set a registered product's price (its operator, or an administrator)."""
    gw = client_context(ctx)
    body = {"price_class": price_class.value, "price_basis": json_object("--basis", basis)}
    with session(gw) as api:
        done = api.request("PUT", f"/v1/products/{q(product_id)}/price", json=body).json()
    if gw.as_json:
        emit_json(done)
        return
    fields(
        [
            ("product", done["id"]), ("class", done["price_class"]),
            ("basis", json.dumps(done["price_basis"], ensure_ascii=False)),
            ("unit price (CNY)", yuan(done["unit_price_fen"])),
        ]
    )  # fmt: skip


CHARGE_COLUMNS = [
    ("id", "ID"), ("at", "AT (UTC)"), ("product_id", "PRODUCT"), ("payer", "PAYER"),
    ("quantity", "QTY"), ("unit", "UNIT"), ("amount", "AMOUNT (CNY)"), ("source", "SOURCE"),
]  # fmt: skip


@charges_app.command("record")
@gateway_options
def charges_record(
    ctx: typer.Context,
    product_id: str,
    payer: Annotated[str, typer.Option("--payer", help="the account charged")],
    reference: Annotated[str, typer.Option("--reference", help="your invoice or order number")],
    quantity: Annotated[int, typer.Option("--quantity", min=1)] = 1,
) -> None:
    """Record a sale of your product; prints the charge (the amount is the platform's)."""
    gw = client_context(ctx)
    body = {"payer": payer, "quantity": quantity, "reference": reference}
    with session(gw) as api:
        done = api.post(f"/v1/products/{q(product_id)}/charges", body)
    if gw.as_json:
        emit_json(done)
        return
    typer.echo(done["id"])
    note(f"{done['quantity']} {done['unit']} of {done['product_id']} to {done['payer']}: "
         f"{yuan(done['amount_fen'])} CNY")  # fmt: skip


@charges_app.command("list")
@gateway_options
def charges_list(
    ctx: typer.Context,
    period: Period,
    product: ProductFilter = None,
    operator: OperatorFilter = None,
) -> None:
    """A period's charges (yours, or all for administrators and auditors)."""
    gw = client_context(ctx)
    with session(gw) as api:
        found = api.get("/v1/charges", period=period, product=product, operator=operator)
    if gw.as_json:
        emit_json(found)
        return
    rows = [c | {"amount": yuan(c["amount_fen"])} for c in found["charges"]]
    table(rows, CHARGE_COLUMNS)
    note(f"{len(rows)} charges in {found['period']}: {yuan(found['total_fen'])} CNY")


@gateway_options
def costs(
    ctx: typer.Context,
    period: Period,
    product: ProductFilter = None,
    operator: OperatorFilter = None,
) -> None:
    """The cost ledger of a period: per product cost and revenue, unattributed usage."""
    gw = client_context(ctx)
    with session(gw) as api:
        found = api.get("/v1/costs", period=period, product=product, operator=operator)
    if gw.as_json:
        emit_json(found)
        return
    rows = [
        {"id": p["product_id"], "name": p["name"], "operator": p["operator"],
         "cost": yuan(p["cost_fen"]), "revenue": yuan(p["revenue_fen"])}
        for p in found["products"]
    ] + [
        {"id": g["grant_id"], "name": "(no product)", "operator": "", "cost": yuan(g["cost_fen"]),
         "revenue": ""}
        for g in found["unattributed"]
    ]  # fmt: skip
    table(rows, [("id", "PRODUCT/GRANT"), ("name", "NAME"), ("operator", "OPERATOR"),
                 ("cost", "COST (CNY)"), ("revenue", "REVENUE (CNY)")])  # fmt: skip
    totals = found["totals"]
    note(f"{found['period']}: cost {yuan(totals['cost_fen'])} CNY, "
         f"revenue {yuan(totals['revenue_fen'])} CNY")  # fmt: skip


@gateway_options
def statements(
    ctx: typer.Context,
    operator: str,
    period: Period,
    format: Annotated[Format, typer.Option("--format")] = Format.PDF,
    out: Annotated[Path | None, typer.Option("--out", help="the file (default: stdout)")] = None,
    lang: Annotated[Lang, typer.Option("--lang", help="the PDF's language")] = Lang.ZH,
) -> None:
    """An operator's statement for a period (JSON, CSV or PDF); generation is audited."""
    gw = client_context(ctx)
    if format == Format.PDF and out is None:
        raise fail(UsageError("a PDF goes to a file: give --out"))
    params = {"period": period, "format": format.value, "lang": lang.value}
    with session(gw) as api:
        content = api.download(f"/v1/statements/{q(operator)}", **params)
    if out is None:
        typer.echo(content.decode("utf-8-sig"), nl=False)
        return
    save(out, content)
    note(f"statement of {operator} for {period} written to {out}")


def register(app: typer.Typer, products_app: typer.Typer) -> None:
    """Add these commands to ``dsr`` (``price`` joins ``dsr products``)."""
    products_app.command("price")(products_price)
    app.add_typer(charges_app, name="charges")
    app.command("costs")(costs)
    app.command("statements")(statements)
