"""Stage 4 of the data flow: run a job in a fresh, isolated container.

The :class:`Backend` protocol is the contract every backend meets (Docker
today; a Kubernetes backend, one Job per run, fits the same shape). Its
docstrings are the spec. Every method is idempotent, so a gateway that
restarts can call them again, and ``reconcile`` removes whatever a crashed
process left behind.

Types crossing this boundary are frozen dataclasses. The host trusts only
what the engine reports (exit code, OOM kill, timing) and what ``collect``
reads itself; nothing the job prints or writes is believed about the run.
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection as CollectionOf
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

from sandbox.errors import SpecError

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Limits:
    """Resource limits of one run. Defaults suit an analysis job on a small host."""

    memory_bytes: int = 1 * GiB
    cpus: float = 1.0
    pids: int = 256  # under gVisor the sandbox's own threads count too
    wall_seconds: float = 300.0
    nofile: int = 1024
    fsize_bytes: int = 256 * MiB  # RLIMIT_FSIZE: largest file the job may write anywhere
    tmp_bytes: int = 256 * MiB  # tmpfs /tmp
    output_bytes: int = 64 * MiB  # tmpfs /output
    output_files: int = 1000  # files collected from /output, at most
    output_file_bytes: int = 32 * MiB  # one collected file, at most
    log_bytes: int = 1 * MiB  # kept of stdout, and of stderr, each

    def __post_init__(self) -> None:
        for name in (
            "memory_bytes",
            "pids",
            "nofile",
            "fsize_bytes",
            "tmp_bytes",
            "output_bytes",
            "output_files",
            "output_file_bytes",
            "log_bytes",
        ):
            if getattr(self, name) <= 0:
                raise SpecError(f"limit {name} must be positive")
        if self.cpus <= 0 or self.wall_seconds <= 0:
            raise SpecError("limits cpus and wall_seconds must be positive")
        if self.memory_bytes < 16 * MiB:
            raise SpecError("limit memory_bytes must be at least 16 MiB")


@dataclass(frozen=True)
class RunSpec:
    """What to run: a job id, the host directories to mount, and the limits.

    ``job_dir`` is mounted read-only at ``/job`` and ``data_dir`` (the
    authorized views, never raw files) read-only at ``/data``.
    """

    job_id: str
    job_dir: Path
    data_dir: Path | None = None
    limits: Limits = field(default_factory=Limits)
    command: tuple[str, ...] = ("python3", "-m", "sandbox.container.runner")

    def __post_init__(self) -> None:
        if not JOB_ID.match(self.job_id):
            raise SpecError("job id must be 1-64 letters, digits, '.', '_' or '-'")
        for name, path in (("job_dir", self.job_dir), ("data_dir", self.data_dir)):
            if path is None:
                continue
            if not path.is_absolute() or not path.is_dir():
                raise SpecError(f"{name} must be an existing absolute directory")
        if not self.command:
            raise SpecError("command must not be empty")


class ExitClass(StrEnum):
    """How a run ended, as the engine saw it. Values are stored; never change them."""

    SUCCEEDED = "succeeded"  # exit code 0
    FAILED = "failed"  # non-zero exit code of the job itself
    TIMED_OUT = "timed_out"  # killed at the wall-clock limit
    OOM_KILLED = "oom_killed"  # killed by the memory limit
    RESOURCE_EXHAUSTED = "resource_exhausted"  # the sandbox itself died (e.g. a fork storm)
    BACKEND_ERROR = "backend_error"  # the runtime failed, not the job


@dataclass(frozen=True)
class CapturedStream:
    """The first ``limit`` bytes of a stream, and how much there was in all."""

    data: bytes
    total_bytes: int

    @property
    def truncated(self) -> bool:
        return self.total_bytes > len(self.data)


@dataclass(frozen=True)
class Execution:
    """The outcome of ``run``: what the engine reported about the job."""

    exit_class: ExitClass
    exit_code: int | None
    oom_killed: bool
    timed_out: bool
    wall_seconds: float
    stdout: CapturedStream
    stderr: CapturedStream
    memory_peak_bytes: int | None = None
    pids_peak: int | None = None
    detail: str = ""  # a plain note from the runtime, never job output
    cpu_seconds: float | None = None  # the sandbox's CPU time, from the kernel's accounting


@dataclass(frozen=True)
class OutputFile:
    """One regular file collected from ``/output``, stored at ``path`` on the host."""

    name: str  # relative, sanitised
    size: int
    sha256: str
    path: Path


@dataclass(frozen=True)
class RefusedMember:
    """An entry of ``/output`` that was not collected.

    The name is analyst-chosen and may itself carry data, so only its hash is
    kept.
    """

    index: int
    name_sha256: str
    kind: str  # file, dir, symlink, hardlink, fifo, chardev, blockdev, other
    reason: str


@dataclass(frozen=True)
class Collection:
    """What ``collect`` took from ``/output``: accepted files and refusals."""

    files: tuple[OutputFile, ...]
    refused: tuple[RefusedMember, ...]
    refused_total: int  # refusals in all (``refused`` keeps the first ones)
    complete: bool  # False when caps cut collection short or the archive was broken
    detail: str = ""

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True)
class RunHandle:
    """A prepared run: the job id, the backend's id for it and the runtime used."""

    job_id: str
    backend_id: str
    runtime: str


