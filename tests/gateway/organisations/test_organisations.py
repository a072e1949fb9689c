"""Organisations through the REST API, on both stores: administrators create them and
assign accounts (audited); every account reads its own organisation and no other;
every other write is refused (403); accounts without one keep working."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.access import ORGANISATIONS_AND_FEEDBACK
from tests.support.grants_world import World, make_world
from tests.support.organisations import ROLES, check_access, events

ORGS = "/v1/organisations"


@pytest.fixture
def world(store_url: str, tmp_path: Path) -> Iterator[World]:
    yield from make_world(store_url, tmp_path)


def create(w: World, org_id: str, name: str, kind: str, who: str = "admin") -> dict[str, object]:
    made = w.client.post(ORGS, headers=w.headers(who), json={"id": org_id, "name": name,
                                                             "kind": kind})  # fmt: skip
    assert made.status_code == 201, made.text
    return dict(made.json())


def test_the_access_matrix(world: World) -> None:
    w = world
    table = {k: v for k, v in ORGANISATIONS_AND_FEEDBACK.items() if k[1].startswith(ORGS)}
    ids = {"organisation_id": "org-none", "account_name": "operator-1"}
    check_access(w.client, {r: w.headers(r) for r in ROLES}, table, ids)


def test_administrators_create_organisations_and_nobody_else(world: World) -> None:
    w = world
    made = create(w, "acme-ops", "Acme 数据运营有限公司", "operator")
    assert made["kind"] == "operator" and made["members"] == [] and made["created_by"] == "admin-1"
    create(w, "city-tax", "City tax bureau", "provider")
    body = {"id": "bank-a", "name": "Bank A", "kind": "financial"}
    for role in ROLES:
        if role != "admin":
            assert w.client.post(ORGS, headers=w.headers(role), json=body).status_code == 403
    refused = {
        "duplicate id": ({"id": "acme-ops", "name": "Other", "kind": "other"}, 409),
        "duplicate name": ({"id": "acme-2", "name": "Acme 数据运营有限公司", "kind": "other"}, 409),
        "bad kind": ({"id": "x-1", "name": "X", "kind": "ministry"}, 422),
        "bad id": ({"id": "Not An Id", "name": "Y", "kind": "other"}, 422),
        "two lines": ({"id": "z-1", "name": "Z\nZ", "kind": "other"}, 422),
    }
    for why, (bad, status) in refused.items():
        got = w.client.post(ORGS, headers=w.headers("admin"), json=bad)
        assert got.status_code == status, (why, got.text)
    created = events(w.engine, "organisation.created")
    assert [(e["actor"], e["organisation"], e["kind"]) for e in created] == [
        ("admin-1", "acme-ops", "operator"),
        ("admin-1", "city-tax", "provider"),
    ]
    listed = w.client.get(ORGS, headers=w.headers("admin")).json()
    assert [o["id"] for o in listed] == ["acme-ops", "city-tax"]


def test_accounts_are_assigned_moved_and_removed_by_administrators_audited(world: World) -> None:
    w = world
    create(w, "acme-ops", "Acme operations", "operator")
    create(w, "city-tax", "City tax bureau", "provider")
    me = w.headers("operator")
    # No organisation yet: the account works, and reads none.
    assert w.client.get(ORGS, headers=me).json() == []
    assert w.client.get("/v1/me", headers=me).status_code == 200
    assert w.client.get("/v1/grants", headers=me).status_code == 200
    assert w.client.get(f"{ORGS}/acme-ops", headers=me).status_code == 404

    member = f"{ORGS}/acme-ops/members/operator-1"
    assert w.client.put(member, headers=me).status_code == 403
    joined = w.client.put(member, headers=w.headers("admin"))
    assert joined.status_code == 200, joined.text
    assert joined.json() == {"account": "operator-1", "organisation": "acme-ops", "previous": None}
    again = w.client.put(member, headers=w.headers("admin"))  # no change, no event
    assert again.status_code == 200

    mine = w.client.get(ORGS, headers=me).json()
    assert [(o["id"], o["members"]) for o in mine] == [("acme-ops", ["operator-1"])]
    assert w.client.get(f"{ORGS}/acme-ops", headers=me).status_code == 200
    assert w.client.get(f"{ORGS}/city-tax", headers=me).status_code == 404  # not its own
    assert w.client.get(ORGS, headers=w.headers("operator-2")).json() == []

    # At most one organisation: assigning elsewhere moves the account.
    moved = w.client.put(f"{ORGS}/city-tax/members/operator-1", headers=w.headers("admin"))
    assert moved.json()["previous"] == "acme-ops"
    assert [o["id"] for o in w.client.get(ORGS, headers=me).json()] == ["city-tax"]
    acme = w.client.get(f"{ORGS}/acme-ops", headers=w.headers("admin")).json()
    assert acme["members"] == []

    assert w.client.delete(member, headers=w.headers("admin")).status_code == 404  # not in it
    assert w.client.delete(f"{ORGS}/city-tax/members/operator-1", headers=me).status_code == 403
    left = w.client.delete(f"{ORGS}/city-tax/members/operator-1", headers=w.headers("admin"))
    assert left.status_code == 204
    assert w.client.get(ORGS, headers=me).json() == []

    unknown = w.client.put(f"{ORGS}/acme-ops/members/nobody", headers=w.headers("admin"))
    assert unknown.status_code == 404
    nowhere = w.client.put(f"{ORGS}/nowhere/members/operator-1", headers=w.headers("admin"))
    assert nowhere.status_code == 404

    moves = [(e["actor"], e["account"], e["from"], e["to"])
             for e in events(w.engine, "organisation.member")]  # fmt: skip
    assert moves == [
        ("admin-1", "operator-1", None, "acme-ops"),
        ("admin-1", "operator-1", "acme-ops", "city-tax"),
        ("admin-1", "operator-1", "city-tax", None),
    ]
