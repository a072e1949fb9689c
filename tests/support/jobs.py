"""Python jobs for backend tests: a job directory, a run through a backend, its JSON.

Plain functions over any backend (Docker or ``tests.support.fakebackend``).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from sandbox.run.backends.base import Backend, Limits, RunResult, RunSpec, execute


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
    backend: Backend,
    tmp_path: Path,
    code: str,
    *,
    data_dir: Path | None = None,
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


def stdout_json(result: RunResult) -> dict[str, Any]:
    """The last stdout line of a test job, parsed as JSON."""
    text = result.execution.stdout.data.decode()
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, f"no stdout; stderr: {result.execution.stderr.data.decode()[-2000:]}"
    loaded: dict[str, Any] = json.loads(lines[-1])
    return loaded
