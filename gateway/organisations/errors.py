"""Errors of organisations. They know nothing of HTTP: the gateway's one handler maps
them (``gateway.app``)."""

from __future__ import annotations

from gateway.errors import GatewayError


class OrganisationError(GatewayError):
    """An organisation or an assignment that cannot be made as asked (bad id, bad kind)."""


class UnknownOrganisation(OrganisationError):
    """No organisation of that id (or none the caller may read)."""


class OrganisationExists(OrganisationError):
    """An organisation of that id or name exists already."""
