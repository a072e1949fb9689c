"""Our threshold and dominance checks against ACRO's, on the same 1M-row table.

One generated table (numpy, fixed seed), written once as Parquet: 200,000
entities (16-hex-digit pseudonyms, as in a view) of several rows each, each
entity in one of 20 districts x 15 industries (Zipf-skewed, so some cells
are small) with a lognormal amount per row (the entity's scale times row
noise, so some cells are dominated). Both sides apply k = 10, p% = 0.10 and
n,k = (2, 0.90).

- ours, timed end to end as the product checks an SQL product: ``check_sql``
  of a GROUP BY against an exposure policy, the evidence ``rewrite``, the
  query in DuckDB (the SDK's locked-down connection over the view ``t``,
  result written to Parquet as the runner does), ``read_sql_output``, then
  ``suppress``, ``min_aggregation`` and ``dominance``;
- ACRO (``acro`` on PyPI), timed in its own virtual environment, since it
  pins ``pandas<=2.3.3`` and must never be a dependency of the product
  (created on first use with ``pip install``; when that is impossible, e.g.
  offline, the comparison is skipped with a message): ``crosstab`` and
  ``pivot_table`` of the sum with ``suppress=True`` (``acro_side.py``).

Median and p95 over ``--runs`` runs after one warm-up, the ratio ACRO / ours,
and the cells each side flags per rule with their agreement. ACRO counts
records per cell and takes contributions per record; we count distinct
entities and sum contributions per entity. The same rules per record are
run too, to show that this is the whole difference.

Writes ``benchmarks/results/acro_compare.json`` and ``.md``.

    python benchmarks/acro_compare.py [--runs 5] [--acro-venv ~/.cache/dsr/acro-venv]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sandbox.intake.policy import ExposurePolicy, parse_policy
from sandbox.judge.facts import thresholds_for
from sandbox.judge.outputs.sql import read_sql_output
from sandbox.judge.rules.aggregation import dominance, min_aggregation, suppress
from sandbox.judge.types import Context, Output, Thresholds, worst
from sandbox.precheck.sql import check_sql
from sandbox.precheck.sql.evidence import rewrite
from sandbox.sdk import connect

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ACRO_SIDE = HERE / "acro_side.py"
# Pinned so that results stay comparable; pyarrow only lets pandas read Parquet.
ACRO_REQUIREMENTS = ("acro==1.0.2", "pyarrow")
DEFAULT_VENV = Path.home() / ".cache" / "dsr" / "acro-venv"
DISTRICTS, INDUSTRIES = 20, 15
SQL = "SELECT district, industry, count(*) AS n, sum(amount) AS total FROM t GROUP BY ALL"
POLICY = """\
dataset: t
entity_column: entity_id
k: 10
dominance: {p: 0.10, n: 2, k: 0.90}
columns:
  entity_id: {class: identifier, level: 3, visibility: join_key}
  district: {class: quasi_identifier, level: 2, visibility: group_key}
  industry: {class: attribute, level: 1, visibility: group_key}
  amount: {class: sensitive, level: 3, visibility: aggregate_only}
