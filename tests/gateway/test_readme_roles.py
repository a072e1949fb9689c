"""The README's walkthrough by role, run as written against the served demo.

A newcomer follows the README top to bottom in one shell: the operator's,
reviewer's, provider's, administrator's and auditor's blocks are run here
in that order, in one ``bash -euo pipefail``, with the real ``dsr`` command
talking to ``dsr gateway demo`` (containers on runc). Each block's output
is then checked for what the README says it does, so the walkthrough cannot
drift from the product.
"""

from __future__ import annotations

import json
import os
import re
import sys
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from gateway.audit.chain import GENESIS, event_hash
from tests.support.engine import require_engine
from tests.support.served_demo import bash, served_demo, walkthrough

ROLES = ("operator", "reviewer", "provider", "admin", "auditor", "consumer")
MARK = "=== walkthrough:"


def sections(output: str) -> dict[str, str]:
    parts = re.split(rf"^{MARK}(\S+)$", output, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.mark.docker
def test_every_role_walkthrough_runs_as_written(tmp_path: Path) -> None:
    require_engine()
    script = ["exec 2>&1"]  # stderr too: progress and notes are part of what a person sees
    for role in ROLES:
        script += [f"echo '{MARK}{role}'", walkthrough(f"role-{role}")]
        if role == "operator":
            script.append('echo "JOBS $JOB $HELD"')
        if role == "consumer":
            script.append('echo "SUBJECT $CODE"')
    with served_demo(tmp_path, residents=3000) as demo:
        env = {**demo.env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        output = bash("\n".join(script), tmp_path, timeout=600, env=env)
    print(output)
    out = sections(output)
    assert list(out) == list(ROLES)

    operator = out["operator"]
    job, held = re.findall(r"^JOBS (\S+) (\S+)$", operator, re.M)[0]
    assert "demo-operator" in operator and "residents" in operator
    dummy = pq.read_table(tmp_path / "residents-dummy.parquet")
    assert dummy.num_rows > 0 and "person_id" in dummy.column_names
    assert re.search(rf"job {job}: released", operator), operator
    released = (tmp_path / "released" / "result.csv").read_text().splitlines()
    assert released[0] == '"district_name","gender","people"' and len(released) > 10
    assert (tmp_path / "dev-out" / "people.csv").is_file()  # the dummy run's output, locally
    assert re.search(rf"job {held}: held", operator), operator
    assert "exit 1: held for a reviewer" in operator

    reviewer = out["reviewer"]
    assert held in reviewer and "approve" in reviewer.lower()
    people = (tmp_path / "released" / "people.csv").read_text().splitlines()
    assert people[0].replace('"', "") == "district_name,people" and len(people) > 5

    provider = out["provider"]
    assert re.search(r"^-k: 10\b", provider, re.M) and re.search(r"^\+k: 12\b", provider, re.M)
    assert "residents" in provider and "policy.applied" in provider

    admin = out["admin"]
    assert re.search(r"dsr_[0-9a-f]{12}_\S{43}", admin) and "analyst-li" in admin
    assert "suspended" in admin and "stopped by" in admin and "the administrators" in admin
    assert "only they can lift their stop" in admin  # the provider cannot end the stop
    assert re.search(r"^grant \S+: active$", admin, re.M)  # the administrators lift theirs

    auditor = out["auditor"]
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert events and events[0]["prev_hash"] == GENESIS
    for before, event in zip([None, *events], events, strict=False):
        assert before is None or event["prev_hash"] == before["hash"]
        fields = {k: v for k, v in event.items() if k != "hash"}
        assert event["hash"] == event_hash(**(fields | {"at": datetime.fromisoformat(event["at"])}))
    types = {e["type"] for e in events}
    assert {"download", "review.vote", "policy.applied", "grant.state"} <= types, types
    assert "download" in auditor

    consumer = out["consumer"]
    code = re.findall(r"^SUBJECT (\S+)$", consumer, re.M)[0]
    truth = duckdb.sql(
        "SELECT employees >= 50 FROM read_parquet($p) WHERE credit_code = $c",
        params={"p": str(tmp_path / "var/datasets/enterprises/*/data.parquet"), "c": code},
    ).fetchall()[0]
    answers = re.findall(r"^(yes|no)$", consumer, re.M)
    assert answers == (["yes", "no"] if truth[0] else ["no", "yes"]), consumer
    assert code not in (tmp_path / "var" / "gateway.sqlite").read_bytes().decode("latin-1")
