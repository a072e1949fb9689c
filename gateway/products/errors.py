"""Errors of product registration. They know nothing of HTTP: they subclass the
kinds of ``gateway.jobs.errors``, which the gateway's one handler maps to 404,
403 and 409."""

from __future__ import annotations

from gateway.jobs.errors import Conflict, Forbidden, NotFound


class UnknownProduct(NotFound):
    """No registered product of that id."""


class UnknownRegistration(NotFound):
    """No registration application (or objection) of that id, or none the caller may see."""


class NotYours(Forbidden):
    """Another operator's job, HE product, product or application."""


class ProcedureConflict(Conflict):
    """The application, product or objection is not in a state that allows this (a move
    its table refuses, publicity not ended, an objection pending, one already open)."""


class OutsideRenewalWindow(Conflict):
    """A renewal asked for before the window of 60 days before expiry opened, or after
    the registration expired (001 art. 16)."""


class NotRegistered(Conflict):
    """A product offered to someone other than its operator without a valid registration
    (authorized-operation measures 001 art. 9)."""
