"""Refusals are audited, and a flood of them cannot grow the log without bound.

A second tenant probing the first's objects, or any account trying routes its
role does not admit, leaves ``access.denied`` events: who, the route, the
object's id, why. Per actor and minute the first refusal is written at once
and the rest are counted into one summary event (``gateway.refusals``).
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tests.support.gateway import Gateway, make_gateway


def _denials(gw: Gateway, actor: str | None = None) -> list[dict[str, Any]]:
    lines = gw.get("auditor", "/v1/audit/events").text.splitlines()
    found = [json.loads(x) for x in lines]
    return [
        e for e in found if e["type"] == "access.denied" and (actor is None or e["actor"] == actor)
    ]


def _grant(gw: Gateway) -> str:
    t = pa.table({"pid": [f"p{i}" for i in range(30)], "g": ["a", "b", "c"] * 10})
    sink = io.BytesIO()
    pq.write_table(t, sink)
    assert gw.upload("provider", "people", "p.parquet", sink.getvalue(), "pid").status_code == 201
    policy = (
        "dataset: people\nentity_column: pid\nk: 2\ncolumns:\n"
        "  pid: {class: identifier, level: 4, visibility: join_key, domain: {format: uuid}}\n"
        "  g: {class: attribute, level: 1, visibility: plain, domain: {categories: [a, b, c]}}\n"
    )
    assert gw.put_policy("provider", "people", policy).status_code == 200
    return gw.grant_through_requests(
        "operator", "provider", "people by group", [{"dataset": "people", "columns": ["pid", "g"]}]
    )


def test_another_tenants_object_is_refused_and_audited(tmp_path: Path) -> None:
    with make_gateway(tmp_path / "var") as gw:
        grant = _grant(gw)
        r = gw.get("operator2", f"/v1/grants/{grant}")
        assert r.status_code == 403, r.text
        r = gw.get("provider2", "/v1/datasets/people")
        assert r.status_code == 403, r.text
        (op2,) = _denials(gw, "operator2")
        assert op2["detail"]["route"] == "/v1/grants/{grant_id}"
        assert op2["detail"]["object"] == grant and op2["detail"]["status"] == 403
        assert op2["detail"]["first"] is True and op2["detail"]["reason"]
        (prov2,) = _denials(gw, "provider2")
        assert prov2["detail"]["object"] == "people"


def test_a_role_refusal_is_audited(tmp_path: Path) -> None:
    with make_gateway(tmp_path / "var") as gw:
        assert gw.get("consumer", "/v1/accounts").status_code == 403
        (event,) = _denials(gw, "consumer")
        assert event["detail"]["route"] == "/v1/accounts" and "role" in event["detail"]["reason"]


def test_a_flood_adds_at_most_two_events_per_actor_and_minute(tmp_path: Path) -> None:
    with make_gateway(tmp_path / "var") as gw:
        grant = _grant(gw)
        before = len(_denials(gw, "operator2"))
        for i in range(300):
            target = f"/v1/grants/{grant}" if i % 2 else "/v1/accounts"
            assert gw.get("operator2", target).status_code == 403
        gw.app.state.denials.flush(everything=True)
        events = _denials(gw, "operator2")
        minutes = {e["detail"]["minute"] for e in events}
        assert len(events) - before <= 2 * len(minutes) <= 4  # the flood may span a minute
        per_minute = {  # a minute's summary counts all of it; a lone refusal has none
            m: max(e["detail"]["count"] for e in events if e["detail"]["minute"] == m)
            for m in minutes
        }
        assert sum(per_minute.values()) == 300
        summaries = [e for e in events if not e["detail"]["first"]]
        assert summaries and all(set(e["detail"]["routes"]) for e in summaries)
        assert all(len(e["detail"]["objects"]) <= 20 for e in summaries)


def test_minutes_close_into_one_summary_each(tmp_path: Path) -> None:
    """The aggregation itself, on a clock the test moves."""
    from gateway.refusals import Denial, DenialLog

    with make_gateway(tmp_path / "var") as gw:
        now = [datetime(2026, 12, 7, 10, 0, 5, tzinfo=UTC)]
        log = DenialLog(gw.app.state.engine, clock=lambda: now[0])
        before = len(_denials(gw))

        def deny(actor: str, obj: str) -> None:
            log.record(Denial(actor, "GET", "/v1/jobs/{job_id}", obj, 403, "not yours"))

        for i in range(1000):
            deny("mallory", f"job-{i:04d}")
        deny("eve", "job-x")
        assert len(_denials(gw)) - before == 2  # the first of each actor's minute
        now[0] += timedelta(minutes=1)
        deny("mallory", "job-y")  # a new minute: last minute's summary, then this first
        events = _denials(gw)[before:]
        mallory = [e["detail"] for e in events if e["actor"] == "mallory"]
        assert [d["first"] for d in mallory] == [True, False, True]
        assert mallory[1]["count"] == 1000 and mallory[1]["truncated"] is True
        assert len(mallory[1]["objects"]) == 20
        assert log.flush(everything=True) == 0  # eve's minute had one refusal: no summary
