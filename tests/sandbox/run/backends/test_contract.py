"""Every backend meets the Backend contract: the functional part on the fake, runc and
runsc; the isolation part on runc and runsc only (the fake isolates nothing)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.backend_contract import FunctionalContract, IsolationContract


class TestFunctional(FunctionalContract):
    @pytest.fixture
    def backend(self, any_backend: Any) -> Any:
        return any_backend  # tests/sandbox/run/backends/conftest.py: fake, runc, runsc


@pytest.mark.docker
class TestIsolation(IsolationContract):
    pass  # the ``backend`` fixture (tests/conftest.py) runs each test on runc and runsc
