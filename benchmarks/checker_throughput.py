"""Output checker throughput on a 1,000,000-cell output.

A Python job's table of 100,000 rows x 10 columns (district codes, years,
industry names, counts, means, shares, totals: what an aggregate looks like)
is checked by every output rule (``sandbox.judge.rules.check_output``) against:

- a fingerprint index of 1,000,000 identifiers (500,000 resident IDs and
  500,000 mobiles, every encoding form), as the identifier rule uses for a
  dataset version;
- trusted view facts: 1,000,000 entities, the combination counts of the
  table's group-by columns, 200,000 rare sensitive values.

Reports the index build time, and the median and p95 of the whole check and
of each rule over repeated runs after a warm-up. Writes
``benchmarks/results/checker_throughput.json`` and ``.md``.

    python benchmarks/checker_throughput.py [--rows 100000] [--ids 500000] [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from sandbox.judge.fingerprints import build_from_values
from sandbox.judge.rules import OUTPUT_RULES, Context, Output, Thresholds, ViewFacts, check_output
from sandbox.judge.rules.aggregation import suppress
from sandbox.judge.rules.values import norm
from sandbox.synthetic import identifiers

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
INDUSTRIES = ["制造业", "建筑业", "批发和零售业", "住宿和餐饮业", "信息传输、软件和信息技术服务业"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def table(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    districts = np.array([f"5001{i:02d}" for i in range(1, 41)])
    return pa.table(
        {
            "district_code": districts[rng.integers(0, len(districts), rows)],
            "year": rng.integers(1990, 2025, rows),
            "industry": np.array(INDUSTRIES)[rng.integers(0, len(INDUSTRIES), rows)],
            "month": rng.integers(1, 13, rows),
            "n": rng.integers(10, 5000, rows),
            "mean_income": np.round(rng.lognormal(9, 0.5, rows), 3) + 0.001,
            "share": rng.random(rows),
            "total": np.round(rng.lognormal(12, 1, rows), 1) + 0.05,
            "sd": rng.random(rows) * 1000,
            "median_age": rng.integers(20, 70, rows).astype(float) + 0.5,
        }
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--ids", type=int, default=500_000, help="resident IDs and as many mobiles")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    values = [identifiers.resident_id(rng, birth=date(1960, 1, 1)) for _ in range(args.ids)]
    values += [identifiers.mobile(rng) for _ in range(args.ids)]
    started = time.perf_counter()
    index = build_from_values(values)
    build_s = time.perf_counter() - started

    data = table(args.rows, args.seed)
    group_by = ("district_code", "year", "industry", "month")
    out = Output(
        "aggregate.csv",
        "table",
        "python",
        b"",
        {"kind": "table", "description": "incomes by district, year, industry and month"},
        table=data,
        group_by=group_by,
        measures=tuple(c for c in data.column_names if c not in group_by and c != "n"),
        count="n",
    )
    cells = data.num_rows * data.num_columns
    combos_cols = ("district_code", "year", "industry", "month")
    combos = {
        tuple(norm(v) for v in r): 50
        for r in zip(*(data.column(c).to_pylist() for c in combos_cols), strict=True)
    }
    np_rng = np.random.default_rng(args.seed)
    facts = ViewFacts(
        entities={"residents": 1_000_000},
        combos={("residents", combos_cols): combos},
        quasi_columns={"residents": combos_cols},
        sensitive_values={
            "residents": frozenset(np.round(np_rng.lognormal(9, 0.5, 200_000), 2).tolist())
        },
    )
    ctx = Context(
        thresholds=Thresholds(k=10, auto_release="checked", max_rows=10**7, max_bytes=10**10),
        datasets=("residents",),
        views=facts,
        fingerprints=index,
    )
    check_output(out, ctx)  # warm-up
    totals: list[float] = []
    per_rule: dict[str, list[float]] = {"suppress": []}
    findings = 0
    for _ in range(args.reps):
        t0 = time.perf_counter()
        _, found = check_output(out, ctx)
        totals.append(time.perf_counter() - t0)
        findings = len(found)
        t0 = time.perf_counter()
        released, _ = suppress(out, ctx)
        per_rule["suppress"].append(time.perf_counter() - t0)
        for rule in OUTPUT_RULES:
            t0 = time.perf_counter()
            rule(released, ctx)
            per_rule.setdefault(rule.__name__, []).append(time.perf_counter() - t0)

    median = statistics.median(totals)
    report = {
        "benchmark": "checker_throughput",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "setup": {
            "rows": data.num_rows,
            "columns": data.num_columns,
            "cells": cells,
            "identifier_values": len(values),
            "fingerprints": len(index),
            "reps": args.reps,
        },
        "results": {
            "index_build_s": round(build_s, 3),
            "check_median_s": round(median, 3),
            "check_p95_s": round(percentile(totals, 0.95), 3),
            "cells_per_s": round(cells / median),
            "findings": findings,
            "per_rule_median_s": {k: round(statistics.median(v), 4) for k, v in per_rule.items()},
        },
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "checker_throughput.json").write_text(json.dumps(report, indent=2) + "\n")
    r = report["results"]
    lines = [
        "# Output checker throughput",
        "",
        f"Measured {report['when']} on {os.cpu_count()} cores, Python {platform.python_version()}.",
        "",
        f"A {data.num_rows:,}-row x {data.num_columns}-column Python table ({cells:,} cells) "
        f"checked by every output rule against a fingerprint index of {len(values):,} "
        f"identifiers ({len(index):,} fingerprints), {args.reps} runs after a warm-up.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| fingerprint index build | {r['index_build_s']} s |",  # type: ignore[index]
        f"| whole check, median | {r['check_median_s']} s |",  # type: ignore[index]
        f"| whole check, p95 | {r['check_p95_s']} s |",  # type: ignore[index]
        f"| throughput | {r['cells_per_s']:,} cells/s |",  # type: ignore[index]
        f"| findings | {r['findings']} |",  # type: ignore[index]
        "",
        "| rule | median (s) |",
        "|---|---|",
        *(
            f"| `{k}` | {v} |"
            for k, v in r["per_rule_median_s"].items()  # type: ignore[index,union-attr]
        ),
        "",
        "Command: `python benchmarks/checker_throughput.py`.",
    ]
    (RESULTS / "checker_throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