"""
RULES = {"threshold": "MinimumThresholdCheck", "p%": "PPercentCheck", "nk": "NKCheck"}
Cells = set[tuple[str, str]]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(times: list[float]) -> dict[str, float | int]:
    return {
        "runs": len(times),
        "median_s": round(statistics.median(times), 3),
        "p95_s": round(percentile(times, 0.95), 3),
        "min_s": round(min(times), 3),
        "max_s": round(max(times), 3),
    }


def generate(path: Path, rows: int, entities: int, seed: int, skew: float, sigma: float) -> None:
    """The table both sides read: entity_id, district, industry, amount."""
    rng = np.random.default_rng(seed)
    cells = DISTRICTS * INDUSTRIES
    district_w = np.arange(1, DISTRICTS + 1) ** -skew
    industry_w = np.arange(1, INDUSTRIES + 1) ** -skew
    p = np.outer(district_w, industry_w).ravel()
    # One entity in every cell first, so both sides see the same 300 cells.
    cell = np.concatenate([np.arange(cells), rng.choice(cells, entities - cells, p=p / p.sum())])
    per_entity = 1 + np.bincount(rng.integers(0, entities, rows - entities), minlength=entities)
    entity = np.repeat(np.arange(entities), per_entity)[rng.permutation(rows)]
    scale = rng.lognormal(0.0, sigma, entities)
    amount = np.round(100 * scale[entity] * rng.lognormal(0.0, 0.5, rows), 2)
    ids = np.array([f"{x:016x}" for x in rng.integers(0, 2**63, entities)])
    district = np.array([f"D{i:02d}" for i in range(1, DISTRICTS + 1)])
    industry = np.array([f"I{i:02d}" for i in range(1, INDUSTRIES + 1)])
    table = pa.table(
        {
            "entity_id": ids[entity],
            "district": district[cell[entity] // INDUSTRIES],
            "industry": industry[cell[entity] % INDUSTRIES],
            "amount": amount,
        }
    )
    pq.write_table(table, path, compression="zstd")


# -- our side ---------------------------------------------------------------------


def check_ours(
    policy: ExposurePolicy, data_dir: Path, ctx: Context, memory: str, threads: int
) -> tuple[Output, Output, list[Any], dict[str, float]]:
    """The product's path for an SQL product; the output, as released, findings, stage times."""
    stages = {}
    t = time.monotonic()
    checked = check_sql(SQL, {policy.dataset: policy})
    query = rewrite(checked, {policy.dataset: policy.entity_column}, max(2, policy.dominance.n))
    stages["check_sql + rewrite"] = time.monotonic() - t
    t = time.monotonic()
    con = connect(data_dir, memory_limit=memory, threads=threads)
    sink = io.BytesIO()
    try:
        reader = con.sql(query.sql).to_arrow_reader(65_536)
        with pq.ParquetWriter(sink, reader.schema, compression="zstd") as writer:
            for batch in reader:
                writer.write_batch(batch)
    finally:
        con.close()
    stages["DuckDB query to Parquet"] = time.monotonic() - t
    t = time.monotonic()
    output = read_sql_output(sink.getvalue(), query, checked.output_columns)
    stages["read_sql_output"] = time.monotonic() - t
    t = time.monotonic()
    released, findings = suppress(output, ctx)
    findings += min_aggregation(released, ctx) + dominance(released, ctx)
    stages["suppress + min_aggregation + dominance"] = time.monotonic() - t
    return output, released, findings, stages


def labels(table: pa.Table, rows: Any) -> Cells:
    district, industry = table.column("district").to_pylist(), table.column("industry").to_pylist()
    return {(district[int(r)], industry[int(r)]) for r in rows}


def our_flags(output: Output, released: Output, ctx: Context) -> dict[str, Cells]:
    """Cells each rule flags, independently (the product skips suppressed rows for dominance)."""
    ev, t, table = output.evidence, ctx.thresholds, output.table
    assert ev is not None and table is not None
    top_key, total_key = ev.measures["total"][0]
    tops, totals = ev.top[top_key], ev.totals[total_key]
    nk, p = [], []
    for top, total in zip(tops, totals, strict=True):
        first, second = top[0], (top[1] if len(top) > 1 else 0.0)
        nk.append(sum(top[: t.dominance_n]) > t.dominance_k * total)
        p.append(first > 0 and total - first - second < t.dominance_p * first)
    flags = {
        "threshold": labels(table, np.flatnonzero(ev.min_entities() < t.k)),
        "p%": labels(table, np.flatnonzero(p)),
        "nk": labels(table, np.flatnonzero(nk)),
    }
    # The breakdown must be what the product's own rules find.
    assert labels(table, released.suppressed) == flags["threshold"]
    dominated = {f.row for f in dominance(output, ctx)}
    assert labels(table, dominated) == flags["p%"] | flags["nk"]
    return flags


