"""A price basis, checked for its class against the product's category and the settings.

Rules (001 authorized-operation art. 26; 004 art. 23; 002 art. 24):

- A public-governance (公共治理、公益事业) product is free or conditionally free
  (有条件无偿, the condition recorded): never a chargeable class.
- An industry-development product may take any class; its operator names it.
- A guided price (政府指导价) names an item of the settings' ``price_tariff``; the
  item's unit and price are frozen into the basis, so what a product charges is what
  its basis says (a tariff change reaches a product when its price is set again,
  audited).
- Cost plus a reasonable profit (补偿成本、合理盈利): a margin of at most the settings'
  ``price_margin_cap`` and the units the cost is spread over; the unit cost (accounted
  cost to date / expected units) is frozen by :func:`freeze` when the price is set, so a
  price is reproducible from its basis alone.

Stored bases: free ``{}``; conditionally free ``{"condition"}``; guided ``{"tariff_item",
"unit", "price_fen"}``; cost plus ``{"margin", "expected_units", "unit",
"cost_to_date_fen", "unit_cost_fen", "costed_at"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.pricing.errors import PricingError
from gateway.pricing.model import CHARGEABLE, PriceClass
from gateway.products.model import Category

RULES = "001 authorized-operation art. 26; 004 art. 23; 002 art. 24"


@dataclass(frozen=True)
class PricingRules:
    """What the settings say about prices: the guided tariff and the margin cap."""

    tariff: Mapping[str, Mapping[str, str | int]]
    margin_cap: float

    @classmethod
    def of(cls, settings: Any) -> PricingRules:
        return cls(dict(settings.price_tariff), float(settings.price_margin_cap))


class _Free(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _ConditionallyFree(BaseModel):
    model_config = ConfigDict(extra="forbid")

    condition: str = Field(min_length=1, max_length=2000)


class _Guided(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tariff_item: str = Field(min_length=1, max_length=100)


class _CostPlus(BaseModel):
    model_config = ConfigDict(extra="forbid")

    margin: float = Field(ge=0)
    expected_units: int = Field(ge=1, le=10**9)
    unit: str | None = Field(default=None, min_length=1, max_length=32)


_SHAPES: dict[PriceClass, type[BaseModel]] = {
    PriceClass.FREE: _Free,
    PriceClass.CONDITIONALLY_FREE: _ConditionallyFree,
    PriceClass.GUIDED: _Guided,
    PriceClass.COST_PLUS: _CostPlus,
}


def check(
    category: Category, price_class: PriceClass, basis: Mapping[str, Any], rules: PricingRules
) -> dict[str, Any]:
    """The basis of ``price_class`` for a product of ``category``, checked and normalised
    (a guided item's unit and price added); a refusal is a :class:`PricingError` (422)."""
    if category == Category.PUBLIC_GOVERNANCE and price_class in CHARGEABLE:
        raise PricingError(
            f"a public-governance product is free or conditionally free, never "
            f"{price_class.value} ({RULES})"
        )
    try:
        shaped = _SHAPES[price_class].model_validate(dict(basis))
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc'])) or 'basis'}: {err['msg']}" for err in e.errors()
        )
        raise PricingError(f"a {price_class.value} basis: {problems}") from e
    checked = shaped.model_dump(exclude_none=True)
    if isinstance(shaped, _ConditionallyFree) and not shaped.condition.strip():
        raise PricingError("a conditionally free product records its condition")
    if isinstance(shaped, _Guided):
        item = rules.tariff.get(shaped.tariff_item)
        if item is None:
            known = ", ".join(sorted(rules.tariff)) or "none"
            raise PricingError(
                f"{shaped.tariff_item!r} is not an item of the guided tariff (items: {known})"
            )
        checked |= {"unit": str(item["unit"]), "price_fen": int(item["price_fen"])}
    if isinstance(shaped, _CostPlus) and shaped.margin > rules.margin_cap:
        raise PricingError(
            f"a margin of {shaped.margin:g} is over this deployment's cap of "
            f"{rules.margin_cap:g} (a reasonable profit, {RULES})"
        )
    return checked


def freeze(
    price_class: PriceClass,
    basis: Mapping[str, Any],
    *,
    cost_to_date_fen: int,
    default_unit: str,
    now: datetime,
) -> dict[str, Any]:
    """A checked basis as stored: a cost-plus one gains the unit cost of now (the accounted
    cost to date spread over the expected units, rounded half up to a fen) and its unit."""
    if price_class != PriceClass.COST_PLUS:
        return dict(basis)
    units = int(basis["expected_units"])
    return dict(basis) | {
        "unit": basis.get("unit") or default_unit,
        "cost_to_date_fen": cost_to_date_fen,
        "unit_cost_fen": (2 * cost_to_date_fen + units) // (2 * units),
        "costed_at": now.isoformat(),
    }
