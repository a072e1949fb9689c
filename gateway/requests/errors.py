"""Errors of the data requests package. They know nothing of HTTP (gateway.app maps them)."""

from __future__ import annotations

from gateway.errors import GatewayError


class RequestError(GatewayError):
    """A request cannot be made or reviewed as asked (e.g. a rejection without its basis)."""


class UnknownRequest(RequestError):
    """No data request with that id."""


class IllegalRequestTransition(RequestError):
    """A move the state table does not allow; the message names from and to."""


class RequestForbidden(RequestError):
    """The caller may not act on this request (not its operator, not a provider of its data)."""


class UnknownExtension(UnknownRequest):
    """No such extension of that data request's review."""
