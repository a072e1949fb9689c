"""The Docker backend meets the Backend contract, on runc and on runsc."""

from __future__ import annotations

import pytest

from tests.sandbox.backends.contract import BackendContract

pytestmark = [pytest.mark.docker]


class TestDockerBackend(BackendContract):
    pass  # the ``backend`` fixture (tests/conftest.py) runs each test on both runtimes
