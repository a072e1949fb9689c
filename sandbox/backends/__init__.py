"""Sandbox backends: where jobs run. ``base`` is the contract, ``docker`` the
implementation on one machine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandbox.backends.base import Backend

if TYPE_CHECKING:  # pydantic-settings is not needed until a backend is made
    from sandbox.settings import SandboxSettings


def docker_backend(settings: SandboxSettings) -> Backend:
    """The Docker backend for ``settings`` (raises EngineUnavailable without an engine)."""
    from sandbox.backends.docker import DockerBackend

    return DockerBackend(settings)


__all__ = ["Backend", "docker_backend"]
