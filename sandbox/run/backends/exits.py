"""How a run of the Docker backend ended: the engine's report made into an ``Execution``.

Only the engine is believed: the exit code and the OOM kill from its state,
the timeout from the backend's own clock, peaks from its stats. The class is
information for the operator, not a decision: a failed job is data.
"""

from __future__ import annotations

import time

from docker.models.containers import Container

from sandbox.run.backends.base import CapturedStream, Execution, ExitClass, Limits
from sandbox.run.backends.streams import DOCKER_ERRORS, CappedBuffer, Usage


def exit_of(
    job: Container,
    runtime: str,
    limits: Limits,
    timed_out: bool,
    wall: float,
    stdout: CappedBuffer,
    stderr: CappedBuffer,
    usage: Usage,
) -> Execution:
    """How the finished job ended, from the engine's report and what the backend saw."""
    try:
        job.reload()
        state = job.attrs["State"]
    except DOCKER_ERRORS as e:
        return backend_failure(f"cannot inspect the finished job: {e}")
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
        except DOCKER_ERRORS:
            pass
        if not oom:
            oom = True
            oom_detail = "killed by SIGKILL, not by the backend: the memory limit"
    pids_exhausted = usage.pids_peak >= limits.pids - 2
    # Under gVisor a process storm can end the whole sandbox: exit status 2
    # and not a byte on stderr. (A job that exits 2 silently on purpose is
    # reported the same way; the class is information, not a decision.)
    sandbox_died = runtime == "runsc" and exit_code == 2 and stderr.total == 0
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


def backend_failure(detail: str) -> Execution:
    """A run the backend could not carry out: no exit code, the reason in ``detail``."""
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
