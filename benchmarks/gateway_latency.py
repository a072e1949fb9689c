"""The deployed gateway under load, through HTTP with real containers.

The app is ``create_app(settings, build_runtime(settings))`` (in-process
FastAPI TestClient, worker pool as configured by the app: ``start_worker``
default concurrency) over a synthetic city registered with its example
policies; a data request is taken through formal review, provider review
and supply to a grant, then the operator submits the trivial SQL product
``SELECT district_code, count(*) AS n FROM residents GROUP BY 1``:

- latency: submit-to-terminal wall time (POST, then ``GET /v1/jobs/{id}``
  every 50 ms until the job leaves queued/running/checking), one job at a
  time, on each runtime (``DSR_RUNTIME`` set before ``build_runtime``; one app
  and one data directory per runtime), after one warm-up job;
- throughput (first runtime only): N jobs submitted back to back, jobs per
  minute from the first POST to the last job observed terminal (one
  ``GET /v1/jobs`` listing every 50 ms, so polling does not compete for CPU);
- polling: requests per second of ``GET /v1/jobs/{id}``, sequential.

Identical queries release identical cells, which the differencing ledger
lets through; nothing varies between jobs.

Writes ``benchmarks/results/gateway_latency.json`` and ``.md``.

    python benchmarks/gateway_latency.py [--jobs 10] [--queued 50] [--gets 2000]
                                         [--runtimes runc,runsc] [--residents 3000]
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.identity import create_account, issue_token
from gateway.jobs.worker import start_worker
from gateway.runtime import build_runtime
from gateway.settings import GatewaySettings
from sandbox.intake.policy import PolicyStore
from sandbox.intake.registry import Registry
from sandbox.synthetic import demo

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
POLICIES = HERE.parent / "policies" / "exposure"
ENTITY = {
    "residents": "person_id",
    "enterprises": "credit_code",
    "social_insurance": "person_id",
    "tax_payments": "credit_code",
}
PROVIDER = "city-bureau"
QUERY = "SELECT district_code, count(*) AS n FROM residents GROUP BY 1"
ACTIVE = ("queued", "running", "checking")
POLL_S = 0.05
JOB_TIMEOUT_S = 180


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values: list[float], digits: int = 3) -> dict[str, float | int]:
    return {
        "n": len(values),
        "median_s": round(statistics.median(values), digits),
        "p95_s": round(percentile(values, 0.95), digits),
        "min_s": round(min(values), digits),
        "max_s": round(max(values), digits),
    }


def worker_concurrency() -> int:
    default = inspect.signature(start_worker).parameters["concurrency"].default
    return int(default)


class Gateway:
    """One deployed gateway over its own data directory, with accounts and a grant."""

    def __init__(self, work: Path, city: dict[str, Path], runtime: str) -> None:
        data = work / f"var-{runtime}"
        registry, policies = Registry(data), PolicyStore(data)
        for name, path in city.items():
            version = registry.register(
                path, name=name, entity_column=ENTITY[name], provider=PROVIDER
            )
            text = (POLICIES / f"{name}.yaml").read_text()
            policies.apply(
                text, {c.name: c.type for c in version.columns}, dataset=name, author=PROVIDER
            )
        data.chmod(0o755)
        os.environ["DSR_RUNTIME"] = runtime  # read by SandboxSettings in build_runtime
        # One operator submits everything: let it fill the worker pool and queue all
        # the throughput jobs (this measures the gateway, not fair scheduling).
        settings = GatewaySettings(
            data_dir=data,
            database_url="",
            max_running_per_operator=worker_concurrency(),
            max_queued_per_operator=100_000,
        )
        self.app = create_app(settings, build_runtime(settings))
        self.tokens: dict[str, str] = {}
        with self.app.state.engine.begin() as conn:
            for name, role in (("op-1", "operator"), (PROVIDER, "provider"), ("admin-1", "admin")):
                create_account(conn, name, {role}, actor="bench")
                self.tokens[role] = issue_token(conn, name, actor="bench")
        self.client = TestClient(self.app)

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def grant(self) -> str:
        c = self.client
        made = c.post(
            "/v1/requests",
            headers=self.auth("operator"),
            json={
                "scenario": "district-population",
                "purpose": "population by district for service planning",
                "content": "resident counts",
                "use": "aggregate statistics",
                "datasets": [
                    {"dataset": "residents", "columns": ["person_id", "district_code", "gender"]}
                ],
            },
        )
        assert made.status_code == 201, made.text
        rid = made.json()["id"]
        r = c.post(
            f"/v1/requests/{rid}/formal-review",
            headers=self.auth("admin"),
            json={"decision": "pass"},
        )
        assert r.status_code == 200, r.text
        r = c.post(
            f"/v1/requests/{rid}/provider-review",
            headers=self.auth("provider"),
            json={"decision": "approve"},
        )
        assert r.status_code == 200, r.text
        until = (datetime.now(UTC) + timedelta(days=365)).isoformat()
        r = c.post(
            f"/v1/requests/{rid}/supply",
            headers=self.auth("provider"),
            json={"valid_until": until},
        )
        assert r.status_code == 201, r.text
        return str(r.json()["grant_id"])

    def submit(self, grant: str) -> str:
        r = self.client.post(
            "/v1/jobs",
            headers=self.auth("operator"),
            json={"grant": grant, "kind": "sql", "code": QUERY},
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def state(self, job: str) -> str:
        r = self.client.get(f"/v1/jobs/{job}", headers=self.auth("operator"))
        assert r.status_code == 200, r.text
        return str(r.json()["state"])

    def wait(self, job: str) -> str:
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while time.monotonic() < deadline:
            state = self.state(job)
            if state not in ACTIVE:
                return state
            time.sleep(POLL_S)
        raise SystemExit(f"job {job} did not finish within {JOB_TIMEOUT_S}s")


def released(state: str, what: str) -> None:
    if state != "released":
        raise SystemExit(f"{what}: job ended {state!r}, not released")


def latency(gw: Gateway, grant: str, runs: int) -> dict[str, float | int]:
    released(gw.wait(gw.submit(grant)), "warm-up")  # views built, image cached
    times: list[float] = []
    for i in range(runs):
        started = time.monotonic()
        state = gw.wait(gw.submit(grant))
        times.append(time.monotonic() - started)
        released(state, f"latency run {i}")
    return summary(times)


def throughput(gw: Gateway, grant: str, queued: int) -> dict[str, float | int | dict[str, int]]:
    started = time.monotonic()
    jobs = [gw.submit(grant) for _ in range(queued)]
    submitted_s = time.monotonic() - started
    pending = set(jobs)
    states: dict[str, int] = {}
    deadline = started + JOB_TIMEOUT_S + queued * 10
    while pending:
        if time.monotonic() > deadline:
            raise SystemExit(f"throughput: {len(pending)} jobs still active")
        listed = gw.client.get("/v1/jobs", headers=gw.auth("operator"))
        assert listed.status_code == 200, listed.text
        for body in listed.json():
            job, state = str(body["id"]), str(body["state"])
            if job in pending and state not in ACTIVE:
                pending.discard(job)
                states[state] = states.get(state, 0) + 1
        if pending:
            time.sleep(POLL_S)
    wall = time.monotonic() - started
    return {
        "jobs": queued,
        "submit_all_s": round(submitted_s, 3),
        "wall_s": round(wall, 3),
        "jobs_per_minute": round(queued * 60 / wall, 1),
        "states": states,
    }


def requests_per_second(gw: Gateway, job: str, n: int) -> dict[str, float | int]:
    times: list[float] = []
    started = time.monotonic()
    for _ in range(n):
        t0 = time.perf_counter()
        gw.state(job)
        times.append(time.perf_counter() - t0)
    wall = time.monotonic() - started
    return {
        "requests": n,
        "wall_s": round(wall, 3),
        "requests_per_second": round(n / wall, 1),
        "median_ms": round(statistics.median(times) * 1000, 3),
        "p95_ms": round(percentile(times, 0.95) * 1000, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10, help="timed jobs per runtime")
    parser.add_argument("--queued", type=int, default=50, help="jobs for the throughput run")
    parser.add_argument("--gets", type=int, default=2000, help="GET /v1/jobs/{id} requests")
    parser.add_argument("--runtimes", default="runc,runsc")
    parser.add_argument("--residents", type=int, default=3000)
    args = parser.parse_args()
    runtimes = args.runtimes.split(",")
    concurrency = worker_concurrency()
    work = Path(tempfile.mkdtemp(prefix="dsr-gateway-bench-"))
    work.chmod(0o755)
    previous_runtime = os.environ.get("DSR_RUNTIME")
    results: dict[str, dict[str, object]] = {}
    begun = time.monotonic()
    try:
        city = demo.generate_city(work / "src", residents=args.residents, enterprises=300, seed=2)
        for rt in runtimes:
            gw = Gateway(work, city, rt)
            with gw.client:  # lifespan: the worker pool starts and stops with it
                grant = gw.grant()
                out: dict[str, object] = {"latency": latency(gw, grant, args.jobs)}
                lat = out["latency"]
                assert isinstance(lat, dict)
                print(
                    f"{rt:6} submit->released median {lat['median_s']:.3f}s "
                    f"p95 {lat['p95_s']:.3f}s over {lat['n']} jobs",
                    file=sys.stderr,
                )
                if rt == runtimes[0]:
                    out["throughput"] = tp = throughput(gw, grant, args.queued)
                    print(
                        f"{rt:6} {tp['jobs']} queued jobs in {tp['wall_s']:.1f}s: "
                        f"{tp['jobs_per_minute']:.1f} jobs/min {tp['states']}",
                        file=sys.stderr,
                    )
                    job = gw.submit(grant)
                    released(gw.wait(job), "polling target")
                    out["get_job"] = rq = requests_per_second(gw, job, args.gets)
                    print(
                        f"{rt:6} GET /v1/jobs/{{id}}: {rq['requests_per_second']:.0f} req/s, "
                        f"median {rq['median_ms']:.2f} ms",
                        file=sys.stderr,
                    )
                results[rt] = out
            gw.app.state.engine.dispose()
    finally:
        if previous_runtime is None:
            os.environ.pop("DSR_RUNTIME", None)
        else:
            os.environ["DSR_RUNTIME"] = previous_runtime
        shutil.rmtree(work, ignore_errors=True)
    total_s = time.monotonic() - begun
    first = runtimes[0]
    report = {
        "benchmark": "gateway_latency",
        "what": "the deployed gateway through HTTP (in-process TestClient), real containers: "
        "submit-to-released latency, queued-job throughput, GET /v1/jobs/{id} rate",
        "query": QUERY,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "kernel": platform.release(),
        },
        "config": {
            "residents": args.residents,
            "jobs_per_runtime": args.jobs,
            "queued": args.queued,
            "gets": args.gets,
            "worker_concurrency": concurrency,
            "poll_interval_s": POLL_S,
            "database": "SQLite (embedded default)",
        },
        "total_s": round(total_s, 1),
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "gateway_latency.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Gateway latency (HTTP, real containers)",
        "",
        f"Measured {report['measured_at']} on {os.cpu_count()} cores; in-process TestClient, "
        f"SQLite store, worker concurrency {concurrency}, city of {args.residents} residents; "
        f"`{QUERY}`.",
        "",
        f"Submit to released, one job at a time, polling `GET /v1/jobs/{{id}}` every "
        f"{POLL_S * 1000:.0f} ms; {args.jobs} jobs per runtime after one warm-up.",
        "",
        "| runtime | median (s) | p95 (s) | min (s) | max (s) |",
        "|---|---|---|---|---|",
    ]
    for rt, out in results.items():
        lat = out["latency"]
        assert isinstance(lat, dict)
        lines.append(
            f"| {rt} | {lat['median_s']:.3f} | {lat['p95_s']:.3f} | "
            f"{lat['min_s']:.3f} | {lat['max_s']:.3f} |"
        )
    tp = results[first].get("throughput")
    rq = results[first].get("get_job")
    assert isinstance(tp, dict) and isinstance(rq, dict)
    states = ", ".join(f"{n} {s}" for s, n in sorted(tp["states"].items()))
    lines += [
        "",
        f"Throughput ({first}): {tp['jobs']} jobs submitted back to back "
        f"({tp['submit_all_s']:.2f} s to submit), last terminal after {tp['wall_s']:.1f} s: "
        f"**{tp['jobs_per_minute']:.1f} jobs/min** ({states}).",
        "",
        f"`GET /v1/jobs/{{id}}` ({first}, sequential, {rq['requests']} requests): "
        f"**{rq['requests_per_second']:.0f} req/s**, median {rq['median_ms']:.2f} ms, "
        f"p95 {rq['p95_ms']:.2f} ms (worker idle).",
        "",
        f"Whole run {total_s:.0f} s.",
    ]
    (RESULTS / "gateway_latency.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