def record_flags(path: Path, t: Thresholds) -> tuple[dict[str, Cells], int]:
    """The same rules with records for entities (ACRO's unit); and cells of >= k records
    but < k entities."""
    rows = duckdb.execute(
        "SELECT district, industry, count(*) AS n, count(DISTINCT entity_id) AS e, "
        "sum(amount) AS total, max(amount, 2) AS top FROM read_parquet($path) GROUP BY ALL",
        {"path": str(path)},
    ).fetchall()
    flags: dict[str, Cells] = {rule: set() for rule in RULES}
    hidden = 0
    for district, industry, n, e, total, top in rows:
        cell = (district, industry)
        first, second = top[0], (top[1] if len(top) > 1 else 0.0)
        if n < t.k:
            flags["threshold"].add(cell)
        hidden += n >= t.k > e
        if sum(top[: t.dominance_n]) > t.dominance_k * total:
            flags["nk"].add(cell)
        if total - first - second < t.dominance_p * first:
            flags["p%"].add(cell)
    return flags, hidden


# -- ACRO's side ------------------------------------------------------------------


def acro_python(venv: Path) -> tuple[Path | None, str]:
    """ACRO's interpreter, its venv created on first use; None and the reason when it cannot be."""
    python, stamp = venv / "bin" / "python", venv / ".dsr-requirements"
    wanted = " ".join(ACRO_REQUIREMENTS)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python, ""
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    log = venv.parent / "acro-venv-install.log"
    print(f"creating ACRO's venv in {venv} (pip install {wanted})", file=sys.stderr)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        with log.open("w") as out:
            subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", *ACRO_REQUIREMENTS],
                check=True,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=900,
            )
    except (OSError, subprocess.SubprocessError) as e:
        shutil.rmtree(venv, ignore_errors=True)
        return None, f"venv or pip install failed, no network? ({type(e).__name__}; see {log})"
    stamp.write_text(wanted)
    return python, ""


