"""The `dsr` commands `make run` relies on, run as a user would."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.engine import ROOT

DSR = [sys.executable, "-m", "sandbox.cli"]


def dsr(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DSR, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def test_bad_runtime_is_a_message_not_a_traceback():
    done = dsr("smoke", "--runtime", "bogus")
    assert done.returncode == 1
    assert "error: bad setting" in done.stderr
    assert "Traceback" not in done.stderr


def test_no_engine_is_a_message_not_a_traceback():
    done = dsr("engine", "status", env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert done.returncode == 1
    assert "no Docker Engine answers" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.docker
def test_engine_status_and_smoke(docker_client):
    status = dsr("engine", "status")
    assert status.returncode == 0, status.stderr
    assert "runtimes:" in status.stdout and "sandboxes run on:" in status.stdout
    smoke = dsr("smoke", "--runtime", "runc")
    assert smoke.returncode == 0, smoke.stderr
    assert "succeeded (exit 0)" in smoke.stdout and "counts.csv" in smoke.stdout


@pytest.mark.docker
def test_demo_end_to_end(docker_client, tmp_path):
    done = dsr("demo", "--residents", "500", env={"DSR_DATA_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr + done.stdout
    out = done.stdout
    assert "job on dummy views" in out and "job on real views" in out
    assert "logs of a real-data run are withheld" in out
    assert "grant revoked: 1 view set(s) destroyed" in out
    assert not list((tmp_path / "demo" / "cache" / "views").glob("*/"))
