"""What evaluating in the sandbox container costs: per-call latency of a verification call.

The same verification table (20,000 subjects) and BFV query, evaluated
``--reps`` times by the gateway's evaluators (``gateway.he.sandboxed``): in
the gateway's process, and in the sandbox container on runc and on runsc
(gVisor). The container is started and warmed by one call first (its first
call parses the context and loads the table); the medians are of warm calls,
as a long-lived evaluator serves them. Client work is not timed.

Writes ``benchmarks/results/he_gateway.json`` and ``.md``.

    python benchmarks/he_gateway.py [--reps 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.he.contexts import ContextStore  # noqa: E402
from gateway.he.sandboxed import Evaluator, InProcess, Sandboxed  # noqa: E402
from sandbox.container.he.verify import Band, build_table  # noqa: E402
from sandbox.he.client import VerificationKeys  # noqa: E402
from sandbox.settings import SandboxSettings  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SUBJECTS = 20_000


def measure(ev: Evaluator, keys: VerificationKeys, reps: int) -> dict[str, float]:
    table = build_table(
        "hp-bench", [(f"s{i}", i % 4) for i in range(SUBJECTS)], Band("v", (1, 2, 3))
    )
    queries = [
        keys.encrypt_claim("hp-bench", f"s{i}", i % 4, bucket_bits=table.bucket_bits)
        for i in range(reps + 1)
    ]
    started = time.perf_counter()
    assert keys.read_answer(ev.evaluate_verify(table, "view", "ctx-bench", queries[0]))
    first = time.perf_counter() - started
    times = []
    for q in queries[1:]:
        started = time.perf_counter()
        answer = ev.evaluate_verify(table, "view", "ctx-bench", q)
        times.append(time.perf_counter() - started)
        assert keys.read_answer(answer)
    return {"first_s": first, "median_ms": 1000 * statistics.median(times)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=10)
    args = parser.parse_args()
    keys = VerificationKeys.make()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        contexts = ContextStore(Path(tmp) / "contexts")
        contexts.root.mkdir()
        contexts.path("ctx-bench").write_bytes(keys.public_context())
        results["process"] = measure(InProcess(contexts), keys, args.reps)
        for runtime in ("runc", "runsc"):
            ev = Sandboxed(Path(tmp) / runtime, contexts, SandboxSettings(runtime=runtime))
            try:
                results[runtime] = measure(ev, keys, args.reps)
            finally:
                ev.close()
    report = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "subjects": SUBJECTS,
        "reps": args.reps,
        "results": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "he_gateway.json").write_text(json.dumps(report, indent=2) + "\n")
    base = results["process"]["median_ms"]
    lines = [
        "# HE products: evaluation in the sandbox container",
        "",
        f"Measured {report['measured_at']} on {report['cores']} cores: one BFV verification "
        f"call (N = 16384, {SUBJECTS:,} subjects), median of {args.reps} warm calls through "
        "the gateway's evaluator; the first call includes starting the container, parsing "
        "the context and loading the table.",
        "",
        "| evaluator | median per call | added | first call |",
        "|---|---|---|---|",
    ]
    names = {
        "process": "in the gateway's process",
        "runc": "sandbox, runc",
        "runsc": "sandbox, runsc",
    }
    for key, r in results.items():
        added = "" if key == "process" else f"+{r['median_ms'] - base:.1f} ms"
        lines.append(f"| {names[key]} | {r['median_ms']:.1f} ms | {added} | {r['first_s']:.2f} s |")
    (RESULTS / "he_gateway.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
