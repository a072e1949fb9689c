"""The screen is a lint; the container is the boundary.

An escape attempt written to slip past ``screen_python`` (builtins reached
with ``getattr`` and names built from string pieces, ``socket`` imported by
a computed name) passes the screen -- and is still contained on runc and on
runsc: no network, no writes outside /output and /tmp, no host secret.
"""

from __future__ import annotations

import json

import pytest

from sandbox.precheck.screen import screen_python
from sandbox.run.backends.base import ExitClass
from tests.support.jobs import run_code
from tests.support.screen_escape import ESCAPE

pytestmark = [pytest.mark.docker]

SECRET = "dsr-screen-secret-4b81d2"
OUTSIDE = ("write_etc", "write_job", "write_usr", "write_root", "write_home", "write_var")


def test_the_screen_misses_the_escape():
    report = screen_python(ESCAPE)
    assert report.ok, report.findings  # the lint misses it: that is the point


def test_an_escape_the_screen_misses_is_still_contained(backend, tmp_path, monkeypatch):
    assert screen_python(ESCAPE).ok
    monkeypatch.setenv("DSR_GATEWAY_SECRET", SECRET)  # planted on the host side
    result = run_code(backend, tmp_path, ESCAPE)
    assert result.execution.exit_class == ExitClass.SUCCEEDED, result.execution.stderr.data
    stdout = result.execution.stdout.data.decode()
    r = json.loads([line for line in stdout.splitlines() if line.strip()][-1])

    # The code really ran: where writing is allowed, it wrote.
    assert r["write_output"]["ok"] and r["write_tmp"]["ok"], r
    # ... and everything else failed.
    assert not r["socket"]["ok"], "the job reached the network"
    for name in (*OUTSIDE, "write_rootdir"):
        assert not r[name]["ok"], f"{name}: the job wrote outside /output and /tmp"
    assert SECRET not in stdout
    assert "DSR_" not in r["os_environ"]["value"]
