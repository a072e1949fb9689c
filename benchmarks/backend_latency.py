"""Wall time of a run through the hardened Docker backend, create to removed.

Two jobs on each runtime (runc, runsc):
- ``print(1)``: the fixed cost of a sandbox;
- ``SELECT count(*)`` over a 1,000,000-row Parquet view through the SDK's
  locked-down DuckDB connection.

Writes ``benchmarks/results/backend_latency.json`` and ``.md``.

    python benchmarks/backend_latency.py [--runs 20] [--runtimes runc,runsc]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from sandbox.run.backends.base import ExitClass, Limits, MiB, RunSpec, execute
from sandbox.run.backends.docker import DockerBackend
from sandbox.settings import SandboxSettings

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

JOBS = {
    "print": "print(1)\n",
    "duckdb_count_1m": (
        "from sandbox.sdk import connect\n"
        "print(connect().sql('SELECT count(*) FROM rows').fetchall()[0][0])\n"
    ),
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def make_dirs(work: Path) -> tuple[dict[str, Path], Path]:
    data = work / "data"
    data.mkdir()
    rel = duckdb.sql("SELECT i AS id, i % 97 AS grp, random() AS v FROM range(1000000) t(i)")
    assert rel is not None
    rel.write_parquet(str(data / "rows.parquet"))
    jobs = {}
    for name, code in JOBS.items():
        d = work / name
        d.mkdir()
        (d / "main.py").write_text(code)
        jobs[name] = d
    for p in [work, *work.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return jobs, data


def measure(runtime: str, runs: int, jobs: dict[str, Path], data: Path, work: Path) -> dict:  # type: ignore[type-arg]
    backend = DockerBackend(SandboxSettings(runtime=runtime))  # type: ignore[arg-type]
    out: dict[str, dict[str, float | int]] = {}
    limits = Limits(wall_seconds=120, memory_bytes=1024 * MiB)
    for name, job_dir in jobs.items():
        # One warm-up run (page cache, image layers), not counted.
        times: list[float] = []
        for i in range(runs + 1):
            spec = RunSpec(
                job_id=f"bench-{runtime}-{name}-{i}".replace("_", "-"),
                job_dir=job_dir,
                data_dir=data,
                limits=limits,
            )
            started = time.monotonic()
            result = execute(backend, spec, work / f"out-{runtime}-{name}-{i}")
            elapsed = time.monotonic() - started
            if result.execution.exit_class != ExitClass.SUCCEEDED:
                raise SystemExit(
                    f"{runtime} {name}: {result.execution.detail} "
                    f"{result.execution.stderr.data[-500:]!r}"
                )
            if i:
                times.append(elapsed)
        out[name] = {
            "runs": len(times),
            "median_s": round(statistics.median(times), 3),
            "p95_s": round(percentile(times, 0.95), 3),
            "min_s": round(min(times), 3),
            "max_s": round(max(times), 3),
        }
        print(
            f"{runtime:6} {name:16} median {out[name]['median_s']:.3f}s "
            f"p95 {out[name]['p95_s']:.3f}s over {len(times)} runs",
            file=sys.stderr,
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--runtimes", default="runc,runsc")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dsr-bench-"))
    try:
        jobs, data = make_dirs(work)
        results = {rt: measure(rt, args.runs, jobs, data, work) for rt in args.runtimes.split(",")}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "benchmark": "backend_latency",
        "what": "wall time per job through DockerBackend: create, start, run, collect, remove",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": __import__("os").cpu_count(),
            "python": platform.python_version(),
            "kernel": platform.release(),
        },
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "backend_latency.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Backend latency (create to removed)",
        "",
        f"Measured {report['measured_at']} on {report['machine']['cpus']} cores; "
        f"{args.runs} runs each after one warm-up.",
        "",
        "| runtime | job | median (s) | p95 (s) |",
        "|---|---|---|---|",
    ]
    for rt, per_job in results.items():
        for name, r in per_job.items():
            lines.append(f"| {rt} | {name} | {r['median_s']:.3f} | {r['p95_s']:.3f} |")
    (RESULTS / "backend_latency.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
