"""Container entrypoint: run one job inside the sandbox.

Stage 4 of the data flow, the in-container side. ``python3 -m sandbox.container.runner``
is the job container's main process, running as the analyst's uid. It reads
``/job/job.json`` (optional; kind and entry file), runs the submitted code and
exits with its status (``"kind": "sql"`` and ``"kind": "model"`` run trusted
code of ours instead: ``sandbox/container/sqlrun.py``, ``sandbox/container/modelfit.py``). With
``"guard": "restricted"`` in ``job.json`` a Python job runs under
RestrictedPython's guards (``sandbox/container/guard.py``): a second, friendly layer of
lint, never the boundary.

Invariants:
- Everything here runs with the analyst's privileges and is therefore *not*
  trusted by the host: the backend believes only what the engine reports
  (exit code, OOM, wall time) and what it collects from ``/output`` itself.
- The exit status is the job's: 0 success, the code's own ``SystemExit``
  status, 1 for an uncaught exception (traceback on stderr) or a guard
  finding, 65 for a job description the runner cannot read (an unknown guard
  included).
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import traceback
from pathlib import Path

JOB_DIR = Path("/job")
EXIT_BAD_JOB = 65
GUARDS = ("restricted",)  # values of job.json's "guard"; absent or null: no guard


def _job_description(job_dir: Path) -> dict[str, object]:
    path = job_dir / "job.json"
    if not path.exists():
        return {"kind": "python", "entry": "main.py"}
    loaded = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(loaded, dict):
        raise ValueError("job.json must hold an object")
    return loaded


def _run_python(job_dir: Path, entry: str, *, restricted: bool = False) -> int:
    script = (job_dir / entry).resolve()
    if script.parent != job_dir.resolve() or not script.is_file():
        print(f"runner: entry file {entry!r} is not a file in /job", file=sys.stderr)
        return EXIT_BAD_JOB
    if restricted:
        # Imported only here: an unguarded job does not need RestrictedPython.
        from sandbox.container.guard import run_restricted

        return run_restricted(script, [str(script)])
    sys.argv = [str(script)]
    sys.path.insert(0, str(job_dir))
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as e:
        if e.code is None:
            return 0
        if isinstance(e.code, int):
            return e.code
        print(e.code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


def main(job_dir: Path = JOB_DIR) -> int:
    os.umask(0o022)
    # Line-buffered, not unbuffered: gVisor may accept part of a large write to
    # a pipe, and only the buffered writer retries the rest (an unbuffered
    # stream silently drops it).
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True)
    try:
        job = _job_description(job_dir)
    except (OSError, ValueError) as e:
        print(f"runner: cannot read job.json: {e}", file=sys.stderr)
        return EXIT_BAD_JOB
    kind = job.get("kind", "python")
    if kind == "sql":
        # A checked SQL product: trusted code of ours runs it (sandbox/container/sqlrun.py).
        from sandbox.container.sqlrun import run_sql

        return run_sql(job_dir, job)
    if kind == "model":
        # A model specification: trusted code of ours fits it (sandbox/container/modelfit.py).
        from sandbox.container.modelfit import run_model

        return run_model(job_dir, job)
    entry = job.get("entry", "main.py")
    if kind != "python" or not isinstance(entry, str):
        print(f"runner: unsupported job kind {kind!r}", file=sys.stderr)
        return EXIT_BAD_JOB
    guard = job.get("guard")
    if guard is not None and guard not in GUARDS:
        print(f"runner: unknown guard {guard!r} (known: {', '.join(GUARDS)})", file=sys.stderr)
        return EXIT_BAD_JOB
    return _run_python(job_dir, entry, restricted=guard == "restricted")


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)
