"""The disclosure's price basis in figures (001 art. 26; 004 art. 23): the condition of a
conditionally free product, a guided price's tariff item and unit price, a cost-plus
price's unit cost, margin and unit price; nothing for a free product."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.disclosure.facts import PublicProduct
from gateway.reports.disclosure import price_text

AT = datetime(2025, 3, 1, tzinfo=UTC)


def product(price_class: str, basis: dict[str, Any], **priced: Any) -> PublicProduct:
    return PublicProduct(
        id="prd-1", registration_code="CQGSJ-2025-000001", name="n", description="d",
        category="industry_development", price_class=price_class, price_basis=basis,
        operator="op", datasets=("residents",), kind="file", status="registered",
        registered_at=AT, valid_until=AT, **priced,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("made", "shown"),
    [
        (product("free", {}), ""),
        (product("conditionally_free", {"condition": "for public bodies"}), "for public bodies"),
        (product("guided", {"tariff_item": "download"}, unit="次", unit_price_fen=5000),
         "download: ¥50.00/次"),
        (product("cost_plus", {"unit_cost_fen": 16, "margin": 0.1}, unit="copy",
                 unit_price_fen=18), "¥0.16 * (1 + 10%) = ¥0.18/copy"),
    ],
)  # fmt: skip
def test_the_price_basis_in_figures(made: PublicProduct, shown: str) -> None:
    assert price_text(made) == shown
