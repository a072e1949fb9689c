"""Errors of the terminations package. They subclass the grant errors, so the gateway maps
them as it maps those (a termination is a change of a grant): 404, 403, 409, 422."""

from __future__ import annotations

from gateway.grants.errors import GrantConflict, GrantError, GrantForbidden, UnknownGrant


class TerminationError(GrantError):
    """A termination cannot be proposed or decided as asked (no basis, a wrong list)."""


class UnknownTermination(UnknownGrant):
    """No termination with that id (or none the caller may see)."""


class TerminationForbidden(GrantForbidden):
    """The caller may not propose, request, decide or withdraw this termination."""


class TerminationConflict(GrantConflict):
    """The termination's state does not allow this (decided already, taken effect)."""
