"""Shared test helpers.

Tests that need the Docker Engine use the ``engine`` fixtures below. Where no
engine answers (or the runner image is missing) they skip with the reason;
under CI (``CI=true``) they fail instead, so a broken engine never passes as
a green run.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.backends.base import Limits, RunResult, RunSpec, execute
from sandbox.settings import SandboxSettings

ROOT = Path(__file__).resolve().parent.parent
RUNTIMES = ("runc", "runsc")


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
    global _PROBLEM, _CHECKED
    if not _CHECKED:
        _PROBLEM, _CHECKED = _engine_problem(), True
    return _PROBLEM


def require_engine() -> None:
    problem = engine_problem()
    if problem is None:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI needs the Docker Engine: {problem}", pytrace=False)
    pytest.skip(problem)


@pytest.fixture(scope="session")
def docker_client():  # type: ignore[no-untyped-def]
    require_engine()
    import docker

    client = docker.from_env(timeout=120)
    yield client
    client.close()


@pytest.fixture(scope="session", params=RUNTIMES)
def runtime(request: pytest.FixtureRequest, docker_client) -> str:  # type: ignore[no-untyped-def]
    name: str = request.param
    if name not in docker_client.info().get("Runtimes", {}):
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI needs the {name} runtime registered with the engine", pytrace=False)
        pytest.skip(f"runtime {name} is not registered with the engine")
    return name


@pytest.fixture(scope="session")
def backend(runtime: str):  # type: ignore[no-untyped-def]
    from sandbox.backends.docker import DockerBackend

    return DockerBackend(SandboxSettings(runtime=runtime))  # type: ignore[arg-type]


def make_job_dir(base: Path, code: str, name: str = "job") -> Path:
    """A job directory holding ``main.py``, readable by the sandbox uid."""
    job = base / name
    job.mkdir(parents=True)
    (job / "main.py").write_text(textwrap.dedent(code))
    open_up(base)
    return job


def open_up(path: Path) -> None:
    """Make a tree readable by the sandbox uid (pytest's tmp dirs are 0700)."""
    path.chmod(0o755)
    for p in path.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)


def run_code(
    backend,
    tmp_path: Path,
    code: str,
    *,
    data_dir: Path | None = None,  # type: ignore[no-untyped-def]
    limits: Limits | None = None,
    job_id: str | None = None,
) -> RunResult:
    """Run ``code`` as a Python job through ``backend`` and return the result."""
    job_dir = make_job_dir(tmp_path, code)
    if data_dir is not None:
        open_up(data_dir)
    spec = RunSpec(
        job_id=job_id or f"t-{tmp_path.name[-40:]}".replace("_", "-"),
        job_dir=job_dir,
        data_dir=data_dir,
        limits=limits or Limits(wall_seconds=60, memory_bytes=512 * 1024 * 1024),
    )
    return execute(backend, spec, tmp_path / "out")


def stdout_json(result: RunResult) -> dict:  # type: ignore[type-arg]
    """The last stdout line of a test job, parsed as JSON."""
    text = result.execution.stdout.data.decode()
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, f"no stdout; stderr: {result.execution.stderr.data.decode()[-2000:]}"
    loaded: dict = json.loads(lines[-1])  # type: ignore[type-arg]
    return loaded


def sandbox_objects(docker_client) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
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


@pytest.fixture
def sandbox_containers(docker_client) -> Iterator[callable]:  # type: ignore[valid-type,no-untyped-def]
    """A function listing this backend's containers and volumes still present."""

    def present() -> list[str]:
        return [name for _, name in sandbox_objects(docker_client)]

    yield present


sys.path.insert(0, str(ROOT))
