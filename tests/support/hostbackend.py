"""A backend that runs the in-container side on the host, for tests of the trusted side.

Property tests send hundreds of hostile names through the trusted side's
handling of a job (static checks, the evidence rewrite, collection, reading
outputs, the output rules, the ledger). A container per example would take
minutes; the container is not what those tests examine (the attack suite
tests it). So this backend:

- runs an SQL product's query with ``sandbox.container.sqlrun.run_sql`` (the very code
  the runner image runs) over the view directory as ``/data``;
- for a Python job, takes the files a hostile job would leave in
  ``/output`` from ``python_outputs(job_dir)``: any names and bytes, a
  manifest of its own making;
- hands what was produced to the real collector as a tar stream
  (``sandbox.run.collect.collect_archive``), so names are sanitised and capped
  exactly as they are when they come out of a container.

It isolates nothing: never use it for analyst code.
"""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from collections.abc import Collection as CollectionOf
from pathlib import Path

from sandbox.container.sqlrun import run_sql
from sandbox.run.backends.base import (
    CapturedStream,
    Collection,
    Execution,
    ExitClass,
    RunHandle,
    RunSpec,
)
from sandbox.run.collect import CollectLimits, collect_archive


class HostBackend:
    name = "host"

    def __init__(self, python_outputs: Callable[[Path], dict[str, bytes]]) -> None:
        self._python_outputs = python_outputs
        self._specs: dict[str, RunSpec] = {}
        self._outputs: dict[str, dict[str, bytes]] = {}
        self._runs: dict[str, Execution] = {}

    def prepare(self, spec: RunSpec) -> RunHandle:
        # One job may take several sandboxes (a Python job's dummy run, recomputations).
        self._specs[str(spec.job_dir)] = spec
        return RunHandle(job_id=spec.job_id, backend_id=str(spec.job_dir), runtime="host")

    def run(self, handle: RunHandle) -> Execution:
        if handle.backend_id in self._runs:
            return self._runs[handle.backend_id]
        spec = self._specs[handle.backend_id]
        started = time.monotonic()
        described = spec.job_dir / "job.json"
        job = json.loads(described.read_text()) if described.exists() else {"kind": "python"}
        files: dict[str, bytes] = {}
        code = 0
        if job.get("kind") in ("sql", "model"):
            assert spec.data_dir is not None
            with tempfile.TemporaryDirectory(prefix="dsr-host-out-") as out:
                if job["kind"] == "sql":
                    code = run_sql(spec.job_dir, job, data_dir=spec.data_dir, output_dir=Path(out))
                else:
                    from sandbox.container.modelfit import run_model

                    code = run_model(
                        spec.job_dir, job, data_dir=spec.data_dir, output_dir=Path(out)
                    )
                files = {p.name: p.read_bytes() for p in Path(out).iterdir() if p.is_file()}
        else:
            files = self._python_outputs(spec.job_dir)
        self._outputs[handle.backend_id] = files
        empty = CapturedStream(b"", 0)
        execution = Execution(
            exit_class=ExitClass.SUCCEEDED if code == 0 else ExitClass.FAILED,
            exit_code=code,
            oom_killed=False,
            timed_out=False,
            wall_seconds=time.monotonic() - started,
            stdout=empty,
            stderr=empty,
        )
        self._runs[handle.backend_id] = execution
        return execution

    def collect(self, handle: RunHandle, dest: Path) -> Collection:
        limits = self._specs[handle.backend_id].limits
        caps = CollectLimits(limits.output_files, limits.output_file_bytes, limits.output_bytes)
        return collect_archive(_tar(self._outputs.get(handle.backend_id, {})), dest, caps)

    def cleanup(self, handle: RunHandle) -> None:
        self._outputs.pop(handle.backend_id, None)
        self._runs.pop(handle.backend_id, None)

    def sandboxes(self) -> list[str]:
        return []

    def reconcile(
        self, keep: CollectionOf[str] = (), only: CollectionOf[str] | None = None
    ) -> list[str]:
        return []


def _tar(files: dict[str, bytes]) -> Iterator[bytes]:
    """The files as ``tar -C /output -cf - .`` would stream them (names as given)."""
    sink = io.BytesIO()
    with tarfile.open(fileobj=sink, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo("./" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    yield sink.getvalue()
