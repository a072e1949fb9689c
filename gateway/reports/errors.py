"""The reports' errors (the gateway maps them: 404, 403, 422)."""

from __future__ import annotations

from gateway.errors import GatewayError


class ReportError(GatewayError):
    """A report cannot be made as asked (a bad period, format or language): 422."""


class UnknownSubject(ReportError):
    """No operator or provider of that name: 404."""


class ReportForbidden(ReportError):
    """The caller may not read this report (another operator's or provider's): 403."""
