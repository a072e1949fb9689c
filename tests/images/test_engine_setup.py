"""images/engine-setup.sh: idempotent, and it leaves the engine as the sandbox needs it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.engine import ROOT

pytestmark = [pytest.mark.docker]


@pytest.mark.skipif(os.geteuid() != 0, reason="the setup script manages the engine as root")
def test_running_twice_changes_nothing(docker_client):
    daemon_json = Path("/etc/docker/daemon.json")
    before = daemon_json.read_bytes()
    for _ in range(2):
        done = subprocess.run(
            ["bash", str(ROOT / "images" / "engine-setup.sh")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "answers; runtimes:" in done.stderr
        assert "runsc" in done.stderr
    assert daemon_json.read_bytes() == before


def test_seccomp_profile_is_the_engine_default_less_ptrace(docker_client):
    profile = json.loads(Path("/etc/dsr/seccomp.json").read_text())
    allowed = {
        n for r in profile["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" for n in r["names"]
    }
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"  # an allowlist, as the engine's
    assert not allowed & {
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
    }
    assert {"read", "write", "openat", "clone", "mmap", "futex"} <= allowed


def test_runsc_is_registered_with_no_network_and_seccomp(docker_client):
    runsc = docker_client.info()["Runtimes"]["runsc"]
    assert runsc.get("runtimeArgs") == ["--network=none", "--oci-seccomp"]
    conf = json.loads(Path("/etc/docker/daemon.json").read_text())
    assert conf["runtimes"]["runsc"]["runtimeArgs"] == ["--network=none", "--oci-seccomp"]


def test_engine_has_no_container_networks_but_the_builtin_ones(docker_client):
    # --bridge=none: no docker0 bridge, no network on a private range.
    names = sorted(n.name for n in docker_client.networks.list())
    assert "bridge" not in names
    assert set(names) <= {"host", "none"}
