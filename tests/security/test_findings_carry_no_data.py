"""Findings tell an operator the rule and the place by position, never what the job chose.

A job chooses its output file names, its column names and (through the data)
the counts a rule's message would quote. Held and blocked jobs release
nothing, so none of that may reach the operator: not in the job's status,
the list, the outputs listing, the logs, the errors, the console or ``dsr``.
The attacks put a canary (``zq53210``: no hex digit, so no id or hash holds
it by chance) into file names, column names and SQL aliases, under
``auto_release: checked`` and ``sql_only``, and look for it everywhere the
operator reads. Reviewers still see the file names and full messages. A job
with thousands of findings answers a status poll in a few KiB.

Jobs run through ``tests/support/hostbackend.py``: the trusted side is the
subject here, not the container.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gateway.cli import app as dsr
from gateway.client import http
from gateway.client.config import Target
from gateway.jobs.findings import GENERIC, MESSAGES, SHOWN, STORED
from gateway.jobs.service import get_outcome
from gateway.jobs.worker import JobWorker, app_scope
from gateway.runtime import build_runtime
from gateway.settings import GatewaySettings
from sandbox.intake.policy import PolicyStore
from sandbox.sdk import publish_table, publish_text
from tests.support.gateway import Gateway, make_gateway
from tests.support.grants import ROWS, console_login, issue
from tests.support.hostbackend import HostBackend

CANARY = "zq53210"
POLICY = """\
dataset: {name}
entity_column: person_id
k: 5
small_cell_action: block
auto_release: {mode}
columns:
  person_id: {{class: identifier, level: 4, visibility: join_key}}
  name: {{class: identifier, level: 4, visibility: hidden}}
  age: {{class: quasi_identifier, level: 2, visibility: group_key}}
  income: {{class: sensitive, level: 3, visibility: aggregate_only}}
"""
MODES = ("checked", "sql_only")
FIXED = {*MESSAGES.values(), GENERIC}

# What the Python job of the current test leaves in /output.
_OUTPUTS: dict[str, bytes] = {}


def _python_outputs(job_dir: Path) -> dict[str, bytes]:
    return dict(_OUTPUTS)


@dataclass
class World:
    gw: Gateway
    worker: JobWorker
    grants: dict[str, str]  # auto_release mode -> grant id


def _register(gw: Gateway, name: str, mode: str) -> None:
    data_dir: Path = gw.app.state.settings.data_dir
    src = data_dir / f"{name}.csv"
    src.write_text(ROWS, encoding="utf-8")
    version = gw.app.state.registry.register(
        src, name=name, entity_column="person_id", provider="provider"
    )
    src.unlink()
    PolicyStore(data_dir).apply(
        POLICY.format(name=name, mode=mode), {c.name: c.type for c in version.columns},
        dataset=name, author="provider",
    )  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("findings") / "var"
    runtime = build_runtime(
        GatewaySettings(data_dir=data, database_url=""), backend=HostBackend(_python_outputs)
    )
    with make_gateway(data, runtime, worker=False) as gw:
        grants = {}
        for mode in MODES:
            dataset = f"people_{mode}"
            _register(gw, dataset, mode)
            grants[mode] = issue(gw.app, datasets=(dataset,), scenario=f"care {mode}").id
        worker = JobWorker(
            gw.app.state.engine, runtime, gw.app.state.grant_resolver,
            scope=lambda: app_scope(gw.app),
        )  # fmt: skip
        yield World(gw, worker, grants)


def _published(tables: list[tuple[str, pd.DataFrame]], text: str | None = None) -> None:
    """Set the next Python job's /output: tables published by the SDK under the names given."""
    with tempfile.TemporaryDirectory() as out:
        for name, frame in tables:
            group = [c for c in frame.columns if c != "n"]
            publish_table(name, frame, group_by=group, measures=[], count="n",
                          description=f"{CANARY} by group", output_dir=out)  # fmt: skip
        if text is not None:
            publish_text(f"{CANARY}_notes.txt", text, output_dir=out)
        _OUTPUTS.clear()
        _OUTPUTS.update({p.name: p.read_bytes() for p in Path(out).iterdir()})


def _run(world: World, mode: str, kind: str, code: str) -> str:
    made = world.gw.post(
        "operator", "/v1/jobs", json={"grant": world.grants[mode], "kind": kind, "code": code}
    )
    assert made.status_code == 201, made.text
    job = world.worker.run_one()
    assert job is not None and job.id == made.json()["id"]
    return job.id


