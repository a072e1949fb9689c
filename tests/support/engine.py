"""Whether the Docker Engine (with the runner image) is there, for tests that need it.

Tests that need the engine call ``require_engine()``: where no engine answers
(or the runner image is missing) they skip with the reason; under CI
(``CI=true``) they fail instead, so a broken engine never passes as a green
run. ``sandbox_objects`` lists what the Docker backend left on the engine.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from sandbox.settings import SandboxSettings

ROOT = Path(__file__).resolve().parents[2]
RUNTIMES = ("runc", "runsc")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _engine_problem() -> str | None:
    try:
        import docker

        client = docker.from_env(timeout=10)
        client.ping()
    except Exception as e:  # any failure means "no engine"
        return f"no Docker Engine answers ({type(e).__name__}); run images/engine-setup.sh"
    try:
        client.images.get(SandboxSettings().image)
    except Exception:
        return "the runner image is not built; run `make image`"
    return None


_PROBLEM: str | None = None
_CHECKED = False


def engine_problem() -> str | None:
    """Why the engine cannot run sandboxes (None when it can); asked once per session."""
    global _PROBLEM, _CHECKED
    if not _CHECKED:
        _PROBLEM, _CHECKED = _engine_problem(), True
    return _PROBLEM


def require_engine() -> None:
    problem = engine_problem()
    if problem is None:
        return
    if in_ci():
        pytest.fail(f"CI needs the Docker Engine: {problem}", pytrace=False)
    pytest.skip(problem)


def require_runtime(docker_client: Any, name: str) -> None:
    """Skip (under CI: fail) unless the engine has the runtime ``name`` registered."""
    if name in docker_client.info().get("Runtimes", {}):
        return
    if in_ci():
        pytest.fail(f"CI needs the {name} runtime registered with the engine", pytrace=False)
    pytest.skip(f"runtime {name} is not registered with the engine")


def sandbox_objects(docker_client: Any) -> list[tuple[str, str]]:
    """(job id, name) of every labelled sandbox container and volume on the engine.

    From the engine's list answers only: the engine is shared (other gateways and
    test runs), and ``containers.list`` would inspect each container and fail on
    one removed meanwhile. Tests assert about their own job ids only.
    """
    filters = {"label": "dsr.managed=true"}
    found = []
    for c in docker_client.api.containers(all=True, filters=filters):
        name = (c.get("Names") or ["?"])[0].lstrip("/")
        found.append(((c.get("Labels") or {}).get("dsr.job", ""), name))
    for v in docker_client.api.volumes(filters=filters).get("Volumes") or []:
        found.append(((v.get("Labels") or {}).get("dsr.job", ""), v["Name"]))
    return found
