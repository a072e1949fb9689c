"""Metering's errors (the gateway maps them: 403, 422)."""

from __future__ import annotations

from gateway.errors import GatewayError


class MeteringError(GatewayError):
    """Usage cannot be totalled as asked (a bad period or grouping): 422."""


class MeteringForbidden(MeteringError):
    """The caller may not read this usage (another operator's): 403."""