def _dsr(world: World, monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    """``dsr ARGS`` as the operator, in process, its HTTP calls answered by the app."""

    def connect(self: http.Api, target: Target) -> None:
        self.target = target
        self._client = TestClient(
            world.gw.app, base_url=target.server, raise_server_exceptions=False,
            headers={"Authorization": f"Bearer {target.token}"},
        )  # fmt: skip

    monkeypatch.setattr(http.Api, "__init__", connect)
    auth = ["--server", "http://testserver", "--token", world.gw.tokens["operator"]]
    done = CliRunner().invoke(dsr, [*args, *auth])
    return done.output


def _operator_sees_no_canary(
    world: World, monkeypatch: pytest.MonkeyPatch, job_id: str, files: list[str]
) -> dict[str, Any]:
    """Every body the operator can read about the job; none holds the canary. The job."""
    gw = world.gw
    bodies = {
        "status": gw.get("operator", f"/v1/jobs/{job_id}"),
        "list": gw.get("operator", "/v1/jobs"),
        "outputs": gw.get("operator", f"/v1/jobs/{job_id}/outputs"),
        "logs": gw.get("operator", f"/v1/jobs/{job_id}/logs"),
        "audit": gw.get("operator", "/v1/audit/events"),
        "reviews": gw.get("operator", f"/v1/reviews/{job_id}"),
    }
    for name in files:
        bodies[f"download {name}"] = gw.get("operator", f"/v1/jobs/{job_id}/outputs/{name}")
    job: dict[str, Any] = bodies["status"].json()
    assert job["state"] in ("held", "blocked"), job
    assert bodies["outputs"].status_code == 409 and bodies["logs"].status_code == 403
    assert bodies["audit"].status_code == 403 and bodies["reviews"].status_code == 403
    for what, r in bodies.items():
        assert CANARY not in r.text, (what, r.text[:2000])
    console_login(gw, "operator")
    for page in ("/console/", "/console/grants", "/console/requests"):
        assert CANARY not in gw.client.get(page).text, page
    gw.client.cookies.clear()
    for args in (("jobs", "status", job_id), ("jobs", "list"), ("jobs", "outputs", job_id),
                 ("jobs", "status", job_id, "--json")):  # fmt: skip
        out = _dsr(world, monkeypatch, *args)
        assert CANARY not in out, (args, out[:2000])
    assert job["findings"], job
    for f in job["findings"]:
        assert f["message"] in FIXED, f
        assert set(f) == {"rule", "verdict", "message", "output", "row", "column"}, f
        assert f["output"] is None or 1 <= f["output"] <= job["outputs"], f
        assert f["column"] in (None, "age", "income"), f
    return job


def _reviewer_sees(world: World, job_id: str, name: str) -> dict[str, Any]:
    review = world.gw.get("reviewer", f"/v1/reviews/{job_id}")
    assert review.status_code == 200, review.text
    assert name in {f["file"] for f in review.json()["files"]}
    assert any(f.get("file") == name for f in review.json()["findings"]), review.json()["findings"]
    body: dict[str, Any] = review.json()
    return body


@pytest.mark.parametrize("mode", MODES)
def test_python_jobs_names_reach_no_operator(
    world: World, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    column = f"{CANARY}_group"
    fine = pd.DataFrame({column: ["a", "b"], "n": [12, 15]})
    tiny = pd.DataFrame({column: ["a", "b", "c"], "n": [1, 2, 1]})
    states = {}
    for label, tables, text in (
        ("held", [(f"v{CANARY}.csv", fine)], f"{CANARY} notes"),
        ("blocked", [(f"{CANARY}.csv", fine), (f"w{CANARY}.csv", tiny)], None),
    ):
        _published(tables, text)
        job_id = _run(world, mode, "python", "print('published')\n")
        names = [n for n in _OUTPUTS if n != "manifest.json"]
        job = _operator_sees_no_canary(world, monkeypatch, job_id, names)
        states[label] = job["state"]
        _reviewer_sees(world, job_id, tables[-1][0])
    assert states == {"held": "held", "blocked": "blocked"}, states


@pytest.mark.parametrize("mode", MODES)
def test_sql_aliases_and_tiny_cells_reach_no_operator(
    world: World, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    dataset = f"people_{mode}"
    code = (
        f"SELECT age AS {CANARY}_age, count(*) AS {CANARY}_n, sum(income) AS {CANARY}_sum "
        f"FROM {dataset} GROUP BY 1"
    )
    job_id = _run(world, mode, "sql", code)
    job = _operator_sees_no_canary(world, monkeypatch, job_id, ["result.csv"])
    assert job["state"] == "blocked" and "min_aggregation" in job["findings_by_rule"], job
    review = world.gw.get("reviewer", f"/v1/reviews/{job_id}").json()
    assert any(CANARY in (f.get("column") or "") for f in review["findings"]) or any(
        CANARY in f["content"] for f in review["files"]
    )


def test_a_job_with_thousands_of_findings_answers_in_a_few_kib(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = 6_000
    frame = pd.DataFrame({f"{CANARY}_key": [f"g{i}" for i in range(rows)], "n": [1] * rows})
    _published([(f"{CANARY}.csv", frame)])
    job_id = _run(world, "checked", "python", "print('published')\n")
    status = world.gw.get("operator", f"/v1/jobs/{job_id}")
    assert len(status.content) <= 64 * 1024, len(status.content)
    job = _operator_sees_no_canary(world, monkeypatch, job_id, [])
    assert job["state"] == "blocked" and len(job["findings"]) == SHOWN
    review = world.gw.get("reviewer", f"/v1/reviews/{job_id}").json()
    assert job["findings_total"] == review["findings_total"] >= rows
    assert sum(job["findings_by_rule"].values()) == job["findings_total"]
    assert review["pages"] > 1 and len(review["findings"]) < review["findings_total"]
    last = world.gw.get("reviewer", f"/v1/reviews/{job_id}?page={review['pages']}").json()
    assert last["page"] == review["pages"] and last["findings"]
    with world.gw.app.state.engine.connect() as conn:
        stored = get_outcome(conn, job_id)
    assert stored is not None and len(stored.findings) == STORED
    cli = _dsr(world, monkeypatch, "jobs", "status", job_id)
    assert f"showing {SHOWN} of {job['findings_total']:,}" in cli, cli
    console_login(world.gw, "reviewer")
    page = world.gw.client.get(f"/console/reviews/{job_id}")
    assert page.status_code == 200 and 'id="findings-next"' in page.text
    assert f"{CANARY}.csv" in page.text  # the reviewer sees the name
    world.gw.client.cookies.clear()
