"""Checking is bounded: it runs outside the gateway, within memory and time limits.

Attack: a job whose outputs are costly to check (a GROUP BY with thousands
of tiny groups, each compared with every other by the differencing ledger)
grew the gateway past 20 GB and never finished. Now the checker is a
separate process (``sandbox/judge/bounded.py``) killed at its limits; the job
ends blocked with a plain reason; the gateway keeps answering, and its own
memory does not grow with the job.
"""

from __future__ import annotations

import csv
import io
import random
import resource
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.runtime import build_runtime
from gateway.settings import GatewaySettings
from sandbox.errors import CheckError
from sandbox.judge.bounded import BoundedPool, CheckLimitExceeded, Limits
from tests.support.gateway import Gateway, make_gateway
from tests.support.hostbackend import HostBackend

# -- the pool ----------------------------------------------------------------------------


def allocate(megabytes: int) -> int:
    """Hold ``megabytes`` of memory for a while (called in a checker process)."""
    block = bytearray(megabytes * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1
    time.sleep(2)
    return len(block)


def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def fail() -> None:
    raise ValueError("a checker's own error comes back as itself")


@pytest.fixture(scope="module")
def pool() -> Iterator[BoundedPool]:
    p = BoundedPool(size=1)
    yield p
    p.close()


def test_a_checker_past_its_memory_is_killed_and_replaced(pool: BoundedPool) -> None:
    with pytest.raises(CheckLimitExceeded, match="MiB of memory"):
        pool.call(allocate, 900, limits=Limits(memory_bytes=400 * 1024**2, seconds=60))
    # The next call gets a fresh checker.
    assert pool.call(sleep, 0.01, limits=Limits(seconds=60)) == 0.01


def test_a_checker_past_its_time_is_killed(pool: BoundedPool) -> None:
    started = time.monotonic()
    with pytest.raises(CheckLimitExceeded, match="longer than 1 seconds"):
        pool.call(sleep, 30, limits=Limits(seconds=1))
    assert time.monotonic() - started < 20
    assert pool.call(sleep, 0.01) == 0.01


def test_errors_come_back_and_the_checker_stays(pool: BoundedPool) -> None:
    with pytest.raises(ValueError, match="comes back as itself"):
        pool.call(fail)
    assert pool.call(sleep, 0.01) == 0.01


def test_closing_one_pool_leaves_another_working() -> None:
    first, second = BoundedPool(size=1), BoundedPool(size=1)
    try:
        assert first.call(sleep, 0.01) == 0.01 and second.call(sleep, 0.01) == 0.01
        first.close()
        first.close()  # idempotent
        with pytest.raises(CheckError, match="pool is closed"):
            first.call(sleep, 0.01)
        assert not second.closed and second.call(sleep, 0.01) == 0.01
    finally:
        first.close()
        second.close()


def test_a_worker_returning_to_a_closed_pool_is_ended() -> None:
    pool = BoundedPool(size=1)
    running = threading.Thread(target=pool.call, args=(sleep, 1.0))
    running.start()
    time.sleep(0.5)
    pool.close()  # while the call runs: its worker is ended when it comes back
    running.join()
    assert pool.closed and pool._free == []


# -- through the gateway -----------------------------------------------------------------

POLICY = """dataset: people
entity_column: person_id
k: 10
small_cell_action: block
columns:
  person_id: {class: identifier, level: 4, visibility: join_key, domain: {format: uuid}}
  district: {class: quasi_identifier, level: 2, visibility: group_key,
             domain: {min: 0, max: 99, integer: true}}
  birth_year: {class: quasi_identifier, level: 2, visibility: group_key,
               domain: {min: 1930, max: 2020, integer: true}}
  gender: {class: quasi_identifier, level: 2, visibility: group_key, domain: {categories: [f, m]}}
  income: {class: sensitive, level: 3, visibility: aggregate_only, domain: {min: 0, max: 1000000}}
"""
COLUMNS = ["person_id", "district", "birth_year", "gender", "income"]
MANY_GROUPS = "SELECT district, birth_year, gender, count(*) AS n FROM people GROUP BY ALL"


def _people(n: int = 20_000) -> bytes:
    rng = random.Random(7)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(COLUMNS)
    for _ in range(n):
        w.writerow(
            [
                uuid.UUID(int=rng.getrandbits(128)),
                rng.randrange(100),
                rng.randrange(1930, 2021),
                rng.choice("fm"),
                rng.randrange(0, 1_000_000),
            ]
        )
    return out.getvalue().encode()


def _served(root: Path, **settings: object) -> Iterator[tuple[Gateway, str]]:
    data = root / "var"
    runtime = build_runtime(
        GatewaySettings(data_dir=data, database_url="", **settings),  # type: ignore[arg-type]
        backend=HostBackend(lambda _: {}),
    )
    with make_gateway(data, runtime, **settings) as gw:
        r = gw.upload("provider", "people", "people.csv", _people(), "person_id")
        assert r.status_code == 201, r.text
        r = gw.put_policy("provider", "people", POLICY)
        assert r.status_code == 200, r.text
        grant = gw.grant_through_requests(
            "operator", "provider", "bounded checking", [{"dataset": "people", "columns": COLUMNS}]
        )
        yield gw, grant


def _submit_and_poll(gw: Gateway, grant: str, sql: str) -> tuple[dict[str, object], list[int]]:
    """Submit, then poll the job as an operator would until it ends; every poll's status."""
    r = gw.post("operator", "/v1/jobs", json={"grant": grant, "kind": "sql", "code": sql})
    assert r.status_code in (201, 202), r.text
    job_id = r.json()["id"]
    statuses: list[int] = []
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        got = gw.get("operator", f"/v1/jobs/{job_id}")
        statuses.append(got.status_code)
        if got.status_code == 200 and got.json()["state"] not in ("queued", "running", "checking"):
            return got.json(), statuses
        time.sleep(0.05)
    raise AssertionError("the job did not end")


def _health_while(stop: threading.Event, gw: Gateway, seen: list[int]) -> None:
    while not stop.is_set():
        seen.append(gw.client.get("/v1/health").status_code)
        time.sleep(0.05)


@pytest.mark.timeout(900)
def test_the_many_groups_query_is_checked_within_limits_while_the_gateway_answers(
    tmp_path: Path,
) -> None:
    for gw, grant in _served(tmp_path):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        stop, health = threading.Event(), []  # type: ignore[var-annotated]
        watcher = threading.Thread(target=_health_while, args=(stop, gw, health))
        watcher.start()
        try:
            job, polls = _submit_and_poll(gw, grant, MANY_GROUPS)
        finally:
            stop.set()
            watcher.join()
        assert job["state"] == "blocked", job
        assert set(polls) == {200} and set(health) == {200}
        assert len(polls) > 1
        # The gateway's own memory did not take the checking (this process serves it).
        grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        assert grown_kib < 512 * 1024, f"the serving process grew by {grown_kib // 1024} MiB"


@pytest.mark.timeout(900)
def test_checking_past_its_limits_ends_the_job_blocked_with_a_plain_reason(
    tmp_path: Path,
) -> None:
    for gw, grant in _served(tmp_path, check_seconds=0.05):
        job, polls = _submit_and_poll(gw, grant, MANY_GROUPS)
        assert set(polls) == {200}
        assert job["state"] == "blocked", job
        rules = set(job["findings_by_rule"])  # type: ignore[arg-type]
        assert "check_limits" in rules, job
        text = str(job)
        assert "Traceback" not in text and "/var/" not in text
