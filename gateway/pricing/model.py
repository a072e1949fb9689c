"""A product's price class: what the rules let it charge.

Public-governance and public-welfare products are provided free or conditionally
free (有条件无偿); industry and sector products are priced at a government-guided
price or at cost plus a reasonable profit (001 authorized-operation art. 26; 004
art. 23; 002 art. 24). Values are stored: never change them.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class PriceClass(StrEnum):
    FREE = "free"  # 无偿
    CONDITIONALLY_FREE = "conditionally_free"  # 有条件无偿: the condition recorded
    GUIDED = "guided"  # 政府指导价: an item of the tariff table in settings
    COST_PLUS = "cost_plus"  # 成本加合理利润: cost from the accounting, margin capped


# The classes that may carry a charge; a public-governance product is never in one.
CHARGEABLE = frozenset({PriceClass.GUIDED, PriceClass.COST_PLUS})
NO_CHARGE = frozenset({PriceClass.FREE, PriceClass.CONDITIONALLY_FREE})


def unit_price(price_class: PriceClass, basis: Mapping[str, Any]) -> tuple[str | None, int | None]:
    """(unit, fen) of one unit at a product's price: a guided price's tariff unit and price
    (frozen into the basis when the price was set), a cost-plus price's frozen unit cost times
    one plus the margin, rounded half up to a fen (the portal's ``unit_price`` rounds the
    same); (None, None) for the free classes and for a cost-plus basis with no unit cost yet
    (a product registered before prices existed: sold only once its operator sets a price)."""
    if price_class == PriceClass.GUIDED and basis.get("price_fen") is not None:
        return str(basis["unit"]), int(basis["price_fen"])
    if price_class == PriceClass.COST_PLUS and basis.get("unit_cost_fen") is not None:
        cost, margin = float(basis["unit_cost_fen"]), float(basis.get("margin", 0))
        return str(basis.get("unit") or "unit"), int(cost * (1 + margin) + 0.5)
    return None, None
