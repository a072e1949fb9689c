"""The Docker backend: one fresh, hardened container per run.

Each run has three engine objects, named after the job id and labelled so
``reconcile`` finds them after a crash (``hardening``: names, labels and the
options each is created with):

- ``dsr-job-<id>``: the job itself is this container's main process, so the
  engine's seccomp profile and ``no-new-privileges`` apply to it on both
  runtimes (gVisor does not apply them to ``docker exec`` processes), and
  the exit code and OOM kill come from the engine, never from the job;
- ``dsr-output-<id>``: a size-capped tmpfs volume mounted at ``/output``;
- ``dsr-collect-<id>``: an idle container that holds the same volume
  (read-only) so its tmpfs outlives the job; ``collect`` runs ``tar`` in it
  and parses the stream as hostile input. Job code never runs there.

``prepare`` creates them; ``run`` attaches to the job, starts it, streams its
stdout and stderr into capped buffers and polls its resource use
(``streams``: the engine's stats; ``cgroups``: the kernel's CPU and memory
accounting), kills it at the wall-clock limit and classifies the exit;
``collect`` reads ``/output`` through the collector; ``cleanup`` and
``reconcile`` remove them.

A shared engine is normal: other gateways, test runs and tools create and
remove labelled containers and volumes at any moment. Listing uses the
engine's list answers only (their labels), never a per-object inspect that
fails once the object is gone; removing treats "no such object" (404) and
"removal already in progress" (409) as done, and waits briefly for a volume
whose container is still being removed.
"""

from __future__ import annotations

import logging
import stat
import threading
import time
from collections.abc import Collection as CollectionOf
from dataclasses import replace
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions
from docker.models.containers import Container

from sandbox.errors import BackendError, EngineUnavailable, ImageMissing, SpecError
from sandbox.run.backends.base import Collection, Execution, RunHandle, RunSpec
from sandbox.run.backends.cgroups import CgroupFiles, CgroupMeter, locate
from sandbox.run.backends.exits import backend_failure, exit_of
from sandbox.run.backends.hardening import (
    LABEL_JOB,
    LABEL_MANAGED,
    LABEL_SPEC,
    Hardening,
    choose_runtime,
    collector_name,
    job_name,
    labelled_limits,
    load_seccomp,
    run_labels,
    spec_hash,
    volume_name,
)
from sandbox.run.backends.streams import DOCKER_ERRORS, CappedBuffer, RawStream, Usage, pump
from sandbox.run.collect import CollectLimits, collect_archive
from sandbox.settings import SandboxSettings

log = logging.getLogger(__name__)

COLLECT_TIMEOUT_SECONDS = 120.0
KILL_GRACE_SECONDS = 15.0
# A volume whose container is still being removed (here or by another process)
# is "in use" (409) for a moment: tries, a pause apart, before that is an error.
VOLUME_REMOVE_TRIES = 25
VOLUME_REMOVE_PAUSE_SECONDS = 0.2


def _readable_by_others(path: Path) -> bool:
    mode = path.stat().st_mode
    return bool(mode & stat.S_IROTH) and bool(mode & stat.S_IXOTH)


