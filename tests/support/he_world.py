"""Helpers of the privacy-computing product tests: a gateway with a firms dataset,
a grant over some of its columns, and a released model job.

``firms``: 240 enterprises keyed by a unified social credit code (the entity
column, a join key: pseudonymised in views). ``annual_tax`` is aggregate-only,
``months`` (social-insurance contribution months) plain, ``employees`` plain
but not granted, ``legal_rep`` a join key, ``name`` hidden. The policy's row
filter drops closed firms, so no product can answer about them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.grants.service import grant_service
from gateway.identity import create_account, issue_token
from gateway.jobs.model import Outcome, State, create_job, transition
from gateway.jobs.service import Files, record_outcome
from gateway.settings import GatewaySettings
from gateway.store.tables import audit_events
from sandbox.container.sdk.publish import publish_model_summary
from sandbox.fsutil import sha256_file
from sandbox.intake.policy import PolicyStore
from tests.support.engine import engine_problem

FIRMS = 240
GRANTED = ("annual_tax", "months", "legal_rep", "district")
FIRMS_POLICY = """\
dataset: firms
entity_column: credit_code
k: 5
row_filters:
  - {column: status, op: "!=", value: closed}
columns:
  credit_code: {class: identifier, level: 3, visibility: join_key}
  name: {class: identifier, level: 3, visibility: hidden}
  legal_rep: {class: identifier, level: 4, visibility: join_key}
  annual_tax: {class: sensitive, level: 3, visibility: aggregate_only}
  months: {class: attribute, level: 2, visibility: plain}
  employees: {class: attribute, level: 2, visibility: plain}
  district: {class: quasi_identifier, level: 2, visibility: group_key}
  status: {class: attribute, level: 1, visibility: plain}
"""
ACCOUNTS = {
    "op-1": {"operator"},
    "op-2": {"operator"},
    "op-rev": {"operator", "reviewer"},
    "rev-1": {"reviewer"},
    "bank-1": {"consumer"},
    "bank-2": {"consumer"},
    "provider-1": {"provider"},
    "admin-1": {"admin"},
    "auditor-1": {"auditor"},
}


def code(i: int) -> str:
    return f"91500000MA{i:08d}"


def tax(i: int) -> int:
    return 3_000 * i + 500


def months(i: int) -> int:
    return i % 60


def closed(i: int) -> bool:
    return i % 17 == 3


def firms_csv() -> str:
    rows = ["credit_code,name,legal_rep,annual_tax,months,employees,district,status"]
    for i in range(FIRMS):
        status = "closed" if closed(i) else "active"
        rows.append(
            f"{code(i)},Firm {i},{110101197001010000 + i},{tax(i)},{months(i)},"
            f"{5 + i % 90},d{i % 7},{status}"
        )
    return "\n".join(rows) + "\n"


@dataclass
class World:
    app: FastAPI
    client: TestClient
    tokens: dict[str, str]
    grant_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def h(self, who: str, **more: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", **more}

    @property
    def data_dir(self) -> Path:
        path: Path = self.app.state.settings.data_dir
        return path

    def events(self, type_: str) -> list[dict[str, Any]]:
        with self.app.state.engine.connect() as conn:
            rows = conn.execute(
                sa.select(audit_events.c.actor, audit_events.c.detail)
                .where(audit_events.c.type == type_)
                .order_by(audit_events.c.id)
            ).all()
        return [{"actor": r.actor, **r.detail} for r in rows]


def he_evaluator() -> str:
    """Calls are evaluated in the sandbox container wherever an engine answers (and
    always under CI, where a missing engine fails the test); in process elsewhere."""
    in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    return "sandbox" if in_ci or engine_problem() is None else "process"


def open_app(data_dir: Path, **settings: Any) -> FastAPI:
    db = f"sqlite:///{data_dir / 'gateway.sqlite'}"
    settings.setdefault("he_evaluator", he_evaluator())
    return create_app(GatewaySettings(data_dir=data_dir, database_url=db, **settings))


def make_world(data_dir: Path, **settings: Any) -> World:
    """A fresh gateway (not yet entered: use ``with world.client``)."""
    return populate(open_app(data_dir, **settings), data_dir)


def populate(app: FastAPI, data_dir: Path, *, grant_days: int = 365) -> World:
    """The accounts, the firms dataset with its policy and a grant of ``op-1`` for
    ``grant_days`` from the app's clock, in ``app`` (its client not entered)."""
    tokens = {}
    with app.state.engine.begin() as conn:
        for name, roles in ACCOUNTS.items():
            create_account(conn, name, roles, actor="test")
            tokens[name] = issue_token(conn, name, actor="test")
    src = data_dir / "firms.csv"
    src.write_text(firms_csv(), encoding="utf-8")
    version = app.state.registry.register(
        src, name="firms", entity_column="credit_code", provider="provider-1"
    )
    src.unlink()
    PolicyStore(data_dir).apply(
        FIRMS_POLICY, {c.name: c.type for c in version.columns}, dataset="firms", author="p"
    )
    now = app.state.clock()
    with app.state.engine.begin() as conn:
        grant = grant_service(app).create(
            conn,
            operator="op-1",
            scenario="credit verification",
            purpose="banks verify declared tax and contribution records",
            scopes=[("firms", GRANTED)],
            valid_from=now,
            valid_until=now + timedelta(days=grant_days),
            actor="provider-1",
            now=now,
        )
    return World(app, TestClient(app), tokens, grant.id)


def released_model_job(
    w: World, coefficients: dict[str, float], *, operator: str = "op-1", state: str = "released"
) -> str:
    """A job of ``operator`` under the world's grant that released ``model.json``,
    written by the SDK's ``publish_model_summary`` and recorded as the worker records it."""
    job_id = f"job-{len(w.extra):04d}{operator[-1]}"
    w.extra[job_id] = coefficients
    outputs = Files(w.data_dir / "work").outputs(job_id)
    outputs.mkdir(parents=True)
    publish_model_summary(
        "model.json", coefficients=coefficients, std_errors=None, n=400, df_resid=396,
        output_dir=outputs,
    )  # fmt: skip
    path = outputs / "model.json"
    entry = {"file": "model.json", "kind": "model", "sha256": sha256_file(path)}
    entry |= {"bytes": path.stat().st_size, "verdict": "PASS"}
    code = "from sandbox.sdk import publish_model_from  # the fit"
    with w.app.state.engine.begin() as conn:
        create_job(
            conn, job_id=job_id, operator=operator, grant_id=w.grant_id, kind="python",
            code=code, dummy=False, datasets=("firms",),
        )  # fmt: skip
        transition(conn, job_id, State.RUNNING, actor="system", outcome=Outcome.STARTED)
        transition(conn, job_id, State.CHECKING, actor="system", outcome=Outcome.RAN)
        record_outcome(conn, job_id, {"outputs": [entry], "verdict": "PASS"})
        final = State.RELEASED if state == "released" else State.HELD
        outcome = Outcome.CHECKS_PASSED if state == "released" else Outcome.CHECKS_REVIEW
        transition(conn, job_id, final, actor="system", outcome=outcome)
    return job_id
