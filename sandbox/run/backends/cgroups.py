"""What a running container used, read from the kernel's cgroup accounting.

Stage 4 of the data flow (metering: 001 art. 34, 004 art. 28 account costs per
product, and CPU time is the main one). The container's cgroup is found from
the engine, never guessed: the engine's ``State.Pid`` of the job, then that
process's ``/proc/<pid>/cgroup``, resolved against this host's cgroup mounts
(``/proc/self/mountinfo``). So both drivers work (cgroupfs ``/docker/<id>``,
systemd ``/system.slice/docker-<id>.scope``) and both hierarchies:

- cgroup v1: ``cpuacct.usage`` (nanoseconds) and ``memory.max_usage_in_bytes``;
- cgroup v2: ``cpu.stat`` ``usage_usec`` and ``memory.peak``.

Under gVisor (runsc) the cgroup holds the sandbox (the Sentry and the Gofer),
so the CPU counted is what the host spent on the job, the runtime's own work
included: the real cost.

Invariants:
- Only the kernel is believed: nothing the job prints or writes is read.
- The cgroup disappears when the container ends, so :class:`CgroupMeter`
  reads it every ``INTERVAL_SECONDS`` (a cheap file read) and keeps the last
  reading; what the job used after the last read (under ``INTERVAL_SECONDS``
  of CPU) is not counted.
- A cgroup that cannot be found or read gives ``None``, never a guess.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

INTERVAL_SECONDS = 0.05


@dataclass(frozen=True)
class CgroupFiles:
    """The accounting files of one cgroup; ``v2`` tells how to read ``cpu``."""

    cpu: Path | None
    memory_peak: Path | None
    v2: bool

    def cpu_seconds(self) -> float | None:
        """CPU time the cgroup has used so far, or None if it cannot be read (gone)."""
        if self.cpu is None:
            return None
        try:
            text = self.cpu.read_text()
        except OSError:
            return None
        if not self.v2:
            return int(text.strip()) / 1e9 if text.strip().isdigit() else None
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec" and value.strip().isdigit():
                return int(value) / 1e6
        return None

    def memory_peak_bytes(self) -> int | None:
        """The cgroup's peak memory so far, or None if it cannot be read."""
        if self.memory_peak is None:
            return None
        try:
            text = self.memory_peak.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None


def _mounts(mountinfo: str) -> tuple[dict[str, tuple[str, Path]], tuple[str, Path] | None]:
    """The v1 mounts by controller and the v2 mount, each as (mount root, mount point)."""
    v1: dict[str, tuple[str, Path]] = {}
    v2: tuple[str, Path] | None = None
    for line in mountinfo.splitlines():
        head, sep, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if not sep or len(fields) < 5 or len(rest) < 3:
            continue
        root, point = fields[3], Path(fields[4])
        if rest[0] == "cgroup2":
            v2 = (root, point)
        elif rest[0] == "cgroup":
            for option in rest[2].split(","):
                v1[option] = (root, point)
    return v1, v2


def _under(mount: tuple[str, Path], cgroup: str) -> Path | None:
    root, point = mount
    if root != "/" and not (cgroup == root or cgroup.startswith(root.rstrip("/") + "/")):
        return None
    relative = cgroup[len(root) :] if root != "/" else cgroup
    return point / relative.lstrip("/")


def locate(
    pid: int, proc: Path = Path("/proc"), mountinfo: str | None = None
) -> CgroupFiles | None:
    """The accounting files of the cgroup process ``pid`` is in, or None when unknown."""
    if pid <= 0:
        return None
    try:
        membership = (proc / str(pid) / "cgroup").read_text()
        mounts = mountinfo if mountinfo is not None else (proc / "self/mountinfo").read_text()
    except OSError:
        return None
    v1, v2 = _mounts(mounts)
    paths: dict[str, str] = {}
    for line in membership.splitlines():
        _, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    if "cpuacct" in paths and "cpuacct" in v1:
        cpu = _under(v1["cpuacct"], paths["cpuacct"])
        memory = None
        if "memory" in paths and "memory" in v1:
            memory = _under(v1["memory"], paths["memory"])
        return CgroupFiles(
            cpu / "cpuacct.usage" if cpu else None,
            memory / "memory.max_usage_in_bytes" if memory else None,
            v2=False,
        )
    if "" in paths and v2 is not None:
        group = _under(v2, paths[""])
        if group is not None and (group / "cpu.stat").is_file():
            return CgroupFiles(group / "cpu.stat", group / "memory.peak", v2=True)
    return None


class CgroupMeter:
    """Polls a container's cgroup until told to stop; keeps the last CPU and the peak memory."""

    def __init__(self, files: CgroupFiles | None) -> None:
        self._files = files
        self.cpu_seconds: float | None = None
        self.memory_peak: int | None = None
        self.stop = threading.Event()

    def read(self) -> bool:
        """Take one reading; False once the cgroup is gone."""
        if self._files is None:
            return False
        cpu = self._files.cpu_seconds()
        if cpu is None:
            return False
        self.cpu_seconds = max(cpu, self.cpu_seconds or 0.0)
        memory = self._files.memory_peak_bytes()
        if memory is not None:
            self.memory_peak = max(memory, self.memory_peak or 0)
        return True

    def poll(self) -> None:
        """Read every ``INTERVAL_SECONDS`` until ``stop`` is set or the cgroup is gone."""
        while self.read() and not self.stop.wait(INTERVAL_SECONDS):
            pass
