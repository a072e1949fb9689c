"""The catalogue over HTTP: operators browse the views of the grants they hold and
download dummy data that has the real view's schema and none of its values; the
scope check, the audit events and the access matrix (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from gateway.audit.chain import iter_events
from gateway.identity import Role
from sandbox.views.build import ViewBuilder
from tests.support.access import CATALOG as ACCESS
from tests.support.grants_world import PEOPLE_CSV, World, issue, make_world

ROLES = [r.value for r in Role]


@pytest.fixture
def world(store_url: str, tmp_path: Path) -> Iterator[World]:
    yield from make_world(store_url, tmp_path)


def get(w: World, who: str, path: str, **params: Any) -> Any:
    return w.client.get(path, headers=w.headers(who), params=params)


def test_the_catalogue_shows_the_grants_views_with_the_real_schema(world: World) -> None:
    g = issue(world)
    listed = get(world, "operator", "/v1/catalog")
    assert listed.status_code == 200, listed.text
    (view,) = listed.json()
    assert (view["grant"], view["name"], view["dataset"]) == (g.id, "people", "people")
    columns = {c["name"]: c for c in view["columns"]}
    assert set(columns) == {"person_id", "age", "income"}  # hidden "name" is absent
    assert columns["person_id"]["visibility"] == "entity"
    assert columns["income"]["column_class"] == "sensitive"
    assert "rows" not in view  # no real count either
    # The schema is exactly the real view's.
    real = ViewBuilder(world.grants.registry, world.grants.policies, world.data_dir / "cache")
    (real_view,) = real.build(world.grants.use(g.id)).views
    assert [(c["name"], c["type"]) for c in view["columns"]] == [
        (c.name, c.type) for c in real_view.columns
    ]
    shown = get(world, "operator", "/v1/catalog/people")
    assert shown.status_code == 200 and shown.json() == view
    # Nobody else's grants show; operator-2 holds none.
    assert get(world, "operator-2", "/v1/catalog").json() == []


def test_dummy_data_is_schema_faithful_and_shares_no_value(world: World) -> None:
    g = issue(world)
    parquet = get(world, "operator", "/v1/catalog/people/dummy", grant=g.id)
    assert parquet.status_code == 200, parquet.text
    assert 'filename="people.parquet"' in parquet.headers["content-disposition"]
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.num_rows == 1000 and table.column_names == ["person_id", "age", "income"]
    again = get(world, "operator", "/v1/catalog/people/dummy", grant=g.id)
    assert again.content == parquet.content  # one dummy set per grant: views join
    as_csv = get(world, "operator", "/v1/catalog/people/dummy", format="csv")
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert len(rows) == 1000 and list(rows[0]) == ["person_id", "age", "income"]
    real_ids = {line.split(",")[0] for line in PEOPLE_CSV.splitlines()[1:]}
    assert not real_ids & {r["person_id"] for r in rows}  # pseudonyms under a throwaway key
    bad = get(world, "operator", "/v1/catalog/people/dummy", format="xlsx")
    assert bad.status_code == 422 and "xlsx" not in bad.text


def test_refusals_are_plain_and_audited(world: World) -> None:
    g = issue(world)
    other = get(world, "operator-2", "/v1/catalog", grant=g.id)
    assert other.status_code == 403 and "not held by operator-2" in other.json()["detail"]
    assert get(world, "operator", "/v1/catalog", grant="g-nothing").status_code == 404
    missing = get(world, "operator", "/v1/catalog/nothing_here")
    assert missing.status_code == 404 and "no view 'nothing_here'" in missing.json()["detail"]
    # A suspended grant's views leave the catalogue; naming it says why.
    suspended = world.client.post(
        f"/v1/grants/{g.id}/suspend", headers=world.headers("admin"), json={"reason": "audit"}
    )
    assert suspended.status_code == 200, suspended.text
    assert get(world, "operator", "/v1/catalog").json() == []
    named = get(world, "operator", "/v1/catalog", grant=g.id)
    assert named.status_code == 409 and "suspended" in named.json()["detail"]
    with world.engine.connect() as conn:
        events = list(iter_events(conn))
    decisions = [e for e in events if e.type == "scope.decision"]
    assert decisions and all(e.detail["purpose"] == "catalog" for e in decisions)
    assert any(not e.detail["allowed"] and e.actor == "operator-2" for e in decisions)


def test_dummy_downloads_are_audited_with_their_hash(world: World) -> None:
    g = issue(world)
    got = get(world, "operator", "/v1/catalog/people/dummy")
    with world.engine.connect() as conn:
        (download,) = [e for e in iter_events(conn) if e.type == "download"]
    assert download.grant_id == g.id and download.datasets == ("people",)
    assert download.detail["dummy"] is True and download.detail["bytes"] == len(got.content)


@pytest.mark.parametrize(("method", "path"), sorted(ACCESS))
def test_access_matrix(world: World, method: str, path: str) -> None:
    allowed = ACCESS[(method, path)]
    url = path.replace("{view}", "people")
    for role in ROLES:
        response = world.client.request(method, url, headers=world.headers(role))
        if role in allowed:
            assert response.status_code not in (401, 403, 500), (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
            assert "needs the role" in response.json()["detail"]
    assert world.client.request(method, url).status_code == 401
