"""``make run``'s demo: the seed is idempotent and audited, and the README's walkthrough works.

The walkthrough test starts the real server (``dsr gateway demo``, on runc,
a free port, a tmp data directory) and runs the README's own ``curl``
blocks through ``bash`` (the fenced blocks after ``<!-- walkthrough:... -->``),
so the quick start cannot drift from what the gateway does. It also runs the
submit command the server printed.
"""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from gateway.audit import export_jsonl, verify
from gateway.demo import ENV_FILE, OPERATOR, PROVIDER, ROLES, DemoError, seed
from gateway.grants.model import State as GrantState
from gateway.grants.service import GrantService
from gateway.identity import list_accounts, revoke_token, token_id_of
from gateway.requests.service import RequestService
from gateway.settings import GatewaySettings
from gateway.store import make_engine, read_transaction
from sandbox.intake.policy import PolicyStore
from sandbox.intake.registry import Registry
from tests.support.engine import require_engine, sandbox_objects
from tests.support.served_demo import bash, served_demo, wait_for, walkthrough

RESIDENTS = 3000  # the seed's city, small: the test is about the seed, not the data


def audit_events(settings: GatewaySettings) -> list[dict]:  # type: ignore[type-arg]
    engine = make_engine(settings.database_url)
    out = io.StringIO()
    with read_transaction(engine) as conn:
        export_jsonl(conn, out)
        assert verify(conn).ok
    engine.dispose()
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_seed_is_idempotent_and_every_step_is_audited(tmp_path: Path) -> None:
    settings = GatewaySettings(data_dir=tmp_path / "var", database_url="")
    first = seed(settings, residents=RESIDENTS, actor="local:test")
    events = audit_events(settings)
    second = seed(settings, residents=RESIDENTS, actor="local:test")

    assert second.created == ()
    assert audit_events(settings) == events  # nothing new happened, so nothing new to audit
    assert second.grant_id == first.grant_id and second.grant_state == "active"
    assert [a.token for a in second.accounts] == [a.token for a in first.accounts]
    assert {r.role for r in ROLES} == {
        "operator",
        "provider",
        "reviewer",
        "admin",
        "auditor",
        "consumer",
    }

    engine = make_engine(settings.database_url)
    registry = Registry(settings.data_dir)
    grants = GrantService(engine=engine, registry=registry, data_dir=settings.data_dir)
    with read_transaction(engine) as conn:
        assert sorted(a.name for a in list_accounts(conn)) == sorted(r.name for r in ROLES)
        assert [g.id for g in grants.find(conn)] == [first.grant_id]
        assert len(RequestService(grants).find(conn)) == 1
    policies = PolicyStore(settings.data_dir)
    for name in registry.names():
        assert len(registry.versions(name)) == 1 and len(policies.versions(name)) == 1
    assert len(registry.names()) == 4

    # Each step as production records it: by the account whose step it is.
    steps = [(e["type"], e["actor"]) for e in events if e["type"].startswith(("request", "grant"))]
    assert steps == [
        ("request.state", OPERATOR),
        ("request.state", "demo-admin"),
        ("request.state", PROVIDER),
        ("grant.state", PROVIDER),
        ("request.state", PROVIDER),
    ]
    kinds = Counter(e["type"] for e in events)
    assert kinds["account.created"] == kinds["token.issued"] == len(ROLES) == 7
    assert kinds["dataset.registered"] == kinds["policy.applied"] == 4

    env = settings.data_dir / ENV_FILE
    assert env.stat().st_mode & 0o777 == 0o600
    assert f"DEMO_GRANT={first.grant_id}" in env.read_text()

    # A revoked token is replaced, and only that one; an ended grant is replaced
    # through a new request; nothing else is made again.
    with engine.begin() as conn:
        token_id = token_id_of(first.operator_token)
        assert token_id is not None
        revoke_token(conn, token_id, actor="local:test")
        grants.transition(conn, first.grant_id, GrantState.REVOKED, PROVIDER, "demo reset")
    engine.dispose()
    third = seed(settings, residents=RESIDENTS, actor="local:test")
    assert [m.kind for m in third.created] == ["token", "request", "grant"]
    assert third.created[0].what == OPERATOR and third.created[2].what == third.grant_id
    assert third.operator_token != first.operator_token
    assert third.token(PROVIDER) == first.token(PROVIDER)
    assert third.grant_id != first.grant_id and third.grant_state == "active"
    assert third.grant_scopes == first.grant_scopes

    production = GatewaySettings(data_dir=tmp_path / "prod", environment="production")
    with pytest.raises(DemoError, match="development only"):
        seed(production)


# -- the README's walkthrough against the served demo ----------------------------------


@pytest.mark.docker
def test_readme_walkthrough_against_the_served_demo(tmp_path: Path, docker_client) -> None:  # type: ignore[no-untyped-def]
    require_engine()
    jobs: list[str] = []
    with served_demo(tmp_path, residents=RESIDENTS) as demo:
        log = demo.log
        printed = log.read_text()
        tokens = re.findall(
            r"^DEMO_\w+_TOKEN=(\S+)", (tmp_path / "var" / ENV_FILE).read_text(), re.M
        )
        assert len(tokens) == len(ROLES) and all(t in printed for t in tokens)

        # The README's submit block, as written; the env file carries the port.
        submitted = json.loads(bash(walkthrough("submit"), tmp_path))
        assert submitted["state"] == "queued", submitted
        jobs.append(submitted["id"])
        # The submit command the server printed, pasted as is.
        command = next(line.strip() for line in printed.splitlines() if "/v1/jobs -H" in line)
        pasted = json.loads(bash(command, tmp_path))
        assert pasted["state"] == "queued" and pasted["grant"] == submitted["grant"]
        jobs.append(pasted["id"])

        # The README's result block, with the id the submission answered.
        result = walkthrough("result")
        assert re.search(r"^JOB=", result, re.M)
        status, download = (line for line in result.splitlines() if line.startswith("curl"))

        def run(command: str, job_id: str) -> str:
            return bash(f"source var/demo-tokens.env\nJOB={job_id}\n{command}", tmp_path)

        def finished(job_id: str) -> dict | None:  # type: ignore[type-arg]
            job: dict = json.loads(run(status, job_id))  # type: ignore[type-arg]
            return None if job["state"] in ("queued", "running", "checking") else job

        job = wait_for("the job finishes", lambda: finished(submitted["id"]), 90, log)
        assert job["state"] == "released", job
        csv = run(download, submitted["id"])
        lines = csv.splitlines()
        assert lines[0] == '"district_name","people"' and len(lines) > 10, csv
        assert all(int(line.rsplit(",", 1)[1]) >= 10 for line in lines[1:])
        print(f"job released in {job['run_seconds']:.1f}s run, {job['sandbox_seconds']:.1f}s")
        again = wait_for("the pasted job finishes", lambda: finished(pasted["id"]), 90, log)
        assert again["state"] == "released", again

    assert [name for job, name in sandbox_objects(docker_client) if job in jobs] == []
