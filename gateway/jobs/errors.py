"""Errors of jobs, reviews and products. They know nothing of HTTP: the
gateway's one handler maps the kinds below to 404, 403, 409, 422 and 429."""

from __future__ import annotations

from gateway.errors import GatewayError


class NotFound(GatewayError):
    """No such job, review or product."""


class Forbidden(GatewayError):
    """The caller may not do this to this object (another operator's job, a
    reviewer's own job, a scope denial)."""


class Conflict(GatewayError):
    """The object is not in a state that allows this (a move the state table
    refuses, a second vote, an inactive grant)."""


class CodeRejected(GatewayError):
    """The submitted code failed the static checks; nothing was queued. ``problems``
    lists every finding (its line for Python), never a value."""

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems


class NotConfigured(GatewayError):
    """The gateway was started without a sandbox pipeline or a grant resolver."""


class UnknownJob(NotFound):
    """No job of that id."""


class NotYourJob(Forbidden):
    """The job was submitted by another operator."""


class ScopeRefused(Forbidden):
    """The scope policy denied the submission (the decision is audited)."""


class InvalidTransition(Conflict):
    """The state table does not allow this move, or the job moved meanwhile."""


class GrantUnavailable(Conflict):
    """The grant is unknown, suspended, revoked or expired."""


class QueueFull(GatewayError):
    """The operator already has as many jobs queued as one operator may; nothing was
    queued (the refusal is audited). ``retry_after`` is a hint in seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}
