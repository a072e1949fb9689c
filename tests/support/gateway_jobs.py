"""A gateway whose worker runs jobs against the synthetic city, for job and review tests.

Plain functions and small classes (the fixtures that use them are in
``tests/gateway/conftest.py``): ``open_gateway`` builds the app from
``create_app`` with an account per role, a grant resolver over ``Grant``
objects built by the test, and the job runtime given; ``runtime_for`` makes
that runtime over a city (``tests.support.city``) on any backend, the Docker
one or the fake. ``Gateway`` submits, waits and reads the audit events;
``vote`` casts a review vote.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection

from gateway.app import create_app
from gateway.identity import create_account, issue_token
from gateway.jobs.worker import JobRuntime
from gateway.scope.policy import ScopePolicy
from gateway.settings import GatewaySettings
from gateway.store.tables import audit_events
from sandbox.judge.fingerprints import FingerprintStore
from sandbox.judge.ledger import Ledger
from sandbox.judge.ledger_keys import EntityMaps, ledger_secret
from sandbox.pipeline import Pipeline
from sandbox.run.backends.base import Backend, Limits
from sandbox.views.build import DatasetScope, Grant
from tests.support.city import RESIDENT_COLUMNS, City

WAITING = {"queued", "running", "checking"}


def wait_for_job(
    client: TestClient, headers: dict[str, str], job_id: str, timeout: float = 120.0
) -> dict[str, Any]:
    """Poll ``GET /v1/jobs/{id}`` until the job leaves the queue, the sandbox and the checks."""
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if job["state"] not in WAITING:
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.2)


SQL_RELEASED = "SELECT district_code, count(*) AS residents FROM residents GROUP BY 1"
PY_HEAD = "from sandbox.sdk import connect, publish_table\ncon = connect()\n"
PY_HELD = PY_HEAD + (
    'df = con.sql("SELECT district_code, count(*) AS n FROM residents GROUP BY 1").df()\n'
    'publish_table("districts.csv", df, group_by=["district_code"], measures=[], count="n")\n'
)
PY_DUMMY = PY_HEAD + 'print("rows:", con.sql("SELECT count(*) FROM residents").fetchall()[0][0])\n'
# Row-level output: the raw rows of the view, blocked (no SQL cells for the ledger).
PY_BLOCKED = PY_HEAD + (
    'df = con.sql("SELECT district_code, gender, birth_date FROM residents LIMIT 40").df()\n'
    'publish_table("rows.csv", df, group_by=list(df.columns), measures=[])\n'
)

ACCOUNTS = {
    "op-1": {"operator"},
    "op-2": {"operator"},
    "op-rev": {"operator", "reviewer"},
    "rev-1": {"reviewer"},
    "rev-2": {"reviewer"},
    **{f"{r}-1": {r} for r in ("admin", "auditor", "provider", "consumer")},
}


class Grants:
    """A grant resolver over ``Grant`` objects; inactive grants raise, as the real one does."""

    def __init__(self) -> None:
        self.grants: dict[str, Grant] = {}
        self.inactive: set[str] = set()

    def __call__(self, conn: Connection, grant_id: str) -> Grant:
        if grant_id not in self.grants or grant_id in self.inactive:
            raise LookupError(f"grant {grant_id} is not active")
        return self.grants[grant_id]


@dataclass
class Gateway:
    app: FastAPI
    client: TestClient
    tokens: dict[str, str]
    grants: Grants

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def grant(self, grant: Grant, actions: tuple[str, ...] = ("read", "aggregate", "join")) -> None:
        """Issue ``grant``: resolvable, with its scope lines."""
        self.grants.grants[grant.grant_id] = grant
        self.app.state.scope.grant_rules(grant.grant_id, grant.operator, grant.scopes, actions)

    def submit(self, who: str, grant: str, kind: str, code: str, **extra: Any) -> dict[str, Any]:
        body = {"grant": grant, "kind": kind, "code": code, **extra}
        response = self.client.post("/v1/jobs", headers=self.h(who), json=body)
        assert response.status_code == 201, response.text
        job: dict[str, Any] = response.json()
        return job

    def wait(self, who: str, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
        return wait_for_job(self.client, self.h(who), job_id, timeout)

    def events(self, type_: str) -> list[dict[str, Any]]:
        with self.app.state.engine.connect() as conn:
            rows = conn.execute(
                sa.select(audit_events.c.actor, audit_events.c.detail)
                .where(audit_events.c.type == type_)
                .order_by(audit_events.c.id)
            ).all()
        return [{"actor": r.actor, **r.detail} for r in rows]


def open_gateway(
    store_url: str, data_dir: Path, runtime: JobRuntime | None, *, autostart: bool = True
) -> Gateway:
    app = create_app(GatewaySettings(data_dir=data_dir, database_url=store_url))
    grants = Grants()
    app.state.grant_resolver = grants
    app.state.runtime = runtime
    app.state.worker_autostart = autostart
    app.state.scope = ScopePolicy.from_engine(app.state.engine)
    tokens = {}
    with app.state.engine.begin() as conn:
        for name, roles in ACCOUNTS.items():
            create_account(conn, name, roles, actor="test")
            tokens[name] = issue_token(conn, name, actor="test")
    return Gateway(app, TestClient(app), tokens, grants)


_runs = itertools.count()


def runtime_for(city: City, backend: Backend) -> JobRuntime:
    """A pipeline over the city with a ledger and work directory of its own."""
    base = city.root / f"run-{next(_runs)}"
    base.mkdir(mode=0o755)
    data, cache = city.root / "data", city.root / "cache"
    ledger = Ledger(base / "ledger.sqlite")
    pipeline = Pipeline(
        views=city.views,
        dummy=city.dummy,
        backend=backend,
        ledger=ledger,
        fingerprints=FingerprintStore(data),
        entity_maps=EntityMaps(cache, ledger_secret(data)),
        work_dir=base / "work",
        limits=Limits(wall_seconds=120, memory_bytes=1024 * 1024 * 1024),
    )
    return JobRuntime(pipeline, city.views, ledger, backend, base / "work")


def residents_grant(grant_id: str, operator: str) -> Grant:
    return Grant(
        grant_id=grant_id,
        operator=operator,
        scenario="population",
        scopes=(DatasetScope("residents", RESIDENT_COLUMNS),),
        key=(grant_id.encode() * 8)[:32].ljust(32, b"k"),
        key_id=f"{grant_id}-k1",
    )


def vote(
    g: Gateway, who: str, job_id: str, decision: str, reason: str = "checked the cells"
) -> Any:
    return g.client.post(
        f"/v1/reviews/{job_id}/votes",
        headers=g.h(who),
        json={"decision": decision, "reason": reason},
    )
