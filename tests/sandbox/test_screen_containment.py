"""The screen is a lint; the container is the boundary.

An escape attempt written to slip past ``screen_python`` (builtins reached
with ``getattr`` and names built from string pieces, ``socket`` imported by
a computed name) passes the screen -- and is still contained on runc and on
runsc: no network, no writes outside /output and /tmp, no host secret.
"""

from __future__ import annotations

import json

import pytest

from sandbox.backends.base import ExitClass
from sandbox.screen import screen_python
from tests.conftest import run_code

pytestmark = [pytest.mark.docker]

SECRET = "dsr-screen-secret-4b81d2"

# No underscore names, no exec/eval/compile, no flagged import or attribute,
# no literal path outside the job's folders: everything dangerous is computed.
ESCAPE = """
import json

results = {}


def attempt(name, fn):
    try:
        results[name] = {"ok": True, "value": repr(fn())[:300]}
    except Exception as e:
        results[name] = {"ok": False, "error": repr(e)[:120], "errno": getattr(e, "errno", None)}


dunder = "_" * 2
scope = vars()[dunder + "buil" + "tins" + dunder]  # a module in a script, a dict elsewhere


def pick(name):
    return scope[name] if isinstance(scope, dict) else getattr(scope, name)


load = pick(dunder + "im" + "port" + dunder)
opener = pick("op" + "en")
net = load("so" + "ck" + "et")
system = load("o" + "s")


def connect():
    conn = getattr(net, "sock" + "et")()
    conn.settimeout(5)
    conn.connect(("192.0.2.1", 80))
    return "connected"


def write(path):
    with opener(path, "w") as f:
        f.write("escaped")
    return path


def environ():
    raw = opener("/" + "proc/1/" + "environ", "rb").read()
    return raw.decode(errors="replace")


attempt("socket", connect)
for where in ("etc", "job", "usr", "root", "home", "var"):
    attempt("write_" + where, lambda where=where: write("/" + where + "/dsr-escape"))
attempt("write_rootdir", lambda: write("/" + "dsr-escape"))
attempt("write_output", lambda: write("/output/allowed.txt"))
attempt("write_tmp", lambda: write("/tmp/allowed.txt"))
attempt("environ1", environ)
attempt("os_environ", lambda: dict(getattr(system, "envi" + "ron")))
print(json.dumps(results))
"""

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
