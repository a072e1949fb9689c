"""The Docker backend's engine objects: their names and labels, and the hardened options.

Hardening of the job container: no network (``network_mode=none``),
read-only root, ``cap_drop=ALL``, ``no-new-privileges``, the engine's seccomp
profile less ptrace, process_vm_* and io_uring, a non-root uid,
memory with swap equal to memory, pids, CPU quota, nofile/fsize/core
ulimits, a loopback-only resolver, tmpfs ``/tmp`` and tmpfs-volume
``/output`` with size caps (nosuid, nodev, noexec), ``/data`` and ``/job``
bind-mounted read-only, no log driver (stdout and stderr are streamed,
capped, and never touch the host's disk), no Docker socket. The collector
gets the same isolation with its own small limits. gVisor (``runsc``) is
used when the engine has it, with the seccomp profile it can enforce
(``gvisor_profile``).

Labels carry what a later process needs to find and judge a run: that the
backend made it, its job id, its role, the hash of its spec and its limits.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from docker.types import LogConfig, Mount, Ulimit

from sandbox.errors import ConfigurationError, RuntimeUnavailable
from sandbox.run.backends.base import Limits, RunSpec

log = logging.getLogger(__name__)

LABEL_MANAGED = "dsr.managed"
LABEL_JOB = "dsr.job"
LABEL_ROLE = "dsr.role"
LABEL_SPEC = "dsr.spec"
LABEL_LIMITS = "dsr.limits"
# The collector only sleeps and runs tar.
COLLECTOR_MEMORY = 128 * 1024 * 1024
COLLECTOR_PIDS = 128


def job_name(job_id: str) -> str:
    return f"dsr-job-{job_id}"


def collector_name(job_id: str) -> str:
    return f"dsr-collect-{job_id}"


def volume_name(job_id: str) -> str:
    return f"dsr-output-{job_id}"


def spec_hash(spec: RunSpec) -> str:
    """What a prepared run was made from: a run prepared again from the same spec is reused."""
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


def run_labels(spec: RunSpec, spec_hash: str) -> dict[str, str]:
    """The labels of a run's containers (each adds its ``LABEL_ROLE``)."""
    return {
        LABEL_MANAGED: "true",
        LABEL_JOB: spec.job_id,
        LABEL_SPEC: spec_hash,
        LABEL_LIMITS: json.dumps(asdict(spec.limits), sort_keys=True),
    }


def labelled_limits(labels: dict[str, str]) -> Limits:
    """The limits a run's container was created with (``run_labels``)."""
    return Limits(**json.loads(labels[LABEL_LIMITS]))


def choose_runtime(wanted: str, available: set[str]) -> str:
    """The OCI runtime to use: ``wanted``, or for ``auto`` runsc when the engine has it."""
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


def load_seccomp(path: Path | None, runtime: str) -> str | None:
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


@dataclass(frozen=True)
class Hardening:
    """What every container of one backend is created with.

    ``seccomp`` is the profile as inline JSON (``load_seccomp``), None for the
    engine's default; ``uid`` is the job's (the collector's too, so it can read
    what the job wrote).
    """

    image: str
    runtime: str
    seccomp: str | None
    uid: int

    def options(self, user: int, memory: int, pids: int, cpus: float) -> dict[str, Any]:
        """The isolation every container gets (``DockerBackend.hardened``)."""
        return {
            "image": self.image,
            "user": f"{user}:{user}",
            "runtime": self.runtime,
            "network_mode": "none",
            # The host's resolver address is none of the sandbox's business.
            "dns": ["127.0.0.1"],
            "read_only": True,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges:true"]
            + ([f"seccomp={self.seccomp}"] if self.seccomp else []),
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

    def output_volume(self, spec: RunSpec) -> dict[str, Any]:
        """The ``/output`` volume: a size-capped tmpfs, nosuid, nodev, noexec."""
        opts = f"size={spec.limits.output_bytes},mode=1777,nosuid,nodev,noexec"
        return {
            "name": volume_name(spec.job_id),
            "driver": "local",
            "driver_opts": {"type": "tmpfs", "device": "tmpfs", "o": opts},
            "labels": {LABEL_MANAGED: "true", LABEL_JOB: spec.job_id},
        }

    def job(self, spec: RunSpec, labels: dict[str, str]) -> dict[str, Any]:
        """The job container: the job is its main process."""
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
            **self.options(self.uid, lim.memory_bytes, lim.pids, lim.cpus),
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

    def collector(self, spec: RunSpec, labels: dict[str, str]) -> dict[str, Any]:
        """The collector: idle, holding ``/output`` read-only so its tmpfs outlives the job."""
        return {
            # Same uid as the job, so it can read what the job wrote.
            **self.options(self.uid, COLLECTOR_MEMORY, COLLECTOR_PIDS, 0.5),
            "name": collector_name(spec.job_id),
            "command": ["sleep", "infinity"],
            "mounts": [
                Mount(
                    target="/output", source=volume_name(spec.job_id), type="volume", read_only=True
                )
            ],
            "labels": {**labels, LABEL_ROLE: "collector"},
        }