class DockerBackend:
    """Runs jobs in Docker containers; see the module docstring for the design."""

    name = "docker"

    def __init__(self, settings: SandboxSettings, client: docker.DockerClient | None = None):
        self._settings = settings
        try:
            self._client = client or docker.from_env(timeout=int(settings.docker_timeout_seconds))
            self._client.ping()
            runtimes = self._client.info().get("Runtimes", {})
        except DOCKER_ERRORS as e:
            raise EngineUnavailable(
                "no Docker Engine answers; start it with images/engine-setup.sh"
            ) from e
        self.runtime = choose_runtime(settings.runtime, set(runtimes))
        if self.runtime == "runsc":
            args = (runtimes.get("runsc") or {}).get("runtimeArgs") or []
            if "--oci-seccomp" not in args:
                log.warning(
                    "runsc runs without --oci-seccomp: the engine's seccomp profile is "
                    "not applied inside gVisor; rerun images/engine-setup.sh"
                )
        seccomp = load_seccomp(settings.seccomp_profile, self.runtime)
        self._hardening = Hardening(settings.image, self.runtime, seccomp, settings.job_uid)
        self._executions: dict[str, Execution] = {}
        self._collections: dict[str, Collection] = {}

    # -- prepare ---------------------------------------------------------------

    def _get(self, name_or_id: str) -> Container | None:
        try:
            return self._client.containers.get(name_or_id)
        except docker.errors.NotFound:
            return None
        except DOCKER_ERRORS as e:
            raise BackendError("cannot inspect a sandbox container") from e

    def prepare(self, spec: RunSpec) -> RunHandle:
        for name, path in (("job_dir", spec.job_dir), ("data_dir", spec.data_dir)):
            if path is not None and not _readable_by_others(path):
                raise SpecError(f"{name} must be readable by the sandbox uid (mode o+rx)")
        digest = spec_hash(spec)
        job = self._get(job_name(spec.job_id))
        collector = self._get(collector_name(spec.job_id))
        if (
            job is not None
            and collector is not None
            and job.status == "created"
            and job.labels.get(LABEL_SPEC) == digest
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
        except DOCKER_ERRORS as e:
            raise BackendError("cannot inspect the runner image") from e
        labels = run_labels(spec, digest)
        try:
            self._client.volumes.create(**self._hardening.output_volume(spec))
            self._client.containers.create(**self._hardening.collector(spec, labels))
            job = self._client.containers.create(**self._hardening.job(spec, labels))
        except DOCKER_ERRORS as e:
            self._remove_all(spec.job_id)
            raise BackendError(f"cannot create the sandbox: {e}") from e
        return RunHandle(spec.job_id, str(job.id), self.runtime)

    @property
    def client(self) -> docker.DockerClient:
        return self._client

    def hardened(self, user: int, memory: int, pids: int, cpus: float) -> dict[str, Any]:
        """The isolation every container of this backend gets (also the HE evaluator's,
        ``gateway.he.sandboxed``)."""
        return self._hardening.options(user, memory, pids, cpus)

    # -- run -------------------------------------------------------------------

    def run(self, handle: RunHandle) -> Execution:
        if handle.job_id in self._executions:
            return self._executions[handle.job_id]
        job = self._get(handle.backend_id)
        collector = self._get(collector_name(handle.job_id))
        if job is None or collector is None or job.status != "created":
            return self._record(handle, backend_failure("the sandbox is gone or already ran"))
        limits = labelled_limits(job.labels)
        api = self._client.api
        stdout, stderr, usage = (
            CappedBuffer(limits.log_bytes),
            CappedBuffer(limits.log_bytes),
            Usage(),
        )
        try:
            if collector.status != "running":
                collector.start()  # holds the /output tmpfs from now until cleanup
            stream = RawStream(
                api.attach_socket(
                    str(job.id), params={"stdout": 1, "stderr": 1, "stream": 1, "logs": 0}
                )
            )
        except DOCKER_ERRORS as e:
            return self._record(handle, backend_failure(f"cannot attach to the job: {e}"))
        pumping = threading.Thread(target=pump, args=(stream, stdout, stderr), daemon=True)
        pumping.start()
        try:
            started = time.monotonic()
            job.start()
        except DOCKER_ERRORS as e:
            stream.close()
            return self._record(handle, backend_failure(f"cannot start the job: {e}"))
        sampler = threading.Thread(target=usage.poll, args=(api, job.id), daemon=True)
        sampler.start()
        meter = CgroupMeter(self._cgroup(job))
        threading.Thread(target=meter.poll, daemon=True).start()
        timed_out = False
        try:
            job.wait(timeout=limits.wall_seconds)
        except requests.exceptions.RequestException:
            timed_out = True
            self._kill(job)
            try:
                job.wait(timeout=KILL_GRACE_SECONDS)
            except DOCKER_ERRORS as e:
                log.error("sandbox %s did not stop after kill: %s", handle.job_id, e)
        finally:
            usage.stop.set()
            meter.read()  # the cgroup may outlive its process for a moment
            meter.stop.set()
        wall = time.monotonic() - started
        pumping.join(timeout=KILL_GRACE_SECONDS)
        stream.close()
        # The sampler stops on its own once told to (or once the container is
        # gone); waiting for its last stats call would only add latency.
        execution = exit_of(job, self.runtime, limits, timed_out, wall, stdout, stderr, usage)
        peak = max(execution.memory_peak_bytes or 0, meter.memory_peak or 0) or None
        execution = replace(execution, cpu_seconds=meter.cpu_seconds, memory_peak_bytes=peak)
        return self._record(handle, execution)

    def _cgroup(self, job: Container) -> CgroupFiles | None:
        """The started job's cgroup, found from the engine's process id (None if unknown)."""
        try:
            job.reload()
            pid = int(job.attrs["State"].get("Pid") or 0)
        except DOCKER_ERRORS:
            return None
        return locate(pid)

    def _record(self, handle: RunHandle, execution: Execution) -> Execution:
        self._executions[handle.job_id] = execution
        return execution

    def _kill(self, container: Container) -> None:
        try:
            container.kill()
        except docker.errors.APIError:
            pass  # already stopped
        except DOCKER_ERRORS as e:
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
        limits = labelled_limits(collector.labels)
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
            stream = RawStream(api.exec_start(exec_id, socket=True))
        except DOCKER_ERRORS as e:
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
        except DOCKER_ERRORS:
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
        except DOCKER_ERRORS as e:
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


def _label(listed: Any, name: str) -> str:
    """A label of a container or volume as the engine's list answer gives it."""
    labels = listed.get("Labels") if isinstance(listed, dict) else None
    value = labels.get(name) if isinstance(labels, dict) else None
    return value if isinstance(value, str) else ""
