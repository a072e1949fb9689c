"""Errors of the incidents package. They know nothing of HTTP (gateway.app maps them)."""

from __future__ import annotations

from gateway.errors import GatewayError


class IncidentError(GatewayError):
    """An incident cannot be recorded or changed as asked (a bad period, no summary)."""


class UnknownIncident(IncidentError):
    """No incident with that id (or none the caller may see)."""


class IncidentForbidden(IncidentError):
    """The caller may not record or change this incident."""


class IncidentConflict(IncidentError):
    """The incident's state does not allow this (resolved already)."""
