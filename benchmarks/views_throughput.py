"""View materialisation throughput on a ~10M-row dataset, cold and cached.

The dataset is the synthetic city's ``social_insurance`` table (generated at
run time, never committed), registered and given the example exposure policy
(``policies/exposure/social_insurance.yaml``: two keyed pseudonyms, a year
truncation, a row filter). The baseline is a plain DuckDB ``COPY ... TO
parquet`` of the same columns with the same settings; the ratio says what
the policy's work (HMAC pseudonyms, generalisation, filter) costs.

Writes ``benchmarks/results/views_throughput.json`` and ``.md``.

    python benchmarks/views_throughput.py [--residents 4300000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from sandbox.intake.policy import PolicyStore
from sandbox.intake.registry import Registry
from sandbox.synthetic.demo import generate_city
from sandbox.views.build import DatasetScope, Grant, ViewBuilder

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
COLUMNS = ("person_id", "credit_code", "month", "contribution_base", "amount")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--residents",
        type=int,
        default=4_300_000,
        help="residents in the synthetic city (4.3M gives ~10M contributions)",
    )
    parser.add_argument("--work", type=Path, default=None, help="scratch directory")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="dsr-views-bench-", dir="/var/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t = time.monotonic()
        tables = generate_city(
            work / "city", residents=args.residents, enterprises=max(args.residents // 10, 1000)
        )
        generated = time.monotonic() - t
        registry, policies = Registry(work / "data"), PolicyStore(work / "data")
        t = time.monotonic()
        dv = registry.register(
            tables["social_insurance"],
            name="social_insurance",
            entity_column="person_id",
            provider="bench",
        )
        registered = time.monotonic() - t
        text = (ROOT / "policies" / "exposure" / "social_insurance.yaml").read_text()
        policies.apply(
            text, {c.name: c.type for c in dv.columns}, dataset="social_insurance", author="bench"
        )
        # The same data without the row filter, for a like-for-like ratio.
        unfiltered = text.replace("dataset: social_insurance", "dataset: si_all")
        unfiltered = (
            unfiltered.split("row_filters:")[0] + "columns:" + unfiltered.split("columns:", 1)[1]
        )
        dv_all = registry.register(
            tables["social_insurance"], name="si_all", entity_column="person_id", provider="bench"
        )
        policies.apply(
            unfiltered, {c.name: c.type for c in dv_all.columns}, dataset="si_all", author="bench"
        )
        builder = ViewBuilder(registry, policies, work / "cache")
        key = os.urandom(32)
        grant = Grant(
            "bench-grant",
            "op",
            "benchmark",
            (DatasetScope("social_insurance", COLUMNS),),
            key=key,
            key_id="bench-key",
        )
        grant_all = Grant(
            "bench-all",
            "op",
            "benchmark",
            (DatasetScope("si_all", COLUMNS),),
            key=key,
            key_id="bench-key",
        )
        t = time.monotonic()
        cold = builder.build(grant)
        cold_s = time.monotonic() - t
        t = time.monotonic()
        cached = builder.build(grant)
        cached_s = time.monotonic() - t
        assert cached.cache_hit and not cold.cache_hit
        t = time.monotonic()
        cold_all = builder.build(grant_all)
        cold_all_s = time.monotonic() - t
        row_filter = policies.get("social_insurance").policy.row_filters

        con = duckdb.connect(
            config={"memory_limit": "1GB", "threads": 2, "preserve_insertion_order": False}
        )
        con.execute("SET enable_progress_bar = false")
        cols = ", ".join(f'"{c}"' for c in COLUMNS)
        t = time.monotonic()
        con.execute(
            f"COPY (SELECT {cols} FROM read_parquet($src)) TO '{work}/baseline.parquet'"
            " (FORMAT parquet, COMPRESSION zstd)",
            {"src": str(dv.path)},
        )
        baseline_s = time.monotonic() - t
        con.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rows_in = dv.row_count
    report = {
        "benchmark": "views_throughput",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count()},
        "dataset": {"name": "social_insurance", "rows": rows_in, "columns": list(COLUMNS)},
        "row_filter": [f.model_dump(mode="json") for f in row_filter],
        "view_rows": cold.views[0].rows,
        "view_unfiltered_rows": cold_all.views[0].rows,
        "generate_city_s": round(generated, 2),
        "register_s": round(registered, 2),
        "view_cold_s": round(cold_s, 3),
        "view_cold_unfiltered_s": round(cold_all_s, 3),
        "view_cached_s": round(cached_s, 4),
        "baseline_copy_s": round(baseline_s, 3),
        "view_cold_rows_per_s": round(rows_in / cold_s),
        "view_cached_rows_per_s": round(rows_in / cached_s),
        "baseline_rows_per_s": round(rows_in / baseline_s),
        "cold_over_baseline": round(cold_s / baseline_s, 2),
        "cold_unfiltered_over_baseline": round(cold_all_s / baseline_s, 2),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "views_throughput.json").write_text(json.dumps(report, indent=2) + "\n")
    md = [
        "# View materialisation throughput",
        "",
        f"Measured {report['measured_at']} on {report['machine']['cpus']} cores; dataset "
        f"`social_insurance`, {rows_in:,} rows. The example policy's row filter "
        f"({' and '.join(f'{f.column} {f.op} {f.value}' for f in row_filter)}) keeps "
        f"{report['view_rows']:,}; the unfiltered variant keeps them all. Rows/s counts "
        "input rows.",
        "",
        "| build | seconds | rows/s |",
        "|---|---|---|",
        f"| view, cold (policy with row filter) | {cold_s:.2f} | "
        f"{report['view_cold_rows_per_s']:,} |",
        f"| view, cold, no row filter | {cold_all_s:.2f} | {round(rows_in / cold_all_s):,} |",
        f"| view, cached | {cached_s:.4f} | {report['view_cached_rows_per_s']:,} |",
        f"| baseline `COPY ... TO parquet`, same columns | {baseline_s:.2f} | "
        f"{report['baseline_rows_per_s']:,} |",
        "",
        f"Cold view without the filter / baseline: {report['cold_unfiltered_over_baseline']}x "
        "(two HMAC-SHA256 pseudonyms, computed once per distinct value and joined back, "
        "and a date truncation).",
    ]
    (RESULTS / "views_throughput.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
