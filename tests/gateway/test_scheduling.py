"""Fair scheduling without a sandbox: the order ``JobWorker.claim`` takes jobs in, the
running cap per operator (also under concurrent claims), and the queued cap at
submission (429 with ``Retry-After``, audited).

Fast: no container runs. Jobs are queued and finished by hand through the state
table; the store runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine

from gateway.app import create_app
from gateway.identity import create_account, issue_token
from gateway.jobs.model import Job, Outcome, State, create_job, get_job, transition
from gateway.jobs.service import SYSTEM
from gateway.jobs.worker import JobRuntime, JobWorker, turns
from gateway.scope.policy import ScopePolicy
from gateway.settings import GatewaySettings
from gateway.store.tables import audit_events
from sandbox.views.build import DatasetScope, Grant

OPERATORS = ("op-a", "op-b", "op-c")
_ids = iter(range(1, 1_000_000))


# -- plain helpers -------------------------------------------------------------------------


class NoBackend:
    """A backend with nothing on it: claims never reach a sandbox."""

    name = "none"

    def sandboxes(self) -> list[str]:
        return []

    def reconcile(self, keep: Any = (), only: Any = None) -> list[str]:
        return []


def worker(engine: Engine, tmp_path: Path, max_running: int = 1) -> JobWorker:
    """A worker for its claims only: no pipeline, no views, no ledger, no grants."""
    runtime = JobRuntime(None, None, None, NoBackend(), tmp_path / "work")
    return JobWorker(engine, runtime, Grants(), max_running_per_operator=max_running)


def accounts(engine: Engine, *names: str) -> None:
    with engine.begin() as conn:
        for name in names:
            create_account(conn, name, {"operator"}, actor="test")


def queue(engine: Engine, operator: str, n: int = 1, *, dummy: bool = False) -> list[str]:
    """Queue ``n`` jobs of ``operator``, in order; their ids sort in submission order."""
    made = []
    with engine.begin() as conn:
        for _ in range(n):
            job_id = f"job-{next(_ids):06d}-{operator}"
            create_job(
                conn, job_id=job_id, operator=operator, grant_id=f"g-{operator}", kind="python",
                code="print(1)", dummy=dummy, datasets=("residents",),
            )  # fmt: skip
            made.append(job_id)
    return made


def finish(engine: Engine, job_id: str) -> None:
    with engine.begin() as conn:
        transition(conn, job_id, State.CHECKING, actor=SYSTEM, outcome=Outcome.RAN)
        transition(conn, job_id, State.FAILED, actor=SYSTEM, outcome=Outcome.JOB_FAILED)


def claimed(w: JobWorker) -> Job | None:
    job = w.claim()
    assert job is None or job.state == State.RUNNING
    return job


def operator_of(job: Job | None) -> str | None:
    return job.operator if job is not None else None


@pytest.fixture
def ops(engine: Engine) -> Engine:
    accounts(engine, *OPERATORS)
    return engine


# -- the claim order --------------------------------------------------------------------------


def test_operators_take_turns_one_job_each(ops: Engine, tmp_path: Path) -> None:
    # op-a floods first, then op-b, then op-c: the oldest job first would run all
    # of op-a's before anyone else's.
    for operator in OPERATORS:
        queue(ops, operator, 3)
    w = worker(ops, tmp_path, max_running=3)
    order = []
    while (job := claimed(w)) is not None:
        order.append(job.operator)
        finish(ops, job.id)
    assert order == ["op-a", "op-b", "op-c"] * 3


def test_within_an_operator_the_oldest_job_first(ops: Engine, tmp_path: Path) -> None:
    mine = queue(ops, "op-a", 3)
    w = worker(ops, tmp_path)
    taken = []
    while (job := claimed(w)) is not None:
        taken.append(job.id)
        finish(ops, job.id)
    assert taken == mine


def test_an_operator_who_never_ran_goes_before_one_who_did(ops: Engine, tmp_path: Path) -> None:
    w = worker(ops, tmp_path, max_running=5)
    queue(ops, "op-a", 4)
    first = claimed(w)
    assert operator_of(first) == "op-a"
    queue(ops, "op-c", 1)  # arrives later than op-a's queued jobs, but has not had a turn
    assert operator_of(claimed(w)) == "op-c"
    assert operator_of(claimed(w)) == "op-a"


def test_the_running_cap_skips_an_operator_even_with_a_worker_idle(
    ops: Engine, tmp_path: Path
) -> None:
    w = worker(ops, tmp_path)  # at most one job per operator at once
    a1, a2, _ = queue(ops, "op-a", 3)
    queue(ops, "op-b", 1)
    assert (job := claimed(w)) is not None and job.id == a1
    assert operator_of(claimed(w)) == "op-b"
    assert claimed(w) is None  # op-a is at its cap, op-b has nothing queued
    # A job being checked still holds its operator's place.
    with ops.begin() as conn:
        transition(conn, a1, State.CHECKING, actor=SYSTEM, outcome=Outcome.RAN)
    assert claimed(w) is None
    with ops.begin() as conn:
        transition(conn, a1, State.FAILED, actor=SYSTEM, outcome=Outcome.JOB_FAILED)
    assert (job := claimed(w)) is not None and job.id == a2


def test_a_higher_cap_lets_an_operator_use_more_workers(ops: Engine, tmp_path: Path) -> None:
    w = worker(ops, tmp_path, max_running=2)
    queue(ops, "op-a", 3)
    assert [operator_of(claimed(w)) for _ in range(3)] == ["op-a", "op-a", None]


def test_dummy_runs_count_against_the_cap(ops: Engine, tmp_path: Path) -> None:
    w = worker(ops, tmp_path)
    queue(ops, "op-a", 1, dummy=True)
    queue(ops, "op-a", 1)
    assert (job := claimed(w)) is not None and job.dummy
    assert claimed(w) is None


def test_turns_lists_only_operators_with_room(ops: Engine, tmp_path: Path) -> None:
    queue(ops, "op-a", 2)
    queue(ops, "op-b", 1)
    with ops.connect() as conn:
        assert turns(conn, 1) == ["op-a", "op-b"]
    assert operator_of(worker(ops, tmp_path).claim()) == "op-a"
    with ops.connect() as conn:
        assert turns(conn, 1) == ["op-b"]
        assert turns(conn, 2) == ["op-b", "op-a"]  # op-a has started most recently


def test_concurrent_claims_never_pass_the_cap(ops: Engine, tmp_path: Path) -> None:
    """Eight workers (as in as many processes on PostgreSQL) claim at once: the count
    of running jobs each claim decided on cannot be stale."""
    queue(ops, "op-a", 8)
    queue(ops, "op-b", 8)
    workers = [worker(ops, tmp_path, max_running=2) for _ in range(8)]
    start = threading.Barrier(len(workers))
    got: list[Job | None] = []
    errors: list[BaseException] = []

    def claim(w: JobWorker) -> None:
        try:
            start.wait()
            got.append(w.claim())
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=claim, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    taken = sorted(j.operator for j in got if j is not None)
    assert taken == ["op-a", "op-a", "op-b", "op-b"]
    with ops.connect() as conn:
        running = conn.execute(sa.text("SELECT count(*) FROM jobs WHERE state = 'running'"))
        assert running.scalar_one() == 4


# -- the queued cap at submission --------------------------------------------------------------

PY = "print(1)\n"


class Grants:
    def __init__(self) -> None:
        self.grants: dict[str, Grant] = {}

    def __call__(self, conn: Connection, grant_id: str) -> Grant:
        if grant_id not in self.grants:
            raise LookupError(f"grant {grant_id} is not active")
        return self.grants[grant_id]


def grant(grant_id: str, operator: str) -> Grant:
    return Grant(
        grant_id=grant_id,
        operator=operator,
        scenario="population",
        scopes=(DatasetScope("residents", ("district_code", "gender")),),
        key=(grant_id.encode() * 8)[:32].ljust(32, b"k"),
        key_id=f"{grant_id}-k1",
    )


@pytest.fixture
def capped(store_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """A gateway without a sandbox (nothing runs) whose operators may queue 3 jobs."""
    settings = GatewaySettings(
        data_dir=tmp_path / "var", database_url=store_url, max_queued_per_operator=3
    )
    app = create_app(settings)
    grants = Grants()
    app.state.grant_resolver = grants
    app.state.scope = ScopePolicy.from_engine(app.state.engine)
    headers = {}
    with app.state.engine.begin() as conn:
        for name in ("op-a", "op-b"):
            create_account(conn, name, {"operator"}, actor="test")
            headers[name] = {"Authorization": f"Bearer {issue_token(conn, name, actor='test')}"}
    for name in ("op-a", "op-b"):
        g = grant(f"g-{name}", name)
        grants.grants[g.grant_id] = g
        app.state.scope.grant_rules(g.grant_id, name, g.scopes, ("read", "aggregate"))
    with TestClient(app) as client:
        yield client, headers
    app.state.engine.dispose()


def submit(client: TestClient, headers: dict[str, str], who: str, dummy: bool = False) -> Any:
    body = {"grant": f"g-{who}", "kind": "python", "code": PY, "dummy": dummy}
    return client.post("/v1/jobs", headers=headers[who], json=body)


def refusals(client: TestClient) -> list[dict[str, Any]]:
    with client.app.state.engine.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(
            sa.select(audit_events.c.actor, audit_events.c.detail)
            .where(audit_events.c.type == "job.refused")
            .order_by(audit_events.c.id)
        ).all()
    return [{"actor": r.actor, **r.detail} for r in rows]


def test_a_full_queue_is_refused_with_429_and_audited(
    capped: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = capped
    queued = [submit(client, headers, "op-a", dummy=i == 0) for i in range(3)]  # dummy counts
    assert [r.status_code for r in queued] == [201, 201, 201]
    refused = submit(client, headers, "op-a")
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["Retry-After"]) > 0
    assert "at most 3 jobs waiting" in refused.json()["detail"]
    assert "nothing was queued" in refused.json()["detail"]
    mine = client.get("/v1/jobs", headers=headers["op-a"]).json()
    assert len(mine) == 3
    (event,) = refusals(client)
    assert event["actor"] == "op-a" and event["findings"] == [{"rule": "queue_full"}]
    assert event["queued"] == 3 and event["limit"] == 3 and event["dummy"] is False
    assert event["job"] not in {j["id"] for j in mine}
    # Another operator's queue is their own.
    assert submit(client, headers, "op-b").status_code == 201
    # Cancelling one makes room again.
    cancel = client.post(f"/v1/jobs/{mine[0]['id']}/cancel", headers=headers["op-a"])
    assert cancel.status_code == 200
    assert submit(client, headers, "op-a").status_code == 201
    assert submit(client, headers, "op-a").status_code == 429
    assert len(refusals(client)) == 2


def test_concurrent_submissions_do_not_overshoot_the_queue(
    capped: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = capped
    start = threading.Barrier(6)
    codes: list[int] = []

    def one() -> None:
        start.wait()
        codes.append(submit(client, headers, "op-a").status_code)

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(codes) == [201, 201, 201, 429, 429, 429]
    with client.app.state.engine.connect() as conn:  # type: ignore[attr-defined]
        states = [get_job(conn, j["id"]).state for j in client.get(
            "/v1/jobs", headers=headers["op-a"]).json()]  # fmt: skip
    assert states == [State.QUEUED] * 3