@dataclass(frozen=True)
class RunResult:
    """Everything one run produced, from create to removed."""

    job_id: str
    runtime: str
    execution: Execution
    collection: Collection
    wall_seconds: float  # create to removed


@runtime_checkable
class Backend(Protocol):
    """A place that runs jobs in isolation. Every method is idempotent."""

    name: str

    def prepare(self, spec: RunSpec) -> RunHandle:
        """Create (but do not start) a fresh isolated sandbox for ``spec``.

        The sandbox has no network, a read-only root, a non-root uid, no
        capabilities and the limits of ``spec.limits``; ``/job`` and ``/data``
        are read-only, ``/output`` and ``/tmp`` writable and size-capped. It is
        labelled with the job id so ``reconcile`` can find it. Calling prepare
        again for a job id whose sandbox exists but has not run returns that
        sandbox; one that has already run is replaced by a fresh one.
        """
        ...

    def run(self, handle: RunHandle) -> Execution:
        """Run the job to its end and report how it ended.

        Blocks at most about ``wall_seconds``; at the limit the sandbox is
        killed and the result says ``TIMED_OUT``. stdout and stderr are kept
        apart, each up to ``log_bytes``. A job that fails is a result, not an
        exception. Calling run again for a handle that has already run returns
        the recorded result without running the job twice.
        """
        ...

    def collect(self, handle: RunHandle, dest: Path) -> Collection:
        """Copy the regular files of ``/output`` into the new directory ``dest``.

        Outputs come through the engine (never by following paths on the
        host); only regular files are taken, names are sanitised, and file
        count, per-file and total sizes are capped. Everything else is listed
        as refused. Returns an empty, incomplete collection when the sandbox
        is gone. Calling collect again returns the first collection.
        """
        ...

    def cleanup(self, handle: RunHandle) -> None:
        """Remove the sandbox and everything of it. Removing a missing sandbox is fine."""
        ...

    def sandboxes(self) -> list[str]:
        """The job ids that have anything left on this backend, sorted. Changes nothing.

        The engine may be shared (other gateways, test runs, tools): a sandbox
        created or removed by someone else while this lists is no error; it is
        listed or not, and what was there before and after is listed.
        """
        ...

    def reconcile(
        self, keep: CollectionOf[str] = (), only: CollectionOf[str] | None = None
    ) -> list[str]:
        """Remove every sandbox of this backend whose job id is not in ``keep`` and,
        when ``only`` is given, is in ``only``.

        For start-up after a crash. On a shared engine pass ``only`` (the job ids
        the caller owns), so sandboxes others make meanwhile are never touched.
        A sandbox that vanishes while this runs is no error. Returns the job ids
        removed.
        """
        ...


def execute(backend: Backend, spec: RunSpec, dest: Path) -> RunResult:
    """Prepare, run, collect and clean up one job; the sandbox is always removed."""
    started = time.monotonic()
    handle = backend.prepare(spec)
    try:
        execution = backend.run(handle)
        collection = backend.collect(handle, dest)
    finally:
        backend.cleanup(handle)
    return RunResult(
        job_id=spec.job_id,
        runtime=handle.runtime,
        execution=execution,
        collection=collection,
        wall_seconds=time.monotonic() - started,
    )
