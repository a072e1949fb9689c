"""Errors of the privacy-computing products. They know nothing of HTTP: the
gateway's one handler maps them (``gateway.app``)."""

from __future__ import annotations

from gateway.errors import GatewayError


class HEProductError(GatewayError):
    """A product cannot be defined or used as asked (bad definition, bad input)."""


class UnknownHEProduct(HEProductError):
    """No product, or no context, of that id (or none the caller may see)."""


class HEForbidden(HEProductError):
    """The caller may not do this: another operator's grant or job, a column outside
    the grant, a consumer the product does not list, a reviewer approving their own."""


class HEConflict(HEProductError):
    """The product's state does not allow this (not approved, suspended, withdrawn;
    a grant that is not active; a job that is not released)."""


class HEUnavailable(HEProductError):
    """The evaluation sandbox cannot answer now (no engine, no answer in time, a crash)."""


class HETooLarge(HEProductError):
    """A context or ciphertext is over its cap."""


class HERateLimited(HEProductError):
    """The consumer called this product too often; ``retry_after`` is in seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}
