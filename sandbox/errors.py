"""The sandbox package's errors. They know nothing of HTTP: the gateway maps
them to status codes in one place.

A failed *user job* is not an error: it is data (an exit class on the
result). These errors mean the runtime itself could not do what was asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# The root, defined beside the container code that raises it too.
from sandbox.container.errors import SandboxError as SandboxError


class ConfigurationError(SandboxError):
    """A setting is missing or unsafe."""


class EngineUnavailable(SandboxError):
    """No container engine answers (start it with images/engine-setup.sh)."""


class RuntimeUnavailable(SandboxError):
    """The container runtime that was asked for is not registered with the engine."""


class ImageMissing(SandboxError):
    """The runner image is not built (build it with `make image`)."""


class SpecError(SandboxError):
    """A run specification is invalid (bad job id, missing directory, ...)."""


class BackendError(SandboxError):
    """The backend failed to create, run or remove a container."""


class RegistryError(SandboxError):
    """A dataset cannot be registered or found (bad file, bad encoding, unknown name)."""


class SqlNameError(SandboxError):
    """A name or a type cannot enter SQL text (``sandbox.sqltext``): never pasted, refused."""


class NamesRefused(RegistryError):
    """A provider's file holds column names the platform does not accept.

    ``problems`` lists each one: its position, the name (as data, for the
    provider who sent it), why, and a safe name to use instead.
    """

    def __init__(self, message: str, problems: list[dict[str, Any]]) -> None:
        self.problems = problems
        super().__init__(message)


class PolicyError(SandboxError):
    """An exposure policy is invalid. ``problems`` lists each one, naming field and line."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = problems or []
        detail = "".join(f"\n  - {p}" for p in self.problems)
        super().__init__(message + detail)


class ViewError(SandboxError):
    """An authorized view cannot be built (grant outside the policy, missing dataset)."""


class LedgerError(SandboxError):
    """The differencing ledger cannot do what was asked (bad input, unreadable store)."""


class SqlRejected(SandboxError):
    """An SQL product failed the static checks. ``rejections`` lists every problem found.

    Each rejection (``sandbox.precheck.sql.Rejection``) names the clause and the rule.
    """

    def __init__(self, rejections: Sequence[Any]) -> None:
        self.rejections = list(rejections)
        detail = "".join(f"\n  - {r.message} [{r.rule}]" for r in self.rejections)
        super().__init__("the SQL product was rejected" + detail)


class ScreenRejected(SandboxError):
    """A Python job failed the screen. ``findings`` lists every problem found.

    The screen is a lint for the operator's benefit; the container is the boundary.
    """

    def __init__(self, findings: Sequence[Any]) -> None:
        self.findings = tuple(findings)
        detail = "".join(f"\n  - {f}" for f in self.findings)
        super().__init__("the Python job was rejected by the screen" + detail)


class EvidenceUnavailable(SandboxError):
    """An SQL product's entities cannot be followed to its output rows, so no
    trusted evidence exists for it; its output is never released automatically."""


class CheckError(SandboxError):
    """Outputs cannot be checked (unreadable collection, missing evidence file)."""
