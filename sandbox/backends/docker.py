"""The Docker backend: one fresh, hardened container per run.

Each run has three engine objects, named after the job id and labelled so
``reconcile`` finds them after a crash:

- ``dsr-job-<id>``: the job itself is this container's main process, so the
  engine's seccomp profile and ``no-new-privileges`` apply to it on both
  runtimes (gVisor does not apply them to ``docker exec`` processes), and
  the exit code and OOM kill come from the engine, never from the job;
- ``dsr-output-<id>``: a size-capped tmpfs volume mounted at ``/output``;
- ``dsr-collect-<id>``: an idle container that holds the same volume
  (read-only) so its tmpfs outlives the job; ``collect`` runs ``tar`` in it
  and parses the stream as hostile input. Job code never runs there.

Hardening of the job container: no network (``network_mode=none``),
read-only root, ``cap_drop=ALL``, ``no-new-privileges``, the engine's seccomp
profile less ptrace, process_vm_* and io_uring, a non-root uid,
memory with swap equal to memory, pids, CPU quota, nofile/fsize/core
ulimits, a loopback-only resolver, tmpfs ``/tmp`` and tmpfs-volume
``/output`` with size caps (nosuid, nodev, noexec), ``/data`` and ``/job``
bind-mounted read-only, no log
driver (stdout and stderr are streamed, capped, and never touch the host's
disk), no Docker socket, and a wall-clock timeout after which it is killed.
gVisor (``runsc``) is used when the engine has it.

A shared engine is normal: other gateways, test runs and tools create and
remove labelled containers and volumes at any moment. Listing uses the
engine's list answers only (their labels), never a per-object inspect that
fails once the object is gone; removing treats "no such object" (404) and
"removal already in progress" (409) as done, and waits briefly for a volume
whose container is still being removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import stat
import threading
import time
from collections.abc import Collection as CollectionOf
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions
from docker.models.containers import Container
from docker.types import LogConfig, Mount, Ulimit
from docker.utils.socket import frames_iter

from sandbox.backends.base import (
    CapturedStream,
    Collection,
    Execution,
    ExitClass,
    Limits,
    RunHandle,
    RunSpec,
)
from sandbox.collect import CollectLimits, collect_archive
from sandbox.errors import (
    BackendError,
    ConfigurationError,
    EngineUnavailable,
    ImageMissing,
    RuntimeUnavailable,
    SpecError,
)
from sandbox.settings import SandboxSettings

log = logging.getLogger(__name__)

LABEL_MANAGED = "dsr.managed"
LABEL_JOB = "dsr.job"
LABEL_ROLE = "dsr.role"
LABEL_SPEC = "dsr.spec"
LABEL_LIMITS = "dsr.limits"
COLLECT_TIMEOUT_SECONDS = 120.0
KILL_GRACE_SECONDS = 15.0
# The collector only sleeps and runs tar.
COLLECTOR_MEMORY = 128 * 1024 * 1024
COLLECTOR_PIDS = 128
# A volume whose container is still being removed (here or by another process)
# is "in use" (409) for a moment: tries, a pause apart, before that is an error.
VOLUME_REMOVE_TRIES = 25
VOLUME_REMOVE_PAUSE_SECONDS = 0.2
_DOCKER_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)


class _CappedBuffer:
    """Keeps the first ``limit`` bytes written and counts the rest."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._parts: list[bytes] = []
        self._kept = 0
        self.total = 0

    def write(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self._limit - self._kept
        if room > 0:
            part = chunk[:room]
            self._parts.append(part)
            self._kept += len(part)

    def captured(self) -> CapturedStream:
        return CapturedStream(data=b"".join(self._parts), total_bytes=self.total)


class _Usage:
    """Peak memory and pids of a running container, polled from the engine's stats."""

    INTERVAL_SECONDS = 0.25

    def __init__(self) -> None:
        self.memory_peak = 0
        self.memory_failcnt = 0
        self.pids_peak = 0
        self.stop = threading.Event()

    def poll(self, api: Any, container_id: str) -> None:
        while not self.stop.is_set():
            try:
                stats = api.stats(container_id, stream=False, one_shot=True)
            except _DOCKER_ERRORS:
                return  # the container is gone
            mem = stats.get("memory_stats") or {}
            peak = int(mem.get("max_usage") or mem.get("usage") or 0)
            self.memory_peak = max(self.memory_peak, peak)
            self.memory_failcnt = max(self.memory_failcnt, int(mem.get("failcnt") or 0))
            pids = int((stats.get("pids_stats") or {}).get("current") or 0)
            self.pids_peak = max(self.pids_peak, pids)
            self.stop.wait(self.INTERVAL_SECONDS)


class _RawStream:
    """A hijacked engine connection (attach, exec) read as frames and closed for sure."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock

    def frames(self) -> Iterator[tuple[int, bytes]]:
        """(stream id, bytes) pairs: 1 is stdout, 2 is stderr."""
        try:
            yield from frames_iter(self._sock, tty=False)  # type: ignore[no-untyped-call]
        except (OSError, *_DOCKER_ERRORS):
            return  # the connection ends when the container stops

    def stdout(self) -> Iterator[bytes]:
        for stream_id, data in self.frames():
            if stream_id == 1 and data:
                yield data

    def close(self) -> None:
        for sock in (self._sock, getattr(self._sock, "_sock", None)):
            if sock is None:
                continue
            with contextlib.suppress(OSError):
                sock.close()


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


def _readable_by_others(path: Path) -> bool:
    mode = path.stat().st_mode
    return bool(mode & stat.S_IROTH) and bool(mode & stat.S_IXOTH)


def job_name(job_id: str) -> str:
    return f"dsr-job-{job_id}"


def collector_name(job_id: str) -> str:
    return f"dsr-collect-{job_id}"


def volume_name(job_id: str) -> str:
    return f"dsr-output-{job_id}"


class DockerBackend:
    """Runs jobs in Docker containers; see the module docstring for the design."""

    name = "docker"

    def __init__(self, settings: SandboxSettings, client: docker.DockerClient | None = None):
        self._settings = settings
        try:
            self._client = client or docker.from_env(timeout=int(settings.docker_timeout_seconds))
            self._client.ping()
            runtimes = self._client.info().get("Runtimes", {})
        except _DOCKER_ERRORS as e:
            raise EngineUnavailable(
                "no Docker Engine answers; start it with images/engine-setup.sh"
            ) from e
        self.runtime = self._choose_runtime(settings.runtime, set(runtimes))
        if self.runtime == "runsc":
            args = (runtimes.get("runsc") or {}).get("runtimeArgs") or []
            if "--oci-seccomp" not in args:
                log.warning(
                    "runsc runs without --oci-seccomp: the engine's seccomp profile is "
                    "not applied inside gVisor; rerun images/engine-setup.sh"
                )
        self._seccomp = self._load_seccomp(settings.seccomp_profile, self.runtime)
        self._executions: dict[str, Execution] = {}
        self._collections: dict[str, Collection] = {}

    @staticmethod
    def _load_seccomp(path: Path | None, runtime: str) -> str | None:
        """The sandbox's seccomp profile as the engine wants it (inline JSON)."""
        if path is None:
            return None
        try:
            profile = json.loads(path.read_text())
            if runtime == "runsc":
                profile = gvisor_profile(profile)
        except FileNotFoundError:
            log.warning(
                "seccomp profile %s is missing (run images/engine-setup.sh); "
                "containers get the engine's default profile, which allows ptrace",
                path,
            )
            return None
        except (OSError, ValueError) as e:
            raise ConfigurationError(f"seccomp profile {path} is unreadable: {e}") from e
        return json.dumps(profile, separators=(",", ":"))

    @staticmethod
    def _choose_runtime(wanted: str, available: set[str]) -> str:
        if wanted == "auto":
            if "runsc" in available:
                return "runsc"
            log.warning("runsc (gVisor) is not registered with the engine; running on runc")
            return "runc"
        if wanted not in available:
            raise RuntimeUnavailable(
                f"runtime {wanted!r} is not registered with the engine "
                f"(it has: {', '.join(sorted(available)) or 'none'})"
            )
        return wanted

    # -- prepare ---------------------------------------------------------------

    def _get(self, name_or_id: str) -> Container | None:
        try:
            return self._client.containers.get(name_or_id)
        except docker.errors.NotFound:
            return None
        except _DOCKER_ERRORS as e:
            raise BackendError("cannot inspect a sandbox container") from e

    def prepare(self, spec: RunSpec) -> RunHandle:
        for name, path in (("job_dir", spec.job_dir), ("data_dir", spec.data_dir)):
            if path is not None and not _readable_by_others(path):
                raise SpecError(f"{name} must be readable by the sandbox uid (mode o+rx)")
        spec_hash = _spec_hash(spec)
        job = self._get(job_name(spec.job_id))
        collector = self._get(collector_name(spec.job_id))
        if (
            job is not None
            and collector is not None
            and job.status == "created"
            and job.labels.get(LABEL_SPEC) == spec_hash
            and spec.job_id not in self._executions
        ):
            return RunHandle(spec.job_id, str(job.id), self.runtime)
        self._remove_all(spec.job_id)
        try:
            self._client.images.get(self._settings.image)
        except docker.errors.ImageNotFound as e:
            raise ImageMissing(
                f"image {self._settings.image} is not built; run `make image`"
            ) from e
        except _DOCKER_ERRORS as e:
            raise BackendError("cannot inspect the runner image") from e
        labels = self._labels(spec, spec_hash)
        try:
            opts = f"size={spec.limits.output_bytes},mode=1777,nosuid,nodev,noexec"
            self._client.volumes.create(
                name=volume_name(spec.job_id),
                driver="local",
                driver_opts={"type": "tmpfs", "device": "tmpfs", "o": opts},
                labels={LABEL_MANAGED: "true", LABEL_JOB: spec.job_id},
            )
            self._client.containers.create(**self._collector_args(spec, labels))
            job = self._client.containers.create(**self._job_args(spec, labels))
        except _DOCKER_ERRORS as e:
            self._remove_all(spec.job_id)
            raise BackendError(f"cannot create the sandbox: {e}") from e
        return RunHandle(spec.job_id, str(job.id), self.runtime)

    @staticmethod
    def _labels(spec: RunSpec, spec_hash: str) -> dict[str, str]:
        return {
            LABEL_MANAGED: "true",
            LABEL_JOB: spec.job_id,
            LABEL_SPEC: spec_hash,
            LABEL_LIMITS: json.dumps(asdict(spec.limits), sort_keys=True),
        }

    @property
    def client(self) -> docker.DockerClient:
        return self._client

    def hardened(self, user: int, memory: int, pids: int, cpus: float) -> dict[str, Any]:
        """The isolation every container of this backend gets (also the HE evaluator's,
        ``gateway.he.sandboxed``)."""
        return {
            "image": self._settings.image,
            "user": f"{user}:{user}",
            "runtime": self.runtime,
            "network_mode": "none",
            # The host's resolver address is none of the sandbox's business.
            "dns": ["127.0.0.1"],
            "read_only": True,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges:true"]
            + ([f"seccomp={self._seccomp}"] if self._seccomp else []),
            "privileged": False,
            "mem_limit": memory,
            "memswap_limit": memory,
            "pids_limit": pids,
            "nano_cpus": int(cpus * 1_000_000_000),
            "log_config": LogConfig(type="none"),
            "hostname": "sandbox",
            "working_dir": "/tmp",
            "detach": True,
        }

    def _job_args(self, spec: RunSpec, labels: dict[str, str]) -> dict[str, Any]:
        lim = spec.limits
        mounts = [
            Mount(target="/job", source=str(spec.job_dir), type="bind", read_only=True),
            Mount(target="/output", source=volume_name(spec.job_id), type="volume"),
        ]
        if spec.data_dir is not None:
            mounts.append(
                Mount(target="/data", source=str(spec.data_dir), type="bind", read_only=True)
            )
        return {
            **self.hardened(self._settings.job_uid, lim.memory_bytes, lim.pids, lim.cpus),
            "name": job_name(spec.job_id),
            "command": list(spec.command),
            "mounts": mounts,
            "tmpfs": {"/tmp": f"rw,nosuid,nodev,noexec,mode=1777,size={lim.tmp_bytes}"},
            "shm_size": min(64 * 1024 * 1024, lim.tmp_bytes),
            "ulimits": [
                Ulimit(name="nofile", soft=lim.nofile, hard=lim.nofile),
                Ulimit(name="fsize", soft=lim.fsize_bytes, hard=lim.fsize_bytes),
                Ulimit(name="core", soft=0, hard=0),
            ],
            "labels": {**labels, LABEL_ROLE: "job"},
        }

    def _collector_args(self, spec: RunSpec, labels: dict[str, str]) -> dict[str, Any]:
        return {
            # Same uid as the job, so it can read what the job wrote.
            **self.hardened(self._settings.job_uid, COLLECTOR_MEMORY, COLLECTOR_PIDS, 0.5),
            "name": collector_name(spec.job_id),
            "command": ["sleep", "infinity"],
            "mounts": [
                Mount(
                    target="/output", source=volume_name(spec.job_id), type="volume", read_only=True
                )
            ],
            "labels": {**labels, LABEL_ROLE: "collector"},
        }

    # -- run -------------------------------------------------------------------

    @staticmethod
    def _limits(container: Container) -> Limits:
        return Limits(**json.loads(container.labels[LABEL_LIMITS]))

    def run(self, handle: RunHandle) -> Execution:
        if handle.job_id in self._executions:
            return self._executions[handle.job_id]
        job = self._get(handle.backend_id)
        collector = self._get(collector_name(handle.job_id))
        if job is None or collector is None or job.status != "created":
            return self._record(handle, _backend_failure("the sandbox is gone or already ran"))
        limits = self._limits(job)
        api = self._client.api
        stdout, stderr, usage = (
            _CappedBuffer(limits.log_bytes),
            _CappedBuffer(limits.log_bytes),
            _Usage(),
        )
        try:
            if collector.status != "running":
                collector.start()  # holds the /output tmpfs from now until cleanup
            stream = _RawStream(
                api.attach_socket(
                    str(job.id), params={"stdout": 1, "stderr": 1, "stream": 1, "logs": 0}
                )
            )
        except _DOCKER_ERRORS as e:
            return self._record(handle, _backend_failure(f"cannot attach to the job: {e}"))
        pump = threading.Thread(target=_pump, args=(stream, stdout, stderr), daemon=True)
        pump.start()
        try:
            started = time.monotonic()
            job.start()
        except _DOCKER_ERRORS as e:
            stream.close()
            return self._record(handle, _backend_failure(f"cannot start the job: {e}"))
        sampler = threading.Thread(target=usage.poll, args=(api, job.id), daemon=True)
        sampler.start()
        timed_out = False
        try:
            job.wait(timeout=limits.wall_seconds)
        except requests.exceptions.RequestException:
            timed_out = True
            self._kill(job)
            try:
                job.wait(timeout=KILL_GRACE_SECONDS)
            except _DOCKER_ERRORS as e:
                log.error("sandbox %s did not stop after kill: %s", handle.job_id, e)
        finally:
            usage.stop.set()
        wall = time.monotonic() - started
        pump.join(timeout=KILL_GRACE_SECONDS)
        stream.close()
        # The sampler stops on its own once told to (or once the container is
        # gone); waiting for its last stats call would only add latency.
        execution = self._outcome(job, limits, timed_out, wall, stdout, stderr, usage)
        return self._record(handle, execution)

    def _outcome(
        self,
        job: Container,
        limits: Limits,
        timed_out: bool,
        wall: float,
        stdout: _CappedBuffer,
        stderr: _CappedBuffer,
        usage: _Usage,
    ) -> Execution:
        try:
            job.reload()
            state = job.attrs["State"]
        except _DOCKER_ERRORS as e:
            return _backend_failure(f"cannot inspect the finished job: {e}")
        exit_code = state.get("ExitCode")
        oom = bool(state.get("OOMKilled"))
        oom_detail = "killed by the memory limit"
        if not oom and exit_code == 137 and not timed_out:
            # A SIGKILL the backend did not send. The engine's OOM event can
            # arrive after the exit (seen under gVisor on a loaded host): look
            # again, and otherwise still report the memory limit, the only
            # other sender of SIGKILL here.
            time.sleep(0.3)
            try:
                job.reload()
                oom = bool(job.attrs["State"].get("OOMKilled"))
            except _DOCKER_ERRORS:
                pass
            if not oom:
                oom = True
                oom_detail = "killed by SIGKILL, not by the backend: the memory limit"
        pids_exhausted = usage.pids_peak >= limits.pids - 2
        # Under gVisor a process storm can end the whole sandbox: exit status 2
        # and not a byte on stderr. (A job that exits 2 silently on purpose is
        # reported the same way; the class is information, not a decision.)
        sandbox_died = self.runtime == "runsc" and exit_code == 2 and stderr.total == 0
        if timed_out:
            exit_class, detail = ExitClass.TIMED_OUT, "killed at the wall-clock limit"
        elif oom:
            exit_class, detail = ExitClass.OOM_KILLED, oom_detail
        elif exit_code == 0:
            exit_class, detail = ExitClass.SUCCEEDED, ""
        elif pids_exhausted or sandbox_died:
            exit_class = ExitClass.RESOURCE_EXHAUSTED
            detail = "the sandbox ran out of a resource (processes) and ended"
        else:
            exit_class, detail = ExitClass.FAILED, f"the job exited with status {exit_code}"
        return Execution(
            exit_class=exit_class,
            exit_code=exit_code,
            oom_killed=oom,
            timed_out=timed_out,
            wall_seconds=wall,
            stdout=stdout.captured(),
            stderr=stderr.captured(),
            memory_peak_bytes=usage.memory_peak or None,
            pids_peak=usage.pids_peak or None,
            detail=detail,
        )

    def _record(self, handle: RunHandle, execution: Execution) -> Execution:
        self._executions[handle.job_id] = execution
        return execution

    def _kill(self, container: Container) -> None:
        try:
            container.kill()
        except docker.errors.APIError:
            pass  # already stopped
        except _DOCKER_ERRORS as e:
            log.error("cannot kill sandbox %s: %s", container.short_id, e)

    # -- collect ---------------------------------------------------------------

    def collect(self, handle: RunHandle, dest: Path) -> Collection:
        if handle.job_id in self._collections:
            return self._collections[handle.job_id]
        collector = self._get(collector_name(handle.job_id))
        if collector is None or collector.status != "running":
            dest.mkdir(parents=True, exist_ok=False)
            collection = Collection(
                (), (), 0, complete=False, detail="the sandbox is gone; no outputs to collect"
            )
            self._collections[handle.job_id] = collection
            return collection
        limits = self._limits(collector)
        api = self._client.api
        try:
            exec_id = api.exec_create(
                collector.id,
                ["tar", "-C", "/output", "--numeric-owner", "-cf", "-", "."],
                stdout=True,
                stderr=True,
                stdin=False,
                tty=False,
            )["Id"]
            stream = _RawStream(api.exec_start(exec_id, socket=True))
        except _DOCKER_ERRORS as e:
            raise BackendError(f"cannot stream /output: {e}") from e
        # A stream that stalls is cut by killing the collector.
        watchdog = threading.Timer(COLLECT_TIMEOUT_SECONDS, self._kill, args=(collector,))
        watchdog.start()
        try:
            collection = collect_archive(
                stream.stdout(),
                dest,
                CollectLimits(limits.output_files, limits.output_file_bytes, limits.output_bytes),
            )
        finally:
            watchdog.cancel()
            stream.close()
        try:
            tar_status = api.exec_inspect(exec_id)
        except _DOCKER_ERRORS:
            tar_status = {}
        if collection.complete and tar_status.get("ExitCode") not in (0, None):
            collection = Collection(
                collection.files,
                collection.refused,
                collection.refused_total,
                complete=False,
                detail="some outputs could not be read",
            )
        self._collections[handle.job_id] = collection
        return collection

    # -- cleanup ---------------------------------------------------------------

    def _remove_container(self, name_or_id: str) -> None:
        try:
            self._client.api.remove_container(name_or_id, force=True, v=True)
        except docker.errors.APIError as e:
            # 404: gone already; 409: its removal is in progress (here or elsewhere).
            if e.status_code not in (404, 409):
                raise BackendError(f"cannot remove a sandbox container: {e}") from e

    def _remove_volume(self, name: str) -> None:
        for attempt in range(VOLUME_REMOVE_TRIES):
            try:
                self._client.api.remove_volume(name, force=True)
                return
            except docker.errors.APIError as e:
                if e.status_code == 404:
                    return  # gone already
                # 409: still in use by a container whose removal is in progress.
                if e.status_code != 409 or attempt == VOLUME_REMOVE_TRIES - 1:
                    raise BackendError(f"cannot remove a sandbox volume: {e}") from e
            time.sleep(VOLUME_REMOVE_PAUSE_SECONDS)

    def _remove_all(self, job_id: str) -> None:
        self._remove_container(job_name(job_id))
        self._remove_container(collector_name(job_id))
        self._remove_volume(volume_name(job_id))
        self._executions.pop(job_id, None)
        self._collections.pop(job_id, None)

    def cleanup(self, handle: RunHandle) -> None:
        self._remove_all(handle.job_id)

    def sandboxes(self) -> list[str]:
        filters = {"label": f"{LABEL_MANAGED}=true"}
        try:
            # The list answers carry the labels. (``containers.list`` would inspect
            # each container, and fail on one removed in between.)
            containers = self._client.api.containers(all=True, filters=filters)
            volumes = self._client.api.volumes(filters=filters).get("Volumes") or []
        except _DOCKER_ERRORS as e:
            raise BackendError("cannot list sandbox containers") from e
        job_ids = {_label(c, LABEL_JOB) for c in containers}
        job_ids |= {_label(v, LABEL_JOB) for v in volumes}
        return sorted(j for j in job_ids if j)

    def reconcile(
        self, keep: CollectionOf[str] = (), only: CollectionOf[str] | None = None
    ) -> list[str]:
        removed = [j for j in self.sandboxes() if j not in keep and (only is None or j in only)]
        for job_id in removed:
            self._remove_all(job_id)
        return removed


def gvisor_profile(profile: dict[str, Any]) -> dict[str, Any]:
    """The profile as gVisor needs it: ``clone3`` allowed instead of refused with ENOSYS.

    The engine's profile answers ``clone3`` with ENOSYS so that glibc falls back
    to ``clone``, whose flags seccomp can filter. gVisor's ``--oci-seccomp``
    ignores per-rule error numbers and answers EPERM, and then glibc cannot
    start a thread at all (so numpy, DuckDB and pandas fail). Letting
    ``clone3`` through to gVisor's own kernel gives the same result safely:
    this gVisor does not implement it and answers ENOSYS itself, and if a later
    one does, a namespace it creates is gVisor's, not the host's. Under runc
    the profile is left as it is: there ``clone3`` would reach the host kernel.
    """
    rules = []
    for rule in profile["syscalls"]:
        if "clone3" in rule["names"] and rule.get("action") != "SCMP_ACT_ALLOW":
            rule = {**rule, "names": [n for n in rule["names"] if n != "clone3"]}
            if not rule["names"]:
                continue
        rules.append(rule)
    rules.append({"names": ["clone3"], "action": "SCMP_ACT_ALLOW", "args": []})
    return {**profile, "syscalls": rules}


def _label(listed: Any, name: str) -> str:
    """A label of a container or volume as the engine's list answer gives it."""
    labels = listed.get("Labels") if isinstance(listed, dict) else None
    value = labels.get(name) if isinstance(labels, dict) else None
    return value if isinstance(value, str) else ""


def _pump(stream: _RawStream, stdout: _CappedBuffer, stderr: _CappedBuffer) -> None:
    for stream_id, data in stream.frames():
        (stderr if stream_id == 2 else stdout).write(data)


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
