"""A product's price class: what the rules let it charge.

Public-governance and public-welfare products are provided free or conditionally
free (有条件无偿); industry and sector products are priced at a government-guided
price or at cost plus a reasonable profit (001 authorized-operation art. 26; 004
art. 23; 002 art. 24). Values are stored: never change them.
"""

from __future__ import annotations

from enum import StrEnum


class PriceClass(StrEnum):
    FREE = "free"  # 无偿
    CONDITIONALLY_FREE = "conditionally_free"  # 有条件无偿: the condition recorded
    GUIDED = "guided"  # 政府指导价: an item of the tariff table in settings
    COST_PLUS = "cost_plus"  # 成本加合理利润: cost from the accounting, margin capped


# The classes that may carry a charge; a public-governance product is never in one.
CHARGEABLE = frozenset({PriceClass.GUIDED, PriceClass.COST_PLUS})
NO_CHARGE = frozenset({PriceClass.FREE, PriceClass.CONDITIONALLY_FREE})
