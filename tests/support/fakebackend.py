"""A backend that keeps the Backend contract without Docker, for fast tests.

Each sandbox is a directory ``<base>/<job id>/`` laid out as the container
sees its mounts: ``job`` and ``data`` (links to the spec's directories),
``output`` and ``tmp``, and ``sandbox.json`` (the spec's hash, the backend id,
whether it ran). ``run`` starts the spec's ``python3 -m MODULE`` as a host
subprocess through ``tests.support.fakeproc``, which maps ``/job``, ``/data``,
``/output`` and ``/tmp`` into that directory; ``collect`` streams ``output``
with ``tar``, as the Docker backend's collector does, into the same
``sandbox.run.collect.collect_archive``. So the in-container entrypoints
(``sandbox.container.runner``, ``sqlrun``, ``modelfit``) and the trusted side's
collection run for real, and ``RunResult``/``ExitClass`` mean what they mean on
Docker.

Limits the host enforces: wall-clock time (the process group is killed:
``TIMED_OUT``), stdout and stderr each capped at ``log_bytes``, the largest
file (``RLIMIT_FSIZE``), open files (``RLIMIT_NOFILE``), and at collection the
output file count, per-file and total sizes. Not enforced: memory (never
``OOM_KILLED``), processes, CPU, the size of ``/tmp``. CPU time is reported (the
process's rusage, as a container's cgroup accounting reports it).

It isolates nothing: no network namespace, no read-only root, the test's own
uid and capabilities. The isolation contract (``tests/support/backend_contract.py``)
is Docker's alone; never run analyst code here.

Sandboxes live in the directory, so two instances on one ``base`` see each
other's, as two gateways on one engine do; executions and collections are
remembered per instance, as the Docker backend remembers them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Collection as CollectionOf
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from sandbox.run.backends.base import (
    CapturedStream,
    Collection,
    Execution,
    ExitClass,
    Limits,
    RunHandle,
    RunSpec,
)
from sandbox.run.collect import CollectLimits, collect_archive

ROOT = Path(__file__).resolve().parents[2]
STATE = "sandbox.json"
KILL_GRACE_SECONDS = 5.0
CHUNK = 64 * 1024
TAR_TAIL = 1024 * 1024  # read after the end-of-archive marker, at most


class _Capped:
    """Reads a pipe to its end, keeping the first ``limit`` bytes and counting the rest."""

    def __init__(self, pipe: IO[bytes], limit: int) -> None:
        self._pipe, self._limit = pipe, limit
        self._parts: list[bytes] = []
        self._kept = self.total = 0
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            while chunk := self._pipe.read1(CHUNK):  # type: ignore[attr-defined]
                self.total += len(chunk)
                room = self._limit - self._kept
                if room > 0:
                    self._parts.append(chunk[:room])
                    self._kept += len(chunk[:room])

    def captured(self) -> CapturedStream:
        self.thread.join(timeout=KILL_GRACE_SECONDS)
        return CapturedStream(data=b"".join(self._parts), total_bytes=self.total)


def _spec_hash(spec: RunSpec) -> str:
    body = json.dumps(
        {
            "job_dir": str(spec.job_dir),
            "data_dir": str(spec.data_dir) if spec.data_dir else None,
            "limits": asdict(spec.limits),
            "command": list(spec.command),
        },
        sort_keys=True,
    )
    return hashlib.sha256(body.encode()).hexdigest()[:32]


def _remove(path: Path) -> None:
    """Remove a sandbox directory, whatever modes the job left on it; a missing one is fine."""

    def writable(func: Any, name: str, _: Any) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(name), 0o700)
            os.chmod(name, 0o700)
        with contextlib.suppress(FileNotFoundError):
            func(name)

    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path, onerror=writable)


class FakeBackend:
    """Runs jobs as host subprocesses; see the module docstring for what it keeps."""

    name = "fake"
    runtime = "fake"

    def __init__(self, base: Path | None = None) -> None:
        self.base = base or Path(tempfile.mkdtemp(prefix="dsr-fake-"))
        self.base.mkdir(parents=True, exist_ok=True)
        self._executions: dict[str, Execution] = {}
        self._collections: dict[str, Collection] = {}

    # -- the sandbox directory ---------------------------------------------------

    def _state(self, job_id: str) -> dict[str, Any] | None:
        try:
            loaded: dict[str, Any] = json.loads((self.base / job_id / STATE).read_text())
        except (OSError, ValueError):
            return None
        return loaded

    def _save(self, job_id: str, state: dict[str, Any]) -> None:
        (self.base / job_id / STATE).write_text(json.dumps(state))

    def _current(self, handle: RunHandle) -> dict[str, Any] | None:
        state = self._state(handle.job_id)
        return state if state and state["backend_id"] == handle.backend_id else None

    def _remove_all(self, job_id: str) -> None:
        _remove(self.base / job_id)
        self._executions.pop(job_id, None)
        self._collections.pop(job_id, None)

    # -- the contract ------------------------------------------------------------

    def prepare(self, spec: RunSpec) -> RunHandle:
        spec_hash = _spec_hash(spec)
        state = self._state(spec.job_id)
        if (
            state is not None
            and state["spec"] == spec_hash
            and not state["ran"]
            and spec.job_id not in self._executions
        ):
            return RunHandle(spec.job_id, state["backend_id"], self.runtime)
        self._remove_all(spec.job_id)
        root = self.base / spec.job_id
        root.mkdir()
        (root / "job").symlink_to(spec.job_dir, target_is_directory=True)
        if spec.data_dir is not None:
            (root / "data").symlink_to(spec.data_dir, target_is_directory=True)
        else:
            (root / "data").mkdir()
        (root / "output").mkdir()
        (root / "tmp").mkdir()
        backend_id = f"fake-{spec.job_id}-{secrets.token_hex(4)}"
        self._save(
            spec.job_id,
            {
                "spec": spec_hash,
                "backend_id": backend_id,
                "ran": False,
                "command": list(spec.command),
                "limits": asdict(spec.limits),
            },
        )
        return RunHandle(spec.job_id, backend_id, self.runtime)

    def run(self, handle: RunHandle) -> Execution:
        if handle.job_id in self._executions:
            return self._executions[handle.job_id]
        state = self._current(handle)
        if state is None or state["ran"]:
            return self._record(handle, _backend_failure("the sandbox is gone or already ran"))
        self._save(handle.job_id, {**state, "ran": True})
        limits = Limits(**state["limits"])
        root = self.base / handle.job_id
        try:
            process = subprocess.Popen(
                self._argv(root, state["command"], limits),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=root / "tmp",
                env=_environment(root),
                start_new_session=True,  # one process group: killed as a whole
            )
        except OSError as e:
            return self._record(handle, _backend_failure(f"cannot start the job: {e}"))
        assert process.stdout is not None and process.stderr is not None
        stdout, stderr = (
            _Capped(process.stdout, limits.log_bytes),
            _Capped(process.stderr, limits.log_bytes),
        )
        started = time.monotonic()
        # Reaped with wait4 for the process's CPU time (a container's cgroup accounting).
        reaped: dict[str, Any] = {}
        waiter = threading.Thread(target=_reap, args=(process, reaped), daemon=True)
        waiter.start()
        waiter.join(timeout=limits.wall_seconds)
        timed_out = waiter.is_alive()
        wall = time.monotonic() - started
        # The container ends with its main process: so does everything the job started.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        waiter.join()
        status = process.returncode = reaped["status"]
        out, err = stdout.captured(), stderr.captured()
        process.stdout.close()
        process.stderr.close()
        exit_code = 128 - status if status < 0 else status  # killed by a signal: 128 + n
        if timed_out:
            exit_class, detail = ExitClass.TIMED_OUT, "killed at the wall-clock limit"
        elif exit_code == 0:
            exit_class, detail = ExitClass.SUCCEEDED, ""
        else:
            exit_class, detail = ExitClass.FAILED, f"the job exited with status {exit_code}"
        execution = Execution(
            exit_class=exit_class,
            exit_code=exit_code,
            oom_killed=False,
            timed_out=timed_out,
            wall_seconds=wall,
            stdout=out,
            stderr=err,
            detail=detail,
            cpu_seconds=reaped["cpu_seconds"],
        )
        return self._record(handle, execution)

    @staticmethod
    def _argv(root: Path, command: list[str], limits: Limits) -> list[str]:
        if len(command) >= 3 and command[0] in ("python3", "python") and command[1] == "-m":
            ulimits = {"fsize_bytes": limits.fsize_bytes, "nofile": limits.nofile}
            fakeproc = [sys.executable, "-P", "-m", "tests.support.fakeproc"]
            return [*fakeproc, str(root), json.dumps(ulimits), *command[1:]]
        return command  # anything else runs as it is, in /tmp

    def _record(self, handle: RunHandle, execution: Execution) -> Execution:
        self._executions[handle.job_id] = execution
        return execution

    def collect(self, handle: RunHandle, dest: Path) -> Collection:
        if handle.job_id in self._collections:
            return self._collections[handle.job_id]
        state = self._current(handle)
        if state is None or not state["ran"]:
            dest.mkdir(parents=True, exist_ok=False)
            collection = Collection(
                (), (), 0, complete=False, detail="the sandbox is gone; no outputs to collect"
            )
            self._collections[handle.job_id] = collection
            return collection
        limits = Limits(**state["limits"])
        output = self.base / handle.job_id / "output"
        tar = subprocess.Popen(
            ["tar", "-C", str(output), "--numeric-owner", "-cf", "-", "."],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert tar.stdout is not None
        try:
            collection = collect_archive(
                _chunks(tar.stdout),
                dest,
                CollectLimits(limits.output_files, limits.output_file_bytes, limits.output_bytes),
            )
            if collection.complete:
                tar.stdout.read(TAR_TAIL)  # the archive's padding: tar ends on its own
        finally:
            tar.stdout.close()
            with contextlib.suppress(ProcessLookupError):
                tar.kill()
            status = tar.wait()
        if collection.complete and status != 0:
            collection = Collection(
                collection.files,
                collection.refused,
                collection.refused_total,
                complete=False,
                detail="some outputs could not be read",
            )
        self._collections[handle.job_id] = collection
        return collection

    def cleanup(self, handle: RunHandle) -> None:
        self._remove_all(handle.job_id)

    def sandboxes(self) -> list[str]:
        try:
            return sorted(p.name for p in self.base.iterdir() if p.is_dir())
        except FileNotFoundError:
            return []

    def reconcile(
        self, keep: CollectionOf[str] = (), only: CollectionOf[str] | None = None
    ) -> list[str]:
        removed = [j for j in self.sandboxes() if j not in keep and (only is None or j in only)]
        for job_id in removed:
            self._remove_all(job_id)
        return removed


def _environment(root: Path) -> dict[str, str]:
    """The runner image's environment, with its home and temporary files in ``root/tmp``."""
    tmp = str(root / "tmp")
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
        "HOME": tmp,
        "TMPDIR": tmp,
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": f"{tmp}/.matplotlib",
        "LANG": "C.UTF-8",
    }


def _reap(process: subprocess.Popen[bytes], into: dict[str, Any]) -> None:
    _, status, usage = os.wait4(process.pid, 0)
    into["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    into["status"] = os.waitstatus_to_exitcode(status)


def _chunks(pipe: IO[bytes]) -> Iterator[bytes]:
    while chunk := pipe.read(CHUNK):
        yield chunk


def _backend_failure(detail: str) -> Execution:
    empty = CapturedStream(b"", 0)
    return Execution(
        exit_class=ExitClass.BACKEND_ERROR,
        exit_code=None,
        oom_killed=False,
        timed_out=False,
        wall_seconds=0.0,
        stdout=empty,
        stderr=empty,
        detail=detail,
    )
