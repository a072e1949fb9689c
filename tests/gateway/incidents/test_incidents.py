"""Incidents (003 (六)4, 000 annex 4 item 四, 001 art. 33): recorded by administrators and
providers, acted on, resolved, audited; an emergency stop records one (or joins the one
named) and tells the administrators, the dataset's provider and the grants' operators;
a period's export for the implementing agency counts exactly the records it lists."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.access import TERMINATIONS_AND_INCIDENTS
from tests.support.termination_world import World, issue, make_world

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


@pytest.fixture
def world(store_url: str, tmp_path: Path) -> Iterator[World]:
    yield from make_world(store_url, tmp_path, NOW)


def record(w: World, who: str = "provider-1", **body: object) -> dict:  # type: ignore[type-arg]
    body = {"kind": "data_leak", "severity": "high", "summary": "a view copied out",
            "datasets": ["people"], **body}  # fmt: skip
    r = w.post(who, "/v1/incidents", body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_an_incident_is_recorded_acted_on_and_resolved_with_its_audit(world: World) -> None:
    detected = NOW - timedelta(hours=2)
    i = record(world, occurred_at=(NOW - timedelta(hours=5)).isoformat(),
               detected_at=detected.isoformat())  # fmt: skip
    assert i["state"] == "open" and i["reported_by"] == "provider-1"
    assert datetime.fromisoformat(i["detected_at"]) == detected
    assert f"incident:{i['id']}:recorded" in world.notice_keys("admin-1")
    url = f"/v1/incidents/{i['id']}"
    acted = world.post("provider-1", f"{url}/actions", {"action": "keys rotated"})
    assert acted.status_code == 200 and acted.json()["actions"][0]["action"] == "keys rotated"
    assert world.post("provider-2", f"{url}/actions", {"action": "x"}).status_code == 404
    assert world.post("provider-2", f"{url}/resolve", {"resolution": "x"}).status_code == 404
    done = world.post("admin-1", f"{url}/resolve", {"resolution": "contained"})
    assert done.status_code == 200 and done.json()["state"] == "resolved"
    assert datetime.fromisoformat(done.json()["resolved_at"]) == NOW
    assert world.post("provider-1", f"{url}/actions", {"action": "late"}).status_code == 409
    assert world.post("admin-1", f"{url}/resolve", {"resolution": "again"}).status_code == 409
    states = [e.detail["to"] for e in world.events("incident.state")
              if e.detail["incident"] == i["id"]]  # fmt: skip
    assert states == ["open", "resolved"]
    assert [e.detail["action"] for e in world.events("incident.action")] == ["keys rotated"]


def test_who_records_and_reads_incidents(world: World) -> None:
    body = {"kind": "tampering", "severity": "low", "summary": "s", "datasets": ["tax"]}
    assert world.post("provider-1", "/v1/incidents", body).status_code == 403  # not its own
    assert world.post("provider-1", "/v1/incidents", {**body, "datasets": []}).status_code == 403
    assert world.post("operator-1", "/v1/incidents", body).status_code == 403
    late = {**body, "detected_at": (NOW + timedelta(hours=1)).isoformat()}
    assert world.post("admin-1", "/v1/incidents", late).status_code == 422
    i = record(world, "admin-1", datasets=["tax"])
    assert [x["id"] for x in world.get("provider-2", "/v1/incidents").json()] == [i["id"]]
    assert world.get("provider-1", "/v1/incidents").json() == []
    assert world.get("auditor-1", f"/v1/incidents/{i['id']}").status_code == 200
    assert world.get("provider-1", f"/v1/incidents/{i['id']}").status_code == 404


def test_an_emergency_stop_records_an_incident_and_tells_those_concerned(world: World) -> None:
    a = issue(world)
    b = issue(world, operator="operator-2")
    r = world.post("admin-1", "/v1/datasets/people/emergency-stop",
                   {"reason": "suspected leak", "rectify_days": 3})  # fmt: skip
    assert r.status_code == 200, r.text
    stop = r.json()
    assert sorted(stop["suspended"]) == sorted([a.id, b.id]) and stop["incident"]
    i = world.get("admin-1", f"/v1/incidents/{stop['incident']}").json()
    assert i["datasets"] == ["people"] and i["grants"] == sorted([a.id, b.id])
    assert i["summary"] == "suspected leak" and "emergency stop on people" in i["actions"][0][
        "action"]  # fmt: skip
    for who in ("admin-1", "provider-1", "operator-1", "operator-2"):
        assert any(k.startswith(f"incident:{i['id']}:stop:") for k in world.notice_keys(who)), who
    assert not any(k.startswith("incident:") for k in world.notice_keys("provider-2"))
    held = world.get("admin-1", f"/v1/grants/{a.id}").json()["holds"]
    assert held[0]["rectify_by"] is not None

    # A second stop, on tax, joins the open incident named.
    c = issue(world, datasets=("tax",), scenario="tax planning")
    world.clock.now = NOW + timedelta(hours=1)
    r = world.post("admin-1", "/v1/datasets/tax/emergency-stop",
                   {"reason": "same leak", "incident": i["id"]})  # fmt: skip
    assert r.status_code == 200 and r.json()["incident"] == i["id"]
    joined = world.get("admin-1", f"/v1/incidents/{i['id']}").json()
    assert joined["datasets"] == ["people", "tax"] and c.id in joined["grants"]
    assert len(joined["actions"]) == 2
    assert len(world.get("admin-1", "/v1/incidents").json()) == 1
    r = world.post("admin-1", "/v1/datasets/tax/emergency-stop",
                   {"reason": "x", "incident": "i-none"})  # fmt: skip
    assert r.status_code == 404


def test_the_export_counts_what_it_lists(world: World) -> None:
    march = datetime(2026, 3, 1, tzinfo=UTC)
    record(world, detected_at=(march - timedelta(days=1)).isoformat())  # February: left out
    kept = [
        record(world, severity="high", detected_at=(march + timedelta(hours=1)).isoformat()),
        record(
            world,
            "admin-1",
            kind="data_loss",
            severity="critical",
            detected_at=(march + timedelta(hours=3)).isoformat(),
        ),
    ]
    world.post("admin-1", f"/v1/incidents/{kept[0]['id']}/resolve", {"resolution": "done"})
    period = {"since": march.isoformat(), "until": (march + timedelta(days=31)).isoformat()}
    report = world.get("auditor-1", "/v1/incidents/export", **period)
    assert report.status_code == 200, report.text
    body = report.json()
    assert [x["id"] for x in body["incidents"]] == [k["id"] for k in kept]
    totals = body["totals"]
    assert totals["incidents"] == len(body["incidents"]) == 2
    assert totals["by_severity"] == {"high": 1, "critical": 1}
    assert totals["by_kind"] == {"data_loss": 1, "data_leak": 1}
    assert totals["open"] == 1 and totals["by_state"] == {"resolved": 1, "open": 1}
    text = world.get("admin-1", "/v1/incidents/export", format="csv", **period)
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text.text)))
    assert [r["id"] for r in rows] == [k["id"] for k in kept]
    assert rows[0]["state"] == "resolved" and rows[1]["severity"] == "critical"
    exported = world.events("incident.exported")
    assert [e.detail["incidents"] for e in exported] == [2, 2]
    assert world.get("provider-1", "/v1/incidents/export", **period).status_code == 403
    backwards = {"since": period["until"], "until": period["since"]}
    assert world.get("admin-1", "/v1/incidents/export", **backwards).status_code == 422


def test_role_matrix_of_the_incident_routes(world: World) -> None:
    """Every role on every incident route: the role check answers 403 before anything."""
    for (method, path), allowed in TERMINATIONS_AND_INCIDENTS.items():
        if "incident" not in path:
            continue
        url = path.replace("{incident_id}", "i-none")
        for role in ("operator", "provider", "reviewer", "admin", "auditor", "consumer"):
            r = world.client.request(method, url, headers=world.headers(f"{role}-1"), json={})
            denied = r.status_code == 403 and "needs the role" in r.text
            assert denied == (role not in allowed), (method, path, role, r.status_code)
