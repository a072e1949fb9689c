"""The sandbox runtime's settings, read once from ``DSR_*`` environment variables.

Passed into what needs them (dependency injection); nothing reads the
environment behind the caller's back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from sandbox.run.backends.base import GiB, Limits, MiB


class SandboxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DSR_", extra="ignore")

    # Container runtime: "auto" takes runsc (gVisor) when the engine has it and
    # falls back to runc with a logged warning; "runsc" or "runc" insist.
    runtime: Literal["auto", "runsc", "runc"] = "auto"
    image: str = "dsr-runner:latest"
    # The analyst's uid inside the container (never 0).
    job_uid: int = Field(default=1000, gt=0)
    data_dir: Path = Path("var")
    # The engine's default seccomp profile less ptrace, process_vm_* and
    # io_uring, made by images/engine-setup.sh. Without it the engine's own
    # default applies (with a logged warning).
    seccomp_profile: Path | None = Path("/etc/dsr/seccomp.json")
    docker_timeout_seconds: float = 120.0

    memory_bytes: int = 1 * GiB
    cpus: float = 1.0
    pids: int = 256
    wall_seconds: float = 300.0
    nofile: int = 1024
    fsize_bytes: int = 256 * MiB
    tmp_bytes: int = 256 * MiB
    output_bytes: int = 64 * MiB
    output_files: int = 1000
    output_file_bytes: int = 32 * MiB
    log_bytes: int = 1 * MiB

    def limits(self) -> Limits:
        """The default limits of a run, from these settings."""
        return Limits(
            memory_bytes=self.memory_bytes,
            cpus=self.cpus,
            pids=self.pids,
            wall_seconds=self.wall_seconds,
            nofile=self.nofile,
            fsize_bytes=self.fsize_bytes,
            tmp_bytes=self.tmp_bytes,
            output_bytes=self.output_bytes,
            output_files=self.output_files,
            output_file_bytes=self.output_file_bytes,
            log_bytes=self.log_bytes,
        )
