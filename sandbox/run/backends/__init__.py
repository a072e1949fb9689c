"""Sandbox backends: where jobs run.

``base`` is the contract (a run spec in; prepare, run, collect, cleanup,
reconcile; an ``Execution`` and a ``Collection`` out). ``docker`` implements
it on one machine, in this order: ``hardening`` names and labels a run's
containers and output volume and gives the isolated options they are
created with; ``streams`` carries the job's stdout, stderr and resource use
while it runs; ``exits`` turns the engine's report into an ``Execution``;
``sandbox.run.collect`` reads the outputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandbox.run.backends.base import Backend

if TYPE_CHECKING:  # pydantic-settings is not needed until a backend is made
    from sandbox.settings import SandboxSettings


def docker_backend(settings: SandboxSettings) -> Backend:
    """The Docker backend for ``settings`` (raises EngineUnavailable without an engine)."""
    from sandbox.run.backends.docker import DockerBackend

    return DockerBackend(settings)


__all__ = ["Backend", "docker_backend"]
