"""Homomorphic-encryption products: per-query latency, sizes and throughput.

Encrypted verification (BFV, N = 16384, 60-bit plain modulus): a product over
1,000,000 enterprises with a 4-band tax predicate, bucketed by
``bucket_bits_for`` (7 bits: about 7,800 subjects per bucket, padded to 16,384
slots). Encrypted scoring (CKKS, N = 8192, 60/40/40/60 bits, scale 2**40): a
32-feature linear model. For each, with ``--reps`` queries (half matching,
half not, for verification):

- client encrypt (claim or feature vector), server evaluate, client decrypt:
  median and p95. Server evaluate is measured warm (the consumer's public
  context parsed once and kept, as the gateway will keep it per consumer key)
  and cold (the context bytes parsed and checked on every call);
- bytes of the public context, the query and the answer;
- server throughput: ``--queries`` warm evaluations spread over 1 and over 2
  worker processes (spawned, one TenSEAL thread each), queries per second of
  wall time. Client work is not in the throughput.

Writes ``benchmarks/results/he_products.json`` and ``.md``.

    python benchmarks/he_products.py [--subjects 1000000] [--reps 20] [--queries 40]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tenseal as ts

from sandbox.container.he import score, verify
from sandbox.container.he.params import (
    SCORE_COEFF_BITS,
    SCORE_POLY_DEGREE,
    VERIFY_PLAIN_MODULUS,
    VERIFY_POLY_DEGREE,
)
from sandbox.container.he.protocol import FALSE_MATCH_BOUND, VerificationQuery, bucket_of
from sandbox.container.he.verify import Band, VerificationTable
from sandbox.he.client import ScoringKeys, VerificationKeys

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PRODUCT = "tax-band"
BANDS = Band("annual_tax", (10_000.0, 50_000.0, 200_000.0))
FEATURES = 32


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(values) * 1000, 2),
        "p95_ms": round(percentile(values, 0.95) * 1000, 2),
    }


# --- throughput workers (spawned: each loads its own context, one thread) ---

_WORKER: dict[str, Any] = {}


def _init_verify(
    table: VerificationTable, context: bytes, queries: list[VerificationQuery]
) -> None:
    _WORKER.update(kind="verify", table=table, context=verify.load_context(context), q=queries)


def _init_score(model: score.LinearModel, context: bytes, queries: list[bytes]) -> None:
    _WORKER.update(kind="score", model=model, context=score.load_context(context), q=queries)


def _evaluate(i: int) -> int:
    w = _WORKER
    query = w["q"][i % len(w["q"])]
    if w["kind"] == "verify":
        return len(verify.evaluate(w["table"], w["context"], query))
    return len(score.evaluate(w["model"], w["context"], query))


def throughput(init: Callable[..., None], args: tuple[Any, ...], queries: int) -> dict[str, float]:
    out: dict[str, float] = {}
    spawn = multiprocessing.get_context("spawn")
    for workers in (1, 2):
        with spawn.Pool(workers, initializer=init, initargs=args) as pool:
            pool.map(_evaluate, range(workers), chunksize=1)  # warm-up: workers ready
            started = time.perf_counter()
            pool.map(_evaluate, range(queries), chunksize=1)
            wall = time.perf_counter() - started
        out[f"qps_{workers}_workers"] = round(queries / wall, 2)
    return out


# --- the two products ---


def bench_verification(subjects: int, reps: int, queries: int) -> dict[str, Any]:
    rng = random.Random(20261122)
    rows = [(f"91500000MA{i:08d}", rng.uniform(0, 400_000)) for i in range(subjects)]
    table, build_s = timed(lambda: verify.build_table(PRODUCT, rows, BANDS))
    keys, keygen_s = timed(VerificationKeys.make)
    public = keys.public_context()
    checked, load_s = timed(lambda: verify.load_context(public))

    enc_s: list[float] = []
    eval_s: list[float] = []
    cold_s: list[float] = []
    dec_s: list[float] = []
    queries_made: list[VerificationQuery] = []
    correct = 0
    answer = b""
    for rep in range(reps):
        subject, tax = rows[rng.randrange(subjects)]
        band = BANDS.value_of(tax)
        assert band is not None
        claim = band if rep % 2 == 0 else (band + 1) % 4
        query, t = timed(
            lambda s=subject, c=claim: keys.encrypt_claim(
                PRODUCT, s, c, bucket_bits=table.bucket_bits
            )
        )
        enc_s.append(t)
        answer, t = timed(lambda q=query: verify.evaluate(table, checked, q))
        eval_s.append(t)
        _, t = timed(lambda q=query: verify.evaluate(table, public, q))
        cold_s.append(t)
        matched, t = timed(lambda a=answer: keys.read_answer(a))
        dec_s.append(t)
        correct += matched == (rep % 2 == 0)
        queries_made.append(query)

    buckets = {q.bucket for q in queries_made}
    small = VerificationTable(
        table.product_id,
        table.bucket_bits,
        {b: table.buckets[b] for b in buckets},
        table.subjects,
    )
    qps = throughput(_init_verify, (small, public, queries_made), queries)
    sample_bucket = bucket_of(rows[0][0], table.bucket_bits)
    return {
        "parameters": {
            "scheme": "BFV",
            "poly_modulus_degree": VERIFY_POLY_DEGREE,
            "coeff_modulus_bits": checked.facts.coeff_modulus_bits,
            "plain_modulus_bits": VERIFY_PLAIN_MODULUS.bit_length(),
            "security": "128-bit (HE Standard: <= 438 bits at N = 16384)",
        },
        "setup": {
            "subjects": subjects,
            "bucket_bits": table.bucket_bits,
            "subjects_in_a_bucket": len(table.buckets[sample_bucket]),
            "largest_bucket": table.largest_bucket(),
            "slots_per_query": VERIFY_POLY_DEGREE,
            "false_match_bound_per_query": FALSE_MATCH_BOUND,
            "table_build_s": round(build_s, 2),
            "keygen_s": round(keygen_s, 3),
            "context_check_s": round(load_s, 3),
            "queries": reps,
            "answers_correct": correct,
        },
        "latency": {
            "client_encrypt": summary(enc_s),
            "server_evaluate_warm": summary(eval_s),
            "server_evaluate_cold": summary(cold_s),
            "client_decrypt": summary(dec_s),
        },
        "bytes": {
            "public_context": len(public),
            "query": len(queries_made[0].ciphertext),
            "answer": len(answer),
        },
        "throughput": {"queries": queries, **qps},
    }


def bench_scoring(reps: int, queries: int) -> dict[str, Any]:
    rng = random.Random(7)
    model = score.LinearModel.of([rng.uniform(-2, 2) for _ in range(FEATURES)], 0.5)
    keys, keygen_s = timed(ScoringKeys.make)
    public = keys.public_context()
    checked, load_s = timed(lambda: score.load_context(public))
    enc_s: list[float] = []
    eval_s: list[float] = []
    cold_s: list[float] = []
    dec_s: list[float] = []
    errors: list[float] = []
    made: list[bytes] = []
    answer = b""
    for _ in range(reps):
        x = [rng.uniform(-3, 3) for _ in range(FEATURES)]
        query, t = timed(lambda x=x: keys.encrypt_features(x))
        enc_s.append(t)
        answer, t = timed(lambda q=query: score.evaluate(model, checked, q))
        eval_s.append(t)
        _, t = timed(lambda q=query: score.evaluate(model, public, q))
        cold_s.append(t)
        value, t = timed(lambda a=answer: keys.read_score(a))
        dec_s.append(t)
        errors.append(abs(value - model.score(x)))
        made.append(query)
    qps = throughput(_init_score, (model, public, made), queries)
    return {
        "parameters": {
            "scheme": "CKKS",
            "poly_modulus_degree": SCORE_POLY_DEGREE,
            "coeff_modulus_bits": list(SCORE_COEFF_BITS),
            "scale_bits": 40,
            "security": "128-bit (HE Standard: <= 218 bits at N = 8192)",
        },
        "setup": {
            "features": FEATURES,
            "resolution": model.resolution,
            "keygen_s": round(keygen_s, 3),
            "context_check_s": round(load_s, 3),
            "queries": reps,
            "abs_error_max": max(errors),
            "abs_error_median": statistics.median(errors),
        },
        "latency": {
            "client_encrypt": summary(enc_s),
            "server_evaluate_warm": summary(eval_s),
            "server_evaluate_cold": summary(cold_s),
            "client_decrypt": summary(dec_s),
        },
        "bytes": {"public_context": len(public), "query": len(made[0]), "answer": len(answer)},
        "throughput": {"queries": queries, **qps},
    }


def table_lines(name: str, r: dict[str, Any]) -> list[str]:
    lat, size, qps = r["latency"], r["bytes"], r["throughput"]
    rows = [
        ("client encrypt", lat["client_encrypt"]),
        ("server evaluate (context kept)", lat["server_evaluate_warm"]),
        ("server evaluate (context parsed per call)", lat["server_evaluate_cold"]),
        ("client decrypt", lat["client_decrypt"]),
    ]
    lines = [f"## {name}", "", "| step | median | p95 |", "|---|---|---|"]
    lines += [f"| {label} | {v['median_ms']:.1f} ms | {v['p95_ms']:.1f} ms |" for label, v in rows]
    lines += [
        "",
        "| measure | value |",
        "|---|---|",
        f"| public context | {size['public_context'] / 2**20:.2f} MiB |",
        f"| query ciphertext | {size['query'] / 2**20:.2f} MiB |",
        f"| answer ciphertext | {size['answer'] / 2**20:.2f} MiB |",
        f"| server throughput, 1 worker | {qps['qps_1_workers']:.1f} queries/s |",
        f"| server throughput, 2 workers | {qps['qps_2_workers']:.1f} queries/s |",
        "",
    ]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--queries", type=int, default=40)
    args = parser.parse_args()
    verification = bench_verification(args.subjects, args.reps, args.queries)
    print("verification done", file=sys.stderr)
    scoring = bench_scoring(args.reps, args.queries * 3)
    measured_at = datetime.now(UTC).isoformat(timespec="seconds")
    report = {
        "benchmark": "he_products",
        "what": "encrypted verification (BFV) and encrypted scoring (CKKS): latency, sizes, qps",
        "measured_at": measured_at,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "kernel": platform.release(),
            "tenseal": ts.__version__,
        },
        "verification": verification,
        "scoring": scoring,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "he_products.json").write_text(json.dumps(report, indent=2) + "\n")
    v, s = verification["setup"], scoring["setup"]
    lines = [
        "# HE products: encrypted verification and encrypted scoring",
        "",
        f"Measured {measured_at} on {os.cpu_count()} cores, TenSEAL {ts.__version__}. "
        f"Verification: BFV N = {VERIFY_POLY_DEGREE}, "
        f"{verification['parameters']['coeff_modulus_bits']}-bit coefficient modulus, "
        f"60-bit plain modulus (128-bit security); {v['subjects']:,} subjects in "
        f"{2 ** v['bucket_bits']} buckets ({v['subjects_in_a_bucket']:,} in a sampled bucket, "
        f"largest {v['largest_bucket']:,}; each padded to {v['slots_per_query']:,} slots); "
        f"false-match bound {v['false_match_bound_per_query']:.1e} per query; "
        f"{v['answers_correct']}/{v['queries']} answers correct. Scoring: CKKS N = "
        f"{SCORE_POLY_DEGREE}, 60/40/40/60 bits, scale 2^40, {FEATURES} features; "
        f"largest |error| {s['abs_error_max']:.1e} (blur resolution {s['resolution']:.1e}). "
        f"Throughput: {verification['throughput']['queries']} verification and "
        f"{scoring['throughput']['queries']} scoring evaluations, context kept, over 1 and 2 "
        "spawned worker processes (one TenSEAL thread each).",
        "",
        *table_lines("Encrypted verification (BFV)", verification),
        *table_lines(f"Encrypted scoring (CKKS, {FEATURES} features)", scoring),
        f"Key generation on the client: {v['keygen_s']:.2f} s (BFV), "
        f"{s['keygen_s']:.2f} s (CKKS with Galois keys). Checking a public context on the "
        f"server: {v['context_check_s']:.2f} s (BFV), {s['context_check_s']:.2f} s (CKKS).",
    ]
    (RESULTS / "he_products.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
