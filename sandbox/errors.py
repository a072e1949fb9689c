"""The sandbox package's errors. They know nothing of HTTP: the gateway maps
them to status codes in one place.

A failed *user job* is not an error: it is data (an exit class on the
result). These errors mean the runtime itself could not do what was asked.
"""

from __future__ import annotations


class SandboxError(Exception):
    """Base of every error this package raises on purpose."""


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