def run_acro(python: Path, data: Path, runs: int, work: Path, pivot: bool) -> dict[str, Any]:
    cwd = work / "acro-cwd"  # whatever ACRO writes stays in the scratch directory
    cwd.mkdir()
    command = [str(python), str(ACRO_SIDE), str(data), "--runs", str(runs)]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        [*command, *([] if pivot else ["--no-pivot"])],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if done.returncode != 0:
        raise SystemExit(f"ACRO's side failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# -- report -----------------------------------------------------------------------


def agreement(ours: dict[str, Cells], theirs: dict[str, Cells]) -> dict[str, dict[str, Any]]:
    return {
        rule: {
            "ours": len(ours[rule]),
            "acro": len(theirs[rule]),
            "both": len(ours[rule] & theirs[rule]),
            "ours_only": len(ours[rule] - theirs[rule]),
            "acro_only": len(theirs[rule] - ours[rule]),
            "acro_only_cells": sorted(theirs[rule] - ours[rule]),
        }
        for rule in RULES
    }


def write_report(report: dict[str, Any]) -> list[str]:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "acro_compare.json").write_text(json.dumps(report, indent=2) + "\n")
    s, o, a = report["setup"], report["ours"], report["acro"]
    v = report["versions"]
    lines = [
        "# Threshold and dominance checks: ours against ACRO",
        "",
        f"Measured {report['measured_at']} on {report['machine']['cpus']} cores; "
        f"{s['runs']} runs each after one warm-up. One table of {s['rows']:,} rows, "
        f"{s['entities']:,} entities (several rows each, each in one cell) over "
        f"{s['cells']} cells ({DISTRICTS} districts x {INDUSTRIES} industries, Zipf {s['skew']}), "
        f"lognormal amounts (entity sigma {s['sigma']}), seed {s['seed']}. Rules on both sides: "
        "threshold 10, p% 0.10, n,k (2, 0.90).",
        "",
        f"- ours: Python {v['ours']['python']}, DuckDB {v['ours']['duckdb']} "
        f"(threads {s['threads']}, memory {s['memory']}), sqlglot {v['ours']['sqlglot']}, "
        f"pyarrow {v['ours']['pyarrow']}, pandas {v['ours']['pandas']} (not used by the check)",
        f"- ACRO {v['acro']['acro']} in its own venv: Python {v['acro']['python']}, "
        f"pandas {v['acro']['pandas']}, numpy {v['acro']['numpy']}",
        "",
        "| side | what is timed | median (s) | p95 (s) | ACRO / ours |",
        "|---|---|---|---|---|",
        f"| ours | `check_sql` + rewrite + DuckDB over Parquet + read + suppress, "
        f"min_aggregation, dominance | {o['median_s']:.3f} | {o['p95_s']:.3f} | |",
    ]
    for method, r in a["results"].items():
        lines.append(
            f"| ACRO | `{method}` (sum, suppress=True), data already in pandas | "
            f"{r['median_s']:.3f} | {r['p95_s']:.3f} | {r['ratio']:.1f}x |"
        )
    lines += [
        "",
        f"ACRO's timing excludes loading the Parquet file into pandas ({a['load_s']:.2f} s once); "
        "ours includes reading it. Our stages (median s): "
        + ", ".join(f"{k} {val:.3f}" for k, val in o["stages_median_s"].items())
        + ".",
        "",
        "## Flagged cells",
        "",
        f"Our verdict: {o['verdict']} ({o['suppressed']} cells suppressed under k, "
        f"{o['dominated']} dominated cells failing the output). ACRO's status: "
        f"{a['results']['crosstab']['status']} (it suppresses every flagged cell).",
        "",
        "| rule | ours (entities) | ACRO crosstab (records) | both | ours only | ACRO only | "
        "our rules per record |",
        "|---|---|---|---|---|---|---|",
    ]
    for rule, row in report["agreement"].items():
        lines.append(
            f"| {rule} | {row['ours']} | {row['acro']} | {row['both']} | {row['ours_only']} | "
            f"{row['acro_only']} | {report['per_record'][rule]} |"
        )
    same = "match ACRO's cell for cell" if report["per_record_matches_acro"] else "differ from ACRO"
    pivot = "the same" if report["pivot_matches_crosstab"] else "other"
    lines += [
        "",
        f"Our rules applied per record instead of per entity {same} (ACRO's pivot_table flags "
        f"{pivot} cells as its crosstab). The disagreement is the "
        "unit: ACRO counts records, so a cell of a few entities with several rows each passes "
        f"its threshold ({s['hidden_small_cells']} cells here have at least 10 records but fewer "
        "than 10 entities), and it takes contributions per record, so an entity's total split "
        "over its rows no longer looks dominant. We count distinct entities and sum each "
        "entity's rows before the p% and n,k rules, which is stricter and is what the rules "
        "mean when entities have several rows (ACRO takes no entity column: for entity-level "
        "rules its user must first aggregate to one row per entity, and nothing checks that).",
    ]
    (RESULTS / "acro_compare.md").write_text("\n".join(lines) + "\n")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--entities", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--skew", type=float, default=1.7, help="Zipf exponent of cell sizes")
    parser.add_argument("--sigma", type=float, default=2.5, help="lognormal sigma of entities")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory", default="512MB", help="DuckDB memory limit (the product's)")
    parser.add_argument("--acro-venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--no-pivot", action="store_true", help="time ACRO's crosstab only")
    args = parser.parse_args()

    python, why = acro_python(args.acro_venv.expanduser())
    if python is None:
        print(f"acro_compare: skipped, ACRO's venv cannot be created: {why}", file=sys.stderr)
        return 0
    policy = parse_policy(POLICY)
    thresholds = thresholds_for([policy])
    ctx = Context(thresholds=thresholds, datasets=(policy.dataset,))
    work = Path(tempfile.mkdtemp(prefix="dsr-acro-bench-"))
    try:
        data_dir = work / "data"
        data_dir.mkdir()
        data = data_dir / "t.parquet"
        t = time.monotonic()
        generate(data, args.rows, args.entities, args.seed, args.skew, args.sigma)
        print(f"generated {args.rows:,} rows in {time.monotonic() - t:.1f}s", file=sys.stderr)

        times: list[float] = []
        stages: dict[str, list[float]] = {}
        for i in range(args.runs + 1):
            started = time.monotonic()
            output, released, findings, split = check_ours(
                policy, data_dir, ctx, args.memory, args.threads
            )
            if i:  # the first run is a warm-up
                times.append(time.monotonic() - started)
                for k, v in split.items():
                    stages.setdefault(k, []).append(v)
        ours = {
            **summary(times),
            "stages_median_s": {k: round(statistics.median(v), 4) for k, v in stages.items()},
            "verdict": str(worst(findings)),
            "suppressed": len(released.suppressed),
            "dominated": sum(f.rule == "dominance" for f in findings),
        }
        print(f"ours   median {ours['median_s']:.3f}s p95 {ours['p95_s']:.3f}s", file=sys.stderr)
        flags = our_flags(output, released, ctx)
        per_record, hidden = record_flags(data, thresholds)

        acro = run_acro(python, data, args.runs, work, not args.no_pivot)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    wanted = {
        "safe_threshold": thresholds.k,
        "safe_pratio_p": thresholds.dominance_p,
        "safe_nk_n": thresholds.dominance_n,
        "safe_nk_k": thresholds.dominance_k,
    }
    if acro["rules"] != wanted:
        raise SystemExit(f"ACRO's default rules {acro['rules']} are not ours {wanted}")
    acro_flags = {}
    for method, r in acro["results"].items():
        r.update(summary(r.pop("times_s")))
        r["ratio"] = round(r["median_s"] / ours["median_s"], 2)
        cells = r.pop("cells")
        acro_flags[method] = {rule: {(d, i) for d, i in cells[c]} for rule, c in RULES.items()}
        print(f"ACRO {method:11} median {r['median_s']:.3f}s ({r['ratio']}x)", file=sys.stderr)
    crosstab = acro_flags["crosstab"]
    report = {
        "benchmark": "acro_compare",
        "what": "threshold + dominance checks of a 300-cell sum table over 1M rows: ours vs ACRO",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release()},
        "versions": {
            "ours": {
                "python": platform.python_version(),
                "duckdb": duckdb.__version__,
                "sqlglot": _version("sqlglot"),
                "pyarrow": pa.__version__,
                "pandas": _version("pandas"),
            },
            "acro": acro["versions"],
        },
        "setup": {
            "rows": args.rows,
            "entities": args.entities,
            "cells": DISTRICTS * INDUSTRIES,
            "seed": args.seed,
            "skew": args.skew,
            "sigma": args.sigma,
            "runs": args.runs,
            "threads": args.threads,
            "memory": args.memory,
            "query": SQL,
            "thresholds": {
                "k": thresholds.k,
                "p": thresholds.dominance_p,
                "n": thresholds.dominance_n,
                "nk_k": thresholds.dominance_k,
            },
            "acro_rules": acro["rules"],
            "hidden_small_cells": hidden,
        },
        "ours": ours,
        "acro": {"load_s": round(acro["load_s"], 3), "results": acro["results"]},
        "agreement": agreement(flags, crosstab),
        "per_record": {rule: len(cells) for rule, cells in per_record.items()},
        "per_record_matches_acro": per_record == crosstab,
        "pivot_matches_crosstab": all(f == crosstab for f in acro_flags.values()),
    }
    print("\n".join(write_report(report)))
    return 0


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    sys.exit(main())
