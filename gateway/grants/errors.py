"""Errors of the grants package. They know nothing of HTTP (gateway.app maps them)."""

from __future__ import annotations

from gateway.errors import GatewayError


class GrantError(GatewayError):
    """A grant cannot be made or changed as asked (bad scope, term, scenario, reason)."""


class UnknownGrant(GrantError):
    """No grant with that id."""


class GrantConflict(GrantError):
    """The grant's state does not allow this (an illegal transition, an inactive grant)."""


class IllegalGrantTransition(GrantConflict):
    """A move the state table does not allow; the message names from and to."""


class GrantInactive(GrantConflict):
    """The grant is suspended, revoked, expired or not yet valid: it cannot be used."""


class GrantHeld(GrantConflict):
    """The caller holds no stop on the grant to lift (or already holds one to place);
    the message names the parties that hold the grant."""


class GrantForbidden(GrantError):
    """The caller may not govern this grant (not a provider of its datasets)."""
