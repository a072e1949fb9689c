"""An operator's statement for a period: per product its cost, revenue and result, the
usage no product carries, and the totals (001 authorized-operation art. 34; 004 art. 28;
003: costs, revenue and expenditure per product, accounted separately).

Built from the cost ledger (:mod:`gateway.costs.ledger`) alone, so the statement and
``GET /v1/costs`` say the same numbers. Three forms of one :class:`Statement`:

- JSON (:func:`as_json`), the rows as the ledger has them;
- CSV (:func:`as_csv`): a header row, then one row per product, one per grant with
  unattributed usage and a ``total`` row, amounts in fen; UTF-8 with a BOM so a
  spreadsheet opens Chinese names correctly; the total row is the sum of the others;
- HTML (:func:`as_html`, zh-CN or English, a chart of cost and revenue per product) and
  PDF (:func:`as_pdf`, the HTML through ``gateway.reports.render.html_to_pdf``).

Every generation is audited by the router (``report.generated``, kind ``statement``,
with the SHA-256 of the bytes served).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from gateway.costs.ledger import ITEMS, Ledger, Line

TEMPLATES = Path(__file__).parent / "templates"
LANGS = ("zh-CN", "en")
CSV_COLUMNS = (
    "section", "id", "name", "category", "price_class",
    *(f"{item}_fen" for item in ITEMS), "cost_fen", "revenue_fen", "result_fen",
)  # fmt: skip

LABELS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "title": "运营机构成本收益报表",
        "brand": "公共数据授权运营平台",
        "operator": "运营机构",
        "period": "期间",
        "generated": "生成时间",
        "basis": "依据：重庆市公共数据资源授权运营管理实施办法第三十四条；成都市实施细则第二十八条",  # noqa: RUF001
        "rates": "计价费率（分）",  # noqa: RUF001
        "products": "按产品",
        "unattributed": "未形成产品的使用（按授权）",  # noqa: RUF001
        "totals": "合计",
        "product": "产品",
        "grant": "授权",
        "category": "类别",
        "price_class": "价格类别",
        "cost": "成本",
        "revenue": "收入",
        "result": "结余",
        "item": "项目",
        "value": "数值",
        "none": "无",
        "chart": "各产品成本与收入（元）",  # noqa: RUF001
        "fen": "金额单位：元；各项为该项成本（用量 × 费率）",  # noqa: RUF001
        "cpu": "CPU",
        "scan": "扫描",
        "storage": "存储",
        "review": "审核",
        "he_eval": "密态计算",
        "cpu_second_fen": "每 CPU 秒",
        "gb_scanned_fen": "每扫描 GB",
        "storage_gb_day_fen": "每 GB·日存储",
        "review_hour_fen": "每审核小时",
        "public_governance": "公共治理、公益事业",
        "industry_development": "产业发展、行业发展",
        "free": "无偿",
        "conditionally_free": "有条件无偿",
        "guided": "政府指导价",
        "cost_plus": "成本加合理利润",
    },
    "en": {
        "title": "Operator statement of costs and revenue",
        "brand": "Public data authorized-operation platform",
        "operator": "Operator",
        "period": "Period",
        "generated": "Generated",
        "basis": "Basis: Chongqing authorized-operation measures art. 34; Chengdu rules art. 28",
        "rates": "Unit rates (fen)",
        "products": "By product",
        "unattributed": "Usage no product carries (by grant)",
        "totals": "Totals",
        "product": "Product",
        "grant": "Grant",
        "category": "Category",
        "price_class": "Price class",
        "cost": "Cost",
        "revenue": "Revenue",
        "result": "Result",
        "item": "Item",
        "value": "Value",
        "none": "None",
        "chart": "Cost and revenue per product (CNY)",
        "fen": "Amounts in CNY; each item is its cost (usage x rate)",
        "cpu": "CPU",
        "scan": "Scan",
        "storage": "Storage",
        "review": "Review",
        "he_eval": "Encrypted",
        "cpu_second_fen": "per CPU second",
        "gb_scanned_fen": "per GB scanned",
        "storage_gb_day_fen": "per GB-day stored",
        "review_hour_fen": "per review hour",
        "public_governance": "public governance and welfare",
        "industry_development": "industry and sector development",
        "free": "free",
        "conditionally_free": "conditionally free",
        "guided": "government-guided price",
        "cost_plus": "cost plus reasonable profit",
    },
}


@dataclass(frozen=True)
class Statement:
    operator: str
    generated_at: datetime
    ledger: Ledger


def as_json(s: Statement) -> dict[str, Any]:
    """The statement as JSON: per product and grant the cost lines, cost, revenue, result."""
    led = s.ledger
    products = [
        {
            "product_id": p.product_id,
            "name": p.name,
            "category": p.category,
            "price_class": p.price_class,
            "lines": [vars(x) for x in p.lines],
            "cost_fen": p.cost_fen,
            "revenue_fen": p.revenue_fen,
            "result_fen": p.revenue_fen - p.cost_fen,
        }
        for p in led.products
    ]
    unattributed = [
        {"grant_id": g.grant_id, "lines": [vars(x) for x in g.lines], "cost_fen": g.cost_fen}
        for g in led.unattributed
    ]
    return {
        "operator": s.operator,
        "period": led.period.label,
        "first": led.period.first.isoformat(),
        "last": led.period.last.isoformat(),
        "generated_at": s.generated_at.isoformat(),
        "rates": led.rates.as_dict(),
        "products": products,
        "unattributed": unattributed,
        "totals": {
            "cost_fen": led.cost_fen,
            "revenue_fen": led.revenue_fen,
            "result_fen": led.revenue_fen - led.cost_fen,
        },
    }


def as_csv(s: Statement) -> bytes:
    """The statement as CSV (see the module docstring)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for p in s.ledger.products:
        items = _by_item(p.lines)
        writer.writerow(
            ["product", p.product_id, p.name, p.category, p.price_class, *items,
             p.cost_fen, p.revenue_fen, p.revenue_fen - p.cost_fen]
        )  # fmt: skip
    for g in s.ledger.unattributed:
        items = _by_item(g.lines)
        row = ["unattributed", g.grant_id, "", "", "", *items, g.cost_fen, 0, -g.cost_fen]
        writer.writerow(row)
    led = s.ledger
    totals = [
        sum(x.amount_fen for p in led.products for x in p.lines if x.item == item)
        + sum(x.amount_fen for g in led.unattributed for x in g.lines if x.item == item)
        for item in ITEMS
    ]
    writer.writerow(
        ["total", s.operator, "", "", "", *totals,
         led.cost_fen, led.revenue_fen, led.revenue_fen - led.cost_fen]
    )  # fmt: skip
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _by_item(lines: Iterable[Line]) -> list[int]:
    amounts = {x.item: x.amount_fen for x in lines}
    return [amounts.get(item, 0) for item in ITEMS]


def yuan(fen: int) -> str:
    """Fen as yuan with two decimals and thousands separators (``-1,234.50``)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def as_html(s: Statement, lang: str = "zh-CN") -> str:
    """The statement as a whole HTML document in ``lang`` (zh-CN or en), print-styled."""
    from gateway.reports.render import chart, stylesheet  # matplotlib: only when drawn

    labels = LABELS[lang]
    led = s.ledger
    figure = ""
    if led.products:
        data = {
            labels["cost"]: {p.name: p.cost_fen / 100 for p in led.products},
            labels["revenue"]: {p.name: p.revenue_fen / 100 for p in led.products},
        }
        figure = chart("bar", data, title=labels["chart"], lang=lang)
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    template = env.get_template("statement.html")
    return template.render(
        s=s,
        led=led,
        lang=lang,
        t=labels,
        css=stylesheet(),
        yuan=yuan,
        items=ITEMS,
        figure=figure,
    )


def as_pdf(s: Statement, lang: str = "zh-CN") -> bytes:
    """The statement's HTML as an A4 PDF (WeasyPrint, the CJK font)."""
    from gateway.reports.render import html_to_pdf  # WeasyPrint: only when printed

    return html_to_pdf(as_html(s, lang))
