"""The process of a fake sandbox: the container's paths, mapped into a host directory.

``python -P -m tests.support.fakeproc ROOT LIMITS -m MODULE [ARGS...]`` runs MODULE
as ``python3 -m MODULE`` runs in the runner image (``sandbox.container.runner``, which
hands SQL and model jobs to ``sandbox.container.sqlrun`` and
``sandbox.container.modelfit``), after

- setting the limits the host can set on one process (``LIMITS`` is JSON:
  ``fsize_bytes``, ``nofile``; core dumps off), as the container's ulimits do;
- mapping the container's paths ``/job``, ``/data``, ``/output`` and ``/tmp`` to
  ``ROOT/job``, ``ROOT/data``, ``ROOT/output`` and ``ROOT/tmp``: the path arguments
  of ``open``, ``io.open_code`` and the ``os`` functions that take paths (and so
  of ``pathlib``, ``shutil`` and ``os.path``) are rewritten, for job code that
  names ``/output/x`` itself; and the in-container modules' path constants and
  path defaults (``sandbox.container.sdk.DATA_DIR``, ``run_sql``'s
  ``data_dir=Path("/data")``) are replaced, for DuckDB and pyarrow, which open
  files in C and never see the rewriting.

A path the job hands to C code itself (``df.to_parquet("/output/x.parquet")``)
is not mapped: such a job writes through the SDK. This confines nothing; the
job runs with the test's own privileges (``tests/support/fakebackend.py``).
"""

from __future__ import annotations

import builtins
import functools
import io
import json
import os
import resource
import runpy
import sys
from collections.abc import Callable
from pathlib import Path, PurePath
from types import FunctionType, ModuleType
from typing import Any

MOUNTS = ("/job", "/data", "/output", "/tmp")
# os functions whose first argument is a path; those of two paths map both.
ONE_PATH = (
    "access", "chdir", "chmod", "chown", "lchown", "listdir", "lstat", "mkdir", "mkfifo",
    "mknod", "open", "readlink", "remove", "rmdir", "scandir", "stat", "statvfs",
    "truncate", "unlink", "utime",
)  # fmt: skip
TWO_PATHS = ("link", "rename", "replace")
# The in-container modules whose path constants and defaults name a mount. (The
# runner is not imported here: ``-m`` runs it afresh, and it opens /job only in Python.)
IN_CONTAINER = (
    "sandbox.container.sqlrun",
    "sandbox.container.modelfit",
    "sandbox.container.sdk",
    "sandbox.container.sdk.publish",
)


def mapper(root: Path) -> Callable[[Any], Any]:
    """A function giving the host path of a container path; anything else unchanged."""
    table = {mount: str(root / mount.lstrip("/")) for mount in MOUNTS}
    # Host paths already (the sandbox directory, where /job and /data lead): these
    # often lie under the host's /tmp and must not be taken for the sandbox's.
    # So are this interpreter's own files (its prefix and import path), which lie
    # under /tmp too when the project does (a clone in /tmp/...).
    hosts = {
        str(root),
        os.path.realpath(root),
        *(os.path.realpath(root / m.lstrip("/")) for m in MOUNTS),
        *(os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, *sys.path) if p),
    }
    hosts.discard("/")

    def host(path: Any) -> Any:
        if not isinstance(path, str | bytes | os.PathLike):
            return path  # a file descriptor, None
        text = os.fsdecode(path)
        if any(text == h or text.startswith(h + "/") for h in hosts):
            return path
        for mount, real in table.items():
            if text == mount or text.startswith(mount + "/"):
                mapped = real + text[len(mount) :]
                return os.fsencode(mapped) if isinstance(path, bytes) else mapped
        return path

    return host


def _first(fn: Callable[..., Any], host: Callable[[Any], Any], count: int) -> Callable[..., Any]:
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        args = tuple(host(a) if i < count else a for i, a in enumerate(args))
        for key in ("path", "src", "dst", "file"):
            if key in kwargs:
                kwargs[key] = host(kwargs[key])
        return fn(*args, **kwargs)

    return call


def _symlink(fn: Callable[..., Any], host: Callable[[Any], Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def call(src: Any, dst: Any, *args: Any, **kwargs: Any) -> Any:
        return fn(src, host(dst), *args, **kwargs)  # the link's text is the job's own

    return call


def map_paths(root: Path) -> None:
    """Rewrite container paths to ``root`` in this process (see the module docstring)."""
    host = mapper(root)
    for name in ONE_PATH:
        setattr(os, name, _first(getattr(os, name), host, 1))
    for name in TWO_PATHS:
        setattr(os, name, _first(getattr(os, name), host, 2))
    os.symlink = _symlink(os.symlink, host)
    opener = _first(io.open, host, 1)
    builtins.open = io.open = opener
    io.open_code = _first(io.open_code, host, 1)
    for module_name in IN_CONTAINER:
        __import__(module_name)
        _rebind(sys.modules[module_name], host)


def _rebind(module: ModuleType, host: Callable[[Any], Any]) -> None:
    def moved(value: object) -> object:
        if isinstance(value, PurePath) and host(value) is not value:
            return Path(host(value))
        return value

    for name, value in list(vars(module).items()):
        if isinstance(value, PurePath):
            setattr(module, name, moved(value))
        elif (
            isinstance(value, FunctionType)
            and value.__module__ == module.__name__
            and value.__defaults__
        ):
            value.__defaults__ = tuple(moved(d) for d in value.__defaults__)


def set_limits(limits: dict[str, int]) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    fsize = limits["fsize_bytes"]
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    nofile = min(limits["nofile"], hard) if hard != resource.RLIM_INFINITY else limits["nofile"]
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))


def main(argv: list[str]) -> None:
    root, limits, flag, module, *args = argv
    if flag != "-m":
        raise SystemExit("usage: fakeproc ROOT LIMITS -m MODULE [ARGS...]")
    set_limits(json.loads(limits))
    map_paths(Path(root))
    sys.path.append(str(Path(root) / "job"))  # job-local imports (the runner adds /job)
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
