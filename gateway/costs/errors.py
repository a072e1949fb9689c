"""Errors of the cost ledger and statements. They know nothing of HTTP: the gateway maps
them (422 for a bad request, 403 for another operator's books)."""

from __future__ import annotations

from gateway.errors import GatewayError


class CostError(GatewayError):
    """A ledger or statement asked for wrongly (a bad period, format or language): 422."""


class CostForbidden(CostError):
    """Another operator's costs or statement (403)."""
