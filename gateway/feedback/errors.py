"""Errors of data-quality feedback. They know nothing of HTTP: the gateway's one
handler maps them (``gateway.app``)."""

from __future__ import annotations

from gateway.errors import GatewayError


class FeedbackError(GatewayError):
    """An issue or an answer that cannot be accepted as written (too long, values quoted,
    unknown columns)."""


class UnknownIssue(FeedbackError):
    """No issue of that id (or none the caller may read)."""


class FeedbackForbidden(FeedbackError):
    """The caller may not do this: file on a dataset it never held a grant for, answer
    an issue on another provider's dataset."""


class FeedbackConflict(FeedbackError):
    """The issue's state does not allow this (it is resolved or not an issue)."""
