"""Errors of prices and charges. They know nothing of HTTP: the gateway maps them (422 for
a price or charge the rules refuse, 409 for a state that forbids it, 403 for another
operator's product)."""

from __future__ import annotations

from gateway.errors import GatewayError


class PricingError(GatewayError):
    """A price, basis or charge the rules refuse (422): a chargeable class for a
    public-governance product, a margin over the cap, an unknown tariff item, a charge
    for a free product, an unknown payer, a bad period."""


class PricingForbidden(PricingError):
    """Another operator's product, statement or costs (403)."""


class PricingConflict(PricingError):
    """The product's state forbids it (not registered, no unit price yet) or the charge's
    reference was used already (409)."""
