"""The sandbox side of the gateway, assembled from the settings.

``build_runtime`` puts together what jobs need, all under the gateway's data
directory: the dataset registry and exposure policies, the view and dummy
caches (``cache/``), the differencing ledger (``ledger.sqlite``), identifier
fingerprints, the ledger secret (``keys/``), job work directories
(``work/``) and the Docker backend (``DSR_*`` sandbox settings). The
gateway serves without it (no worker, job routes answer 503) where no
engine is available.
"""

from __future__ import annotations

from gateway.jobs.worker import JobRuntime
from gateway.settings import GatewaySettings
from sandbox.backends.base import Backend
from sandbox.backends.docker import DockerBackend
from sandbox.bounded import Limits as CheckLimits
from sandbox.checks.fingerprints import FingerprintStore
from sandbox.dummy import DummyBuilder
from sandbox.entitymap import EntityMaps, ledger_secret
from sandbox.ledger import Ledger
from sandbox.pipeline import Pipeline
from sandbox.policy import PolicyStore
from sandbox.registry import Registry
from sandbox.settings import SandboxSettings
from sandbox.views import ViewBuilder


def build_runtime(settings: GatewaySettings, backend: Backend | None = None) -> JobRuntime:
    """The runtime over ``settings.data_dir``; ``backend`` replaces the Docker engine
    (a test double for the trusted side's tests, never for analyst code)."""
    data = settings.data_dir
    registry = Registry(data)
    views = ViewBuilder(registry, PolicyStore(data), data / "cache")
    ledger = Ledger(data / "ledger.sqlite")
    backend = backend if backend is not None else DockerBackend(SandboxSettings())
    pipeline = Pipeline(
        views=views,
        dummy=DummyBuilder(views, data / "cache"),
        backend=backend,
        ledger=ledger,
        fingerprints=FingerprintStore(data),
        entity_maps=EntityMaps(data / "cache", ledger_secret(data)),
        work_dir=data / "work",
        check_limits=CheckLimits(
            memory_bytes=settings.check_memory_mb * 1024 * 1024, seconds=settings.check_seconds
        ),
    )
    return JobRuntime(pipeline, views, ledger, backend, data / "work")
