"""CPU seconds and peak memory of a run come from the kernel's cgroup accounting.

On Docker (runc and runsc) a job that burns about two CPU seconds reports 2 ± 0.3
(the runtime's own start-up included: under gVisor the Sentry's CPU is the real
cost), and a job that sleeps two seconds reports little. The cgroup is found from
the process the engine names, on cgroup v1 and v2 and under both drivers.

The job burns until its own CPU clock says 1.9 s. Under runc that clock is the
kernel's; under gVisor it is the Sentry's, which counts the time its task was
scheduled *as the Sentry saw it*: when the host has no idle core, the host runs
the sandbox less than the Sentry believes, and the kernel's (true) figure is
lower. So under gVisor on an oversubscribed host (less than half a core idle
during the run, from ``/proc/stat``) only the upper bound is asserted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from sandbox.run.backends.base import ExitClass, Limits, execute
from sandbox.run.backends.cgroups import CgroupMeter, locate
from sandbox.run.steps import Plan, Sandboxes
from sandbox.views.build import ViewSet
from tests.support.backend_contract import spec

# About two seconds of the job's own CPU; the runtime's start-up (a tenth of a
# second on runc, up to three on runsc) makes up the rest of the two.
BUSY = "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.9:\n    pass\n"
SLEEP = "import time\ntime.sleep(2)\n"

V1_MOUNTS = """\
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""


def _idle_seconds() -> float:
    """The host's idle CPU time so far, all cores together (``/proc/stat``)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()
    return (int(fields[4]) + int(fields[5])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.docker
def test_a_busy_job_reports_its_cpu_seconds_and_a_sleeping_one_little(
    backend: Any, runtime: str, tmp_path: Path
) -> None:
    idle = _idle_seconds()
    busy = execute(backend, spec(tmp_path / "a", BUSY, "cpu-busy"), tmp_path / "a-out")
    idle_cores = (_idle_seconds() - idle) / busy.wall_seconds
    assert busy.execution.exit_class == ExitClass.SUCCEEDED
    cpu = busy.execution.cpu_seconds
    assert cpu is not None
    if runtime == "runc" or idle_cores >= 0.5:
        assert abs(cpu - 2.0) <= 0.3, (cpu, idle_cores)
    else:
        assert 0.3 <= cpu <= 2.3, (cpu, idle_cores)
    assert busy.execution.memory_peak_bytes and busy.execution.memory_peak_bytes > 1024 * 1024
    asleep = execute(backend, spec(tmp_path / "b", SLEEP, "cpu-sleep"), tmp_path / "b-out")
    assert asleep.execution.exit_class == ExitClass.SUCCEEDED
    assert asleep.execution.cpu_seconds is not None
    assert asleep.execution.cpu_seconds < 0.5


def test_the_fake_backend_reports_the_process_cpu(fake_backend: Any, tmp_path: Path) -> None:
    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3:\n    pass\n"
    run = execute(fake_backend, spec(tmp_path, busy, "cpu-fake"), tmp_path / "out")
    assert run.execution.cpu_seconds is not None
    assert 0.3 <= run.execution.cpu_seconds < 1.5


def test_a_jobs_cpu_is_that_of_all_its_sandboxes(fake_backend: Any, tmp_path: Path) -> None:
    sandboxes = Sandboxes(fake_backend, tmp_path / "work", Limits(wall_seconds=60), "256MB")
    (tmp_path / "views").mkdir()
    views = ViewSet("g-1", "none", tmp_path / "views", (), cache_hit=False)
    plan = Plan("python", {"entry": "main.py"}, "print(sum(range(10**6)))\n")
    first = sandboxes.run("cpu-steps", "dummy", plan, views).execution.cpu_seconds
    second = sandboxes.run("cpu-steps", "job", plan, views).execution.cpu_seconds
    assert first and second
    assert sandboxes.take_cpu_seconds("cpu-steps") == pytest.approx(first + second)
    assert sandboxes.take_cpu_seconds("cpu-steps") is None  # taken once


def _proc(tmp_path: Path, membership: str) -> Path:
    proc = tmp_path / "proc"
    (proc / "4242").mkdir(parents=True)
    (proc / "4242" / "cgroup").write_text(membership)
    return proc


def test_cgroup_v1_cgroupfs_is_found_from_the_process(tmp_path: Path) -> None:
    proc = _proc(
        tmp_path,
        "4:memory:/docker/abc\n2:cpuacct:/docker/abc\n1:cpu:/docker/abc\n0::/docker/abc\n",
    )
    files = locate(4242, proc, V1_MOUNTS)
    assert files is not None and not files.v2
    assert files.cpu == Path("/sys/fs/cgroup/cpuacct/docker/abc/cpuacct.usage")
    assert files.memory_peak == Path("/sys/fs/cgroup/memory/docker/abc/memory.max_usage_in_bytes")


def test_cgroup_v2_systemd_is_read_from_cpu_stat_and_memory_peak(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    group = root / "system.slice" / "docker-abc.scope"
    group.mkdir(parents=True)
    (group / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\n")
    (group / "memory.peak").write_text("7340032\n")
    proc = _proc(tmp_path, "0::/system.slice/docker-abc.scope\n")
    mounts = f"30 23 0:26 / {root} rw,nosuid - cgroup2 cgroup2 rw\n"
    files = locate(4242, proc, mounts)
    assert files is not None and files.v2
    meter = CgroupMeter(files)
    assert meter.read()
    assert meter.cpu_seconds == 2.5 and meter.memory_peak == 7340032


def test_a_vanished_cgroup_keeps_the_last_reading_and_an_unknown_one_gives_none(
    tmp_path: Path,
) -> None:
    root = tmp_path / "cg"
    (root / "cpuacct" / "docker" / "abc").mkdir(parents=True)
    usage = root / "cpuacct" / "docker" / "abc" / "cpuacct.usage"
    usage.write_text("1500000000\n")
    mounts = f"33 31 0:30 / {root}/cpuacct rw - cgroup cgroup rw,cpuacct\n"
    files = locate(4242, _proc(tmp_path, "2:cpuacct:/docker/abc\n"), mounts)
    meter = CgroupMeter(files)
    assert meter.read() and meter.cpu_seconds == 1.5
    usage.unlink()
    assert not meter.read()
    assert meter.cpu_seconds == 1.5
    assert locate(0, tmp_path / "proc") is None  # the engine gave no process
    assert locate(999999, tmp_path / "proc") is None
    assert CgroupMeter(None).cpu_seconds is None
