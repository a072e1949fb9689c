"""Grants for security tests: datasets of two providers, grants issued by the grant
service, a released job with files to download, the audit events, a console sign-in.

Plain functions over :func:`tests.support.gateway.make_gateway`'s app (accounts
``operator``, ``provider``, ``provider2``, ``admin``, ``consumer`` ...).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI

from gateway.grants.model import GrantRecord
from gateway.grants.service import grant_service
from gateway.jobs.model import Outcome, State, create_job, transition
from gateway.jobs.service import Files, record_outcome
from gateway.store.tables import audit_events
from sandbox.intake.policy import PolicyStore
from tests.support.gateway import Gateway

POLICY = """\
dataset: {name}
entity_column: person_id
k: 2
columns:
  person_id: {{class: identifier, level: 4, visibility: join_key}}
  name: {{class: identifier, level: 4, visibility: hidden}}
  age: {{class: quasi_identifier, level: 2, visibility: group_key}}
  income: {{class: sensitive, level: 3, visibility: aggregate_only}}
"""
ROWS = "person_id,name,age,income\n" + "".join(
    f"{110101199001010000 + i},name{i},{20 + i % 40},{1000 + 37 * i}\n" for i in range(30)
)
COLUMNS = ("age", "income")


def register_dataset(app: FastAPI, name: str, provider: str) -> None:
    """A small dataset of ``provider`` in the app's registry, its policy applied."""
    data_dir: Path = app.state.settings.data_dir
    src = data_dir / f"{name}.csv"
    src.write_text(ROWS, encoding="utf-8")
    version = app.state.registry.register(
        src, name=name, entity_column="person_id", provider=provider
    )
    src.unlink()
    PolicyStore(data_dir).apply(
        POLICY.format(name=name), {c.name: c.type for c in version.columns},
        dataset=name, author=provider,
    )  # fmt: skip


def issue(
    app: FastAPI,
    *,
    datasets: tuple[str, ...] = ("people",),
    operator: str = "operator",
    scenario: str = "elderly care planning",
    days: int = 365,
) -> GrantRecord:
    """A grant issued by the grant service, now, over ``COLUMNS`` of each dataset."""
    now = datetime.now(UTC)
    with app.state.engine.begin() as conn:
        return grant_service(app).create(
            conn,
            operator=operator,
            scenario=scenario,
            purpose="plan care homes by district",
            scopes=[(d, COLUMNS) for d in datasets],
            valid_until=now + timedelta(days=days),
            actor="admin",
            now=now,
        )


def state_of(app: FastAPI, grant_id: str) -> GrantRecord:
    with app.state.engine.connect() as conn:
        return grant_service(app).get(conn, grant_id)


def events(app: FastAPI, kind: str) -> list[dict[str, Any]]:
    """The audit events of ``kind``, oldest first: actor, grant, datasets and detail."""
    with app.state.engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_events).where(audit_events.c.type == kind).order_by(audit_events.c.id)
        ).all()
    return [
        {"actor": r.actor, "grant_id": r.grant_id, "datasets": r.datasets, **r.detail} for r in rows
    ]


def serve_outputs(app: FastAPI) -> Path:
    """Let the app serve released files (the download routes need a runtime's work
    directory; no worker is started: the app's lifespan has run without one)."""
    work: Path = app.state.settings.data_dir / "work"
    app.state.runtime = SimpleNamespace(work_dir=work)
    return work


def released_job(
    app: FastAPI, grant_id: str, *, operator: str = "operator", files: dict[str, bytes]
) -> str:
    """A job of ``operator`` under ``grant_id`` that released ``files``, recorded as the
    worker records one (outputs on disk with their hashes in the outcome)."""
    job_id = "job-" + hashlib.sha256(f"{grant_id}{sorted(files)}".encode()).hexdigest()[:16]
    outputs = Files(serve_outputs(app)).outputs(job_id)
    outputs.mkdir(parents=True)
    entries = []
    for name, content in files.items():
        (outputs / name).write_bytes(content)
        digest = hashlib.sha256(content).hexdigest()
        entries.append({"file": name, "kind": "table", "sha256": digest,
                        "bytes": len(content), "verdict": "PASS"})  # fmt: skip
    with app.state.engine.begin() as conn:
        datasets = grant_service(app).get(conn, grant_id).datasets
        create_job(
            conn, job_id=job_id, operator=operator, grant_id=grant_id, kind="sql",
            code="SELECT age, count(*) AS n FROM people GROUP BY 1", dummy=False,
            datasets=datasets,
        )  # fmt: skip
        transition(conn, job_id, State.RUNNING, actor="system", outcome=Outcome.STARTED)
        transition(conn, job_id, State.CHECKING, actor="system", outcome=Outcome.RAN)
        record_outcome(conn, job_id, {"outputs": entries, "verdict": "PASS"})
        transition(conn, job_id, State.RELEASED, actor="system", outcome=Outcome.CHECKS_PASSED)
    return job_id


def console_login(gw: Gateway, who: str) -> str:
    """Sign ``who`` in to the console through its form; the session's CSRF token."""
    gw.client.cookies.clear()
    form = gw.client.get("/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token, form.text[:500]
    done = gw.client.post(
        "/console/login",
        data={"token": gw.tokens[who], "csrf": token.group(1), "next": "/console/"},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    page = gw.client.get("/console/")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf, page.text[:500]
    return csrf.group(1)
