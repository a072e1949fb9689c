"""The sandbox side of the gateway, assembled from the settings.

``build_runtime`` puts together what jobs need, all under the gateway's data
directory: the dataset registry and exposure policies, the view and dummy
caches (``cache/``), the differencing ledger (``ledger.sqlite``), identifier
fingerprints, the ledger secret (``keys/``), job work directories
(``work/``), the Docker backend (``DSR_*`` sandbox settings) and the pool
of checker processes that judge outputs (``sandbox.judge.bounded``). The
runtime owns that pool: the app built with it closes it at shutdown
(``gateway.app``), and two runtimes never share one. The gateway serves
without a runtime (no worker, job routes answer 503) where no engine is
available.
"""

from __future__ import annotations

from gateway.jobs.worker import JobRuntime
from gateway.settings import GatewaySettings
from sandbox.intake.policy import PolicyStore
from sandbox.intake.registry import Registry
from sandbox.judge.bounded import CHECKERS, BoundedPool
from sandbox.judge.bounded import Limits as CheckLimits
from sandbox.judge.fingerprints import FingerprintStore
from sandbox.judge.ledger import Ledger
from sandbox.judge.ledger_keys import EntityMaps, ledger_secret
from sandbox.pipeline import Pipeline
from sandbox.run.backends.base import Backend
from sandbox.run.backends.docker import DockerBackend
from sandbox.settings import SandboxSettings
from sandbox.views.build import ViewBuilder
from sandbox.views.dummy import DummyBuilder


def build_runtime(settings: GatewaySettings, backend: Backend | None = None) -> JobRuntime:
    """The runtime over ``settings.data_dir``; ``backend`` replaces the Docker engine
    (a test double for the trusted side's tests, never for analyst code)."""
    data = settings.data_dir
    registry = Registry(data)
    views = ViewBuilder(registry, PolicyStore(data), data / "cache")
    ledger = Ledger(data / "ledger.sqlite")
    backend = backend if backend is not None else DockerBackend(SandboxSettings())
    checkers = BoundedPool(size=CHECKERS)
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
        checkers=checkers,
    )
    return JobRuntime(pipeline, views, ledger, backend, data / "work", checkers=checkers)
