"""Scope policy (Casbin): decisions per second, a job's lineage check, cold load.

Seeds a SQLite ``scope_rules`` table with the lines ``ScopePolicy.grant_rules``
writes for 500 grants, each of one dataset with 10 columns, for the actions
read and export: (1 dataset object + 10 columns) x 2 actions x 500 grants =
11,000 lines. Requests are drawn from a fixed seed: 80% inside the asker's
grant (allowed), 20% a column outside it or another operator's grant
(denied). Then measures:

- decisions per second of a plain ``casbin.Enforcer`` (the matcher runs on
  every line) against ``FastEnforcer`` with the cache key order (sub, grant)
  and (grant, act), each narrowing the lines with Casbin's policy filter and
  calling ``enforce_ex`` as ``ScopePolicy`` does; and ``ScopePolicy.decide``
  itself (request checks, lock, reason, the read of the store's scope revision),
  without and with its memo;
- ``check_job_scope`` on a lineage of 10 columns: median and p95, memo cold
  (every decision computed) and warm (the same lineage checked again, as at
  release after submission);
- cold load: a fresh ``ScopePolicy.from_engine`` (and a plain ``Enforcer``)
  reading every line from the SQLite file.

Every enforcer's answers are compared on the same requests; a disagreement
fails the run.

Writes ``benchmarks/results/scope_enforce.json`` and ``.md``.

    python benchmarks/scope_enforce.py [--grants 500] [--columns 10] [--requests 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import casbin
from casbin.model import fast_policy_filter
from sqlalchemy import create_engine

from gateway.scope.objects import column_object, dataset_object
from gateway.scope.policy import MODEL_PATH, ScopePolicy
from gateway.scope.store import ScopeRuleAdapter, create_scope_tables

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ACTIONS = ("read", "export")
DATASETS = 7  # grants spread over this many dataset names
LINEAGE = 10

Request = tuple[str, str, str, str]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def grant(g: int) -> tuple[str, str, str]:
    """(operator, grant id, dataset) of grant number g."""
    return f"op-{g:04d}", f"G-{g:04d}", f"dataset_{g % DATASETS}"


def lines(grants: int, columns: int) -> list[list[str]]:
    """The lines grant_rules writes for every grant (same shape, written in bulk)."""
    out = []
    for g in range(grants):
        operator, grant_id, dataset = grant(g)
        objects = [dataset_object(dataset)]
        objects += [column_object(dataset, f"c{c:02d}") for c in range(columns)]
        out += [[operator, grant_id, obj, act, "allow"] for obj in objects for act in ACTIONS]
    return out


def requests(n: int, grants: int, columns: int, rng: random.Random) -> list[Request]:
    out: list[Request] = []
    for _ in range(n):
        operator, grant_id, dataset = grant(rng.randrange(grants))
        act = rng.choice(ACTIONS)
        roll = rng.random()
        if roll < 0.8:  # a granted column
            obj = column_object(dataset, f"c{rng.randrange(columns):02d}")
        elif roll < 0.9:  # a column the grant does not hold
            obj = column_object(dataset, f"c{columns + rng.randrange(5):02d}")
        else:  # another operator's grant
            _, grant_id, other = grant(rng.randrange(grants))
            obj = column_object(other, "c00")
        out.append((operator, grant_id, obj, act))
    return out


def rate(decide: Callable[[Request], bool], reqs: list[Request]) -> tuple[float, list[bool]]:
    started = time.perf_counter()
    answers = [decide(r) for r in reqs]
    return len(reqs) / (time.perf_counter() - started), answers


def fast_decider(enforcer: Any, order: tuple[int, int]) -> Callable[[Request], bool]:
    def decide(r: Request) -> bool:
        policy = enforcer.model.model["p"]["p"].policy
        with fast_policy_filter(policy, r[order[0]], r[order[1]]):
            allowed, _ = enforcer.enforce_ex(*r)
        return bool(allowed)

    return decide


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grants", type=int, default=500)
    parser.add_argument("--columns", type=int, default=10)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--plain-requests", type=int, default=200)
    parser.add_argument("--block", type=int, default=1_000)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20261122)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="dsr-scope-bench-"))
    engine = create_engine(f"sqlite:///{work / 'scope.sqlite'}")
    try:
        create_scope_tables(engine)
        seeded = lines(args.grants, args.columns)
        started = time.perf_counter()
        ScopeRuleAdapter(engine).add_policies("p", "p", seeded)
        seed_s = time.perf_counter() - started
        print(f"seeded {len(seeded):,} lines in {seed_s:.2f}s", file=sys.stderr)

        # cold load
        load_s, plain_load_s = [], []
        for _ in range(args.loads):
            started = time.perf_counter()
            policy = ScopePolicy.from_engine(engine, memo_size=0)
            load_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            plain = casbin.Enforcer(str(MODEL_PATH), ScopeRuleAdapter(engine))
            plain_load_s.append(time.perf_counter() - started)

        reqs = requests(args.requests, args.grants, args.columns, rng)
        allowed_share = None
        results: dict[str, Any] = {}
        plain_rate, plain_answers = rate(
            lambda r: bool(plain.enforce(*r)), reqs[: args.plain_requests]
        )
        results["plain_enforcer_per_s"] = round(plain_rate, 1)
        print(f"plain Enforcer: {plain_rate:,.1f}/s", file=sys.stderr)
        reference: list[bool] = plain_answers

        def agree(name: str, answers: list[bool]) -> None:
            if answers[: len(reference)] != reference:
                raise SystemExit(f"{name} disagrees with the plain Enforcer")

        memo = ScopePolicy.from_engine(engine)
        variants: dict[str, Callable[[Request], bool]] = {}
        for name, order in (("sub_grant", (0, 1)), ("grant_act", (1, 3))):
            fast = casbin.FastEnforcer(
                str(MODEL_PATH), ScopeRuleAdapter(engine), cache_key_order=order
            )
            variants[f"fast_{name}"] = fast_decider(fast, order)
        variants["scope_policy_decide"] = lambda r: policy.decide(*r).allowed
        variants["scope_policy_decide_memo"] = lambda r: memo.decide(*r).allowed
        for name, decide in variants.items():  # answers checked; the memo filled
            answers = [decide(r) for r in reqs]
            agree(name, answers)
            allowed_share = sum(answers) / len(answers)
        # The machine is shared: variants take turns on blocks of requests, so
        # a change of load hits all of them; each reports its median block.
        block_rates: dict[str, list[float]] = {name: [] for name in variants}
        blocks = [reqs[i : i + args.block] for i in range(0, len(reqs), args.block)]
        names = list(variants)
        for n, block in enumerate(blocks):
            for name in names[n % len(names) :] + names[: n % len(names)]:
                block_rates[name].append(rate(variants[name], block)[0])
        for name, rates in block_rates.items():
            results[f"{name}_per_s"] = round(statistics.median(rates))
            print(f"{name}: {statistics.median(rates):,.0f}/s", file=sys.stderr)

        # a job's lineage: 10 columns of the asker's grant
        cold_s, warm_s = [], []
        for _ in range(args.jobs):
            operator, grant_id, dataset = grant(rng.randrange(args.grants))
            lineage = [(dataset, f"c{c:02d}") for c in rng.sample(range(args.columns), LINEAGE)]
            started = time.perf_counter()
            policy.check_job_scope(operator, grant_id, lineage, "export")  # no memo
            cold_s.append(time.perf_counter() - started)
            memo.check_job_scope(operator, grant_id, lineage, "export")
            started = time.perf_counter()
            memo.check_job_scope(operator, grant_id, lineage, "export")
            warm_s.append(time.perf_counter() - started)
        lineage_plain_s = []
        for _ in range(3):
            operator, grant_id, dataset = grant(rng.randrange(args.grants))
            started = time.perf_counter()
            for c in range(LINEAGE):
                assert plain.enforce(
                    operator, grant_id, column_object(dataset, f"c{c:02d}"), "export"
                )
            lineage_plain_s.append(time.perf_counter() - started)
    finally:
        engine.dispose()
        shutil.rmtree(work, ignore_errors=True)

    results.update(
        {
            "lineage_check_cold_median_ms": round(statistics.median(cold_s) * 1000, 3),
            "lineage_check_cold_p95_ms": round(percentile(cold_s, 0.95) * 1000, 3),
            "lineage_check_warm_median_ms": round(statistics.median(warm_s) * 1000, 4),
            "lineage_check_plain_enforcer_median_ms": round(
                statistics.median(lineage_plain_s) * 1000, 1
            ),
            "cold_load_median_s": round(statistics.median(load_s), 3),
            "cold_load_plain_enforcer_median_s": round(statistics.median(plain_load_s), 3),
            "seed_s": round(seed_s, 2),
        }
    )
    setup = {
        "grants": args.grants,
        "columns_per_grant": args.columns,
        "actions": list(ACTIONS),
        "policy_lines": len(seeded),
        "requests": args.requests,
        "plain_requests": args.plain_requests,
        "block": args.block,
        "allowed_share": round(allowed_share or 0.0, 3),
        "lineage_columns": LINEAGE,
        "jobs": args.jobs,
        "loads": args.loads,
        "pycasbin": _version("pycasbin"),
    }
    measured_at = datetime.now(UTC).isoformat(timespec="seconds")
    load = os.getloadavg()[0]  # the machine is shared: a busy one slows every figure
    report = {
        "benchmark": "scope_enforce",
        "what": "Casbin scope policy: decisions per second, lineage check, cold load",
        "measured_at": measured_at,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "kernel": platform.release(),
            "sqlite": sqlite3.sqlite_version,
            "load_average_1min": round(load, 2),
        },
        "setup": setup,
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scope_enforce.json").write_text(json.dumps(report, indent=2) + "\n")
    r, s = results, setup
    md = [
        "# Scope policy (Casbin): decisions, lineage check, cold load",
        "",
        f"Measured {measured_at} on {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"pycasbin {s['pycasbin']}, SQLite {sqlite3.sqlite_version}, "
        f"1-minute load average {load:.1f}. "
        f"{s['policy_lines']:,} policy lines: {s['grants']} grants, each one dataset object and "
        f"{s['columns_per_grant']} columns, for {' and '.join(ACTIONS)}. Requests from a fixed "
        f"seed, {s['allowed_share']:.0%} allowed. Every enforcer gave the plain Enforcer's "
        f"answers. Rates past the plain Enforcer's: the median over blocks of {s['block']:,} "
        "requests, the variants taking turns (the machine is shared). Each `ScopePolicy` "
        "call first reads the store's scope revision (one single-row read, so a change made "
        "by another gateway process is in force at the next decision): a single `decide` "
        "pays it every time, a job's lineage check once for all its columns.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| plain `Enforcer` (matcher on every line; {s['plain_requests']} requests) "
        f"| {r['plain_enforcer_per_s']:,.1f} decisions/s |",
        f"| `FastEnforcer`, key order (sub, grant) | {r['fast_sub_grant_per_s']:,} decisions/s |",
        f"| `FastEnforcer`, key order (grant, act): chosen "
        f"| {r['fast_grant_act_per_s']:,} decisions/s |",
        f"| `ScopePolicy.decide` (request checks, lock, reason, revision read), no memo "
        f"| {r['scope_policy_decide_per_s']:,} decisions/s |",
        f"| `ScopePolicy.decide`, memo warm "
        f"| {r['scope_policy_decide_memo_per_s']:,} decisions/s |",
        f"| `check_job_scope`, {LINEAGE} columns, memo cold: median "
        f"| {r['lineage_check_cold_median_ms']:.3f} ms |",
        f"| `check_job_scope`, {LINEAGE} columns, memo cold: p95 "
        f"| {r['lineage_check_cold_p95_ms']:.3f} ms |",
        f"| `check_job_scope`, {LINEAGE} columns, memo warm: median "
        f"| {r['lineage_check_warm_median_ms']:.4f} ms |",
        f"| the same {LINEAGE} columns with the plain `Enforcer` "
        f"| {r['lineage_check_plain_enforcer_median_ms']:,.1f} ms |",
        f"| cold load, `ScopePolicy.from_engine` (median of {s['loads']}) "
        f"| {r['cold_load_median_s']:.3f} s |",
        f"| cold load, plain `Enforcer` | {r['cold_load_plain_enforcer_median_s']:.3f} s |",
        f"| seeding the table (one transaction) | {r['seed_s']:.2f} s |",
    ]
    (RESULTS / "scope_enforce.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


if __name__ == "__main__":
    sys.exit(main())
