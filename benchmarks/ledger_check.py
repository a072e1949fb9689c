"""Differencing ledger: time to check and record an output against many releases.

Seeds one dataset of 1,000,000 entities (16-hex-digit pseudonyms) with 10,000
prior released cells, recorded as 100 group-by outputs of 100 cells: 99% of
the cells cover 10-1,000 entities, 1% cover 1,000-500,000 (both log-uniform),
each a random subset of the entities. Then, for 20 new outputs of 100 cells
drawn the same way (5 of them one entity short of a prior cell, so findings
occur), times ``check`` (k = 10) and ``record``:

- cold: the first ``check`` on a freshly opened ledger (loads the entity index
  and the compared bitmaps from SQLite);
- warm: median and p95 of ``check`` and of ``record`` over the 20 outputs.

Writes ``benchmarks/results/ledger_check.json`` and ``.md``.

    python benchmarks/ledger_check.py [--entities 1000000] [--releases 10000] [--reps 20]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from sandbox.judge.ledger import Cell, Ledger

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DATASET = "residents"
K = 10
CELLS_PER_OUTPUT = 100
NEAR_DUPLICATES = 5  # cells per new output that are one entity short of a prior cell
QUERY = "SELECT district, age_band, count(*) AS n FROM residents GROUP BY district, age_band"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


class Population:
    """Entity keys and a generator of group-by-like cells over them."""

    def __init__(self, entities: int, seed: int) -> None:
        self.keys = [hashlib.blake2b(b"%d" % n, digest_size=8).hexdigest() for n in range(entities)]
        self.rng = np.random.default_rng(seed)
        self.py = random.Random(seed)

    def size(self) -> int:
        if self.py.random() < 0.99:
            return round(10 ** self.py.uniform(1, 3))  # 10 .. 1,000
        return round(10 ** self.py.uniform(3, np.log10(500_000)))  # 1,000 .. 500,000

    def entities(self, size: int) -> frozenset[str]:
        n = len(self.keys)
        size = min(size, n // 2)
        if size <= 5_000:
            picked = self.py.sample(range(n), size)
        else:
            picked = self.rng.choice(n, size=size, replace=False).tolist()
        keys = self.keys
        return frozenset(keys[i] for i in picked)

    def output(self, job: str) -> list[Cell]:
        return [
            Cell(DATASET, self.entities(self.size()), f"{job}.csv row {row} column n")
            for row in range(1, CELLS_PER_OUTPUT + 1)
        ]


def release(ledger: Ledger, cells: list[Cell], job: str) -> list[int]:
    return ledger.record(cells, job_id=job, grant_id="G-" + job, operator="op-" + job, query=QUERY)


def file_bytes(path: Path) -> int:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--releases", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=20261122)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dsr-ledger-bench-"))
    path = work / "ledger.sqlite"
    try:
        population = Population(args.entities, args.seed)
        started = time.monotonic()
        prior: list[Cell] = []
        with Ledger(path) as ledger:
            for n in range(args.releases // CELLS_PER_OUTPUT):
                cells = population.output(f"seed{n}")
                release(ledger, cells, f"seed{n}")
                prior.extend(c for c in cells if len(c.entities) <= 1_000)
        seed_s = time.monotonic() - started
        seeded_bytes = file_bytes(path)
        print(f"seeded {args.releases} cells in {seed_s:.1f}s", file=sys.stderr)

        outputs = []
        for rep in range(args.reps):
            cells = population.output(f"new{rep}")
            for i, old in enumerate(population.py.sample(prior, NEAR_DUPLICATES)):
                entities = old.entities - {min(old.entities)}
                cells[i] = Cell(DATASET, entities, f"new{rep}.csv row {i + 1} column n")
            outputs.append(cells)

        check_s: list[float] = []
        record_s: list[float] = []
        findings: list[int] = []
        comparisons: list[int] = []
        with Ledger(path) as ledger:
            started = time.monotonic()
            cold_findings = ledger.check(outputs[0], K)
            cold_s = time.monotonic() - started
            for rep, cells in enumerate(outputs):
                before = ledger.comparisons
                started = time.monotonic()
                found = ledger.check(cells, K)
                check_s.append(time.monotonic() - started)
                comparisons.append(ledger.comparisons - before)
                findings.append(len(found))
                started = time.monotonic()
                release(ledger, cells, f"new{rep}")
                record_s.append(time.monotonic() - started)
            total = ledger.released(DATASET)
        final_bytes = file_bytes(path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sizes = [len(c.entities) for cells in outputs for c in cells]
    setup: dict[str, int | float] = {
        "entities": args.entities,
        "prior_releases": args.releases,
        "seed_seconds": round(seed_s, 1),
        "k": K,
        "cells_per_output": CELLS_PER_OUTPUT,
        "new_outputs": args.reps,
        "new_cell_entities_median": int(statistics.median(sizes)),
        "new_cell_entities_max": max(sizes),
        "near_duplicates_per_output": NEAR_DUPLICATES,
    }
    results: dict[str, int | float] = {
        "check_cold_s": round(cold_s, 3),
        "check_cold_findings": len(cold_findings),
        "check_median_s": round(statistics.median(check_s), 4),
        "check_p95_s": round(percentile(check_s, 0.95), 4),
        "comparisons_per_check_median": int(statistics.median(comparisons)),
        "findings_per_check_median": int(statistics.median(findings)),
        "record_median_s": round(statistics.median(record_s), 4),
        "record_p95_s": round(percentile(record_s, 0.95), 4),
        "sqlite_bytes_after_seed": seeded_bytes,
        "sqlite_bytes_final": final_bytes,
        "released_cells_final": total,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    measured_at = datetime.now(UTC).isoformat(timespec="seconds")
    report = {
        "benchmark": "ledger_check",
        "what": "differencing ledger: check and record a 100-cell output against prior releases",
        "measured_at": measured_at,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "kernel": platform.release(),
            "sqlite": sqlite3.sqlite_version,
        },
        "setup": setup,
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ledger_check.json").write_text(json.dumps(report, indent=2) + "\n")
    r, s = results, setup
    lines = [
        "# Differencing ledger: check and record",
        "",
        f"Measured {measured_at} on {os.cpu_count()} cores, "
        f"SQLite {sqlite3.sqlite_version}. One dataset of {s['entities']:,} entities with "
        f"{s['prior_releases']:,} prior released cells (99% of 10-1,000 entities, 1% of "
        f"1,000-500,000), seeded in {s['seed_seconds']} s. Each new output has "
        f"{CELLS_PER_OUTPUT} cells (median {s['new_cell_entities_median']:,} entities, "
        f"largest {s['new_cell_entities_max']:,}), {NEAR_DUPLICATES} of them one entity "
        f"short of a prior cell; k = {K}; {s['new_outputs']} outputs, each checked and then "
        "recorded.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| check, cold (fresh ledger: loads entity index, bitmaps) | {r['check_cold_s']:.3f} s |",
        f"| check, median | {r['check_median_s']:.4f} s |",
        f"| check, p95 | {r['check_p95_s']:.4f} s |",
        f"| set comparisons per check (median) | {r['comparisons_per_check_median']:,} |",
        f"| findings per check (median) | {r['findings_per_check_median']} |",
        f"| record, median | {r['record_median_s']:.4f} s |",
        f"| record, p95 | {r['record_p95_s']:.4f} s |",
        f"| SQLite file after seeding | {r['sqlite_bytes_after_seed'] / 2**20:.1f} MiB |",
        f"| SQLite file at the end ({r['released_cells_final']:,} cells) | "
        f"{r['sqlite_bytes_final'] / 2**20:.1f} MiB |",
        f"| peak RSS of the benchmark process | {r['peak_rss_mib']} MiB |",
    ]
    (RESULTS / "ledger_check.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
