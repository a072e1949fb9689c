"""The scope policy's errors: one hierarchy under ``ScopeError``.

A denial is an error only where the caller asked for a check (``check_*``);
``ScopeDenied`` then holds every decision of the check, for the audit event.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.scope.objects import NO_MATCH, Decision


class ScopeError(Exception):
    """Base of the scope policy's errors (to move under gateway/errors.py's hierarchy)."""


class ScopeRuleError(ScopeError):
    """A policy line is invalid (unknown action, bad id or object), or a change cannot apply."""


class ScopeStoreError(ScopeError):
    """The store could not save a change; the policy in memory is unchanged."""


class ScopeDenied(ScopeError):
    """At least one requested object is outside the grant: the job is refused.

    ``decisions`` holds every decision of the check (allowed ones too), in
    request order, for the audit event; ``denied`` only the denials.
    """

    def __init__(self, decisions: Sequence[Decision]) -> None:
        self.decisions = tuple(decisions)
        self.denied = tuple(d for d in self.decisions if not d.allowed)
        if not self.decisions:
            message = "scope denied: nothing to check (" + NO_MATCH + ")"
        else:
            shown = "; ".join(
                f"{d.object} ({d.action}): {', '.join(d.reason)}" for d in self.denied[:5]
            )
            more = f"; and {len(self.denied) - 5} more" if len(self.denied) > 5 else ""
            message = (
                f"scope denied: {len(self.denied)} of {len(self.decisions)} requests "
                f"under grant {self.decisions[0].grant}: {shown}{more}"
            )
        super().__init__(message)
