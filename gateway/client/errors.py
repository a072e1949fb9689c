"""Errors of the ``dsr`` client, each with the exit code the command ends with.

Exit codes (stable, for scripts):

==  ========================================================================
0   done (for ``jobs wait`` / ``--wait``: the job was released, or a dummy
    run completed)
1   the gateway refused (4xx other than 401, with its message), the job ended
    otherwise (held, blocked, failed, denied, rejected, cancelled), the audit
    chain is broken, or a local run failed
2   usage: bad arguments, no gateway configured, an unreadable file
3   the gateway (or the container engine, for ``dsr dev run``) cannot be
    reached, or answered that it cannot serve now (5xx)
4   authentication failed: no token, or the gateway refused it (401)
5   ``jobs wait`` gave up: the job had not ended within ``--timeout``
==  ========================================================================
"""

from __future__ import annotations

from collections.abc import Sequence

OK, REFUSED, USAGE, UNREACHABLE, AUTH, TIMED_OUT = 0, 1, 2, 3, 4, 5


class ClientError(Exception):
    """A command cannot go on: ``message`` for the user (the server's, where it spoke)."""

    exit_code = REFUSED

    def __init__(
        self, message: str, *, status: int | None = None, problems: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.problems = list(problems)


class UsageError(ClientError):
    exit_code = USAGE


class Unreachable(ClientError):
    exit_code = UNREACHABLE


class AuthFailed(ClientError):
    exit_code = AUTH


class WaitTimedOut(ClientError):
    exit_code = TIMED_OUT
