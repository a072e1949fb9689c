"""The sweep expires a grant nobody uses and destroys every copy held under it, each
destruction recorded; revocation destroys the same set (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.grants.errors import GrantInactive
from gateway.jobs.model import Outcome, create_job, transition
from gateway.jobs.model import State as JobState
from gateway.store.tables import grants as grants_table
from tests.support.grants_world import World
from tests.support.sweep_world import T0, Hands, copies_of, events, grant, sweep_world

KINDS = {"pseudonym", "views", "dummy", "entity", "unreleased", "tables"}


@pytest.fixture
def hands() -> Hands:
    return Hands()


@pytest.fixture
def world(store_url: str, tmp_path: Path, hands: Hands) -> Iterator[World]:
    yield from sweep_world(store_url, tmp_path / "var", hands)


def _end(world: World, hands: Hands, grant_id: str, how: str) -> None:
    admin = world.headers("admin")
    if how == "expired":
        hands.at = T0 + timedelta(days=30)  # the term's last instant has passed
        r = world.client.post("/v1/admin/sweep", headers=admin)
        assert r.status_code == 200, r.text
        assert any(grant_id in line and "expired" in line for line in r.json()["lines"])
    else:
        hands.at = T0 + timedelta(days=2)
        r = world.client.post(
            f"/v1/grants/{grant_id}/revoke", headers=admin, json={"reason": "ended"}
        )
        assert r.status_code == 200, r.text


@pytest.mark.parametrize("how", ["expired", "revoked"])
def test_a_grants_end_destroys_every_copy_with_a_record_each(
    world: World, hands: Hands, how: str
) -> None:
    g = grant(world, T0 + timedelta(days=30))
    copies = copies_of(world, g, T0 + timedelta(days=1))
    assert all(p.is_file() for paths in copies.destroyed.values() for p in paths)

    _end(world, hands, g.id, how)

    shown = world.client.get(f"/v1/grants/{g.id}", headers=world.headers("admin")).json()
    assert shown["state"] == how
    for kind, paths in copies.destroyed.items():
        assert not any(p.exists() for p in paths), kind
    assert all(p.is_file() for p in copies.kept)  # released outputs passed the checks
    records = events(world, "destruction", g.id)
    assert {e.detail["what"].split()[0] for e in records} == KINDS
    assert len(records) == len(KINDS)  # one record per copy: the dummy set, the views ...
    for e in records:
        assert e.detail["because"] == how and len(e.detail["sha256"]) == 64
        assert e.detail["files"] >= (0 if e.detail["what"].startswith("pseudonym") else 1)
    with world.engine.connect() as conn:
        key = conn.execute(
            sa.select(grants_table.c.pseudonym_key).where(grants_table.c.id == g.id)
        ).scalar_one()
    assert key == ""  # no one can link the grant's pseudonyms again
    with pytest.raises(GrantInactive):
        world.grants.use(g.id)


def test_the_sweep_leaves_a_grant_within_its_term_and_expires_once(
    world: World, hands: Hands
) -> None:
    short = grant(world, T0 + timedelta(days=30), scenario="short")
    long = grant(world, T0 + timedelta(days=300), scenario="long")
    admin = world.headers("admin")

    def expired() -> list[str]:
        r = world.client.post("/v1/admin/sweep", headers=admin)
        assert r.status_code == 200 and not r.json()["failures"], r.text
        return [line.split()[1] for line in r.json()["lines"] if "expired" in line]

    for role in ("operator", "provider", "reviewer", "auditor", "consumer"):
        r = world.client.post("/v1/admin/sweep", headers=world.headers(role))
        assert r.status_code == 403, role  # only administrators run a sweep
    assert world.client.post("/v1/admin/sweep").status_code == 401
    assert events(world, "sweep.run") == []
    hands.at = T0 + timedelta(days=30) - timedelta(seconds=1)
    assert expired() == []
    hands.at = T0 + timedelta(days=31)
    assert expired() == [short.id]
    assert expired() == []
    assert [e.detail["to"] for e in events(world, "grant.state", short.id)] == ["active", "expired"]
    assert [e.detail["to"] for e in events(world, "grant.state", long.id)] == ["active"]
    runs = events(world, "sweep.run")
    assert len(runs) == 3 and {e.actor for e in runs} == {"admin-1"}
    assert runs[1].detail["done"]["grants.expire"] == 1
    assert runs[1].detail["when"] == hands.at.isoformat()


def test_what_a_running_job_stores_after_the_end_is_destroyed_by_the_next_sweep(
    world: World, hands: Hands
) -> None:
    g = grant(world, T0 + timedelta(days=30))
    with world.engine.begin() as conn:
        create_job(conn, job_id="job-late", operator=g.operator, grant_id=g.id, kind="sql",
                   code="SELECT 1", dummy=False, datasets=g.datasets)  # fmt: skip
        transition(conn, "job-late", JobState.RUNNING, actor="system", outcome=Outcome.STARTED)
    _end(world, hands, g.id, "expired")
    root = world.data_dir / "work" / "jobs" / "job-late"
    (root / "outputs").mkdir(parents=True)  # the checks store them, then release refuses
    (root / "outputs" / "result.csv").write_text("district,n\n1,12\n")
    with world.engine.begin() as conn:
        for to, why in ((JobState.CHECKING, Outcome.RAN), (JobState.REFUSED, Outcome.SCOPE_DENIED)):
            transition(conn, "job-late", to, actor="system", outcome=why)

    lines = world.client.post("/v1/admin/sweep", headers=world.headers("admin")).json()["lines"]
    assert [line for line in lines if "job-late" in line] == [
        f"grant {g.id} (expired): unreleased outputs of job job-late under grant {g.id} destroyed"
    ]
    assert not (root / "outputs").exists()
    late = [e for e in events(world, "destruction", g.id) if "job-late" in e.detail["what"]]
    assert len(late) == 1 and late[0].detail["because"] == "expired"
    again = world.client.post("/v1/admin/sweep", headers=world.headers("admin")).json()
    assert not [line for line in again["lines"] if "job-late" in line]
