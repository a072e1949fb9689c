"""The backends the contract runs on: the fake (no Docker) and Docker on runc and runsc."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.settings import SandboxSettings
from tests.support.engine import require_runtime
from tests.support.fakebackend import FakeBackend

BACKENDS = [
    "fake",
    pytest.param("runc", marks=pytest.mark.docker),
    pytest.param("runsc", marks=pytest.mark.docker),
]


@pytest.fixture(scope="session", params=BACKENDS)
def any_backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Each backend in turn; the Docker ones skip (under CI: fail) without the engine."""
    if request.param == "fake":
        return FakeBackend(tmp_path_factory.mktemp("fake-sandboxes"))
    require_runtime(request.getfixturevalue("docker_client"), request.param)
    from sandbox.run.backends.docker import DockerBackend

    return DockerBackend(SandboxSettings(runtime=request.param))
