"""Nothing on the portal identifies a data subject (001 authorized-operation art. 24-25:
what is disclosed is the operation, never the data; DESIGN: data usable but not visible).

A provider uploads ``citizens`` through REST: distinctive names and ID-card numbers of
thirty people, with incomes. An operator's grant covers district and income; the
deployed gateway (``build_runtime`` on the fake backend) runs an SQL job (released) and a
Python job (held, then approved), and the SQL job's output is registered as a product.
Then every portal page in both languages and every data route in both formats is read
anonymously: the year's activity shows (grant, product, two jobs), and no name, ID
number or income, no line of a released output, no job code, no grant key, no token
appears anywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.grants.service import grant_service
from gateway.identity import create_account, issue_token
from gateway.runtime import build_runtime
from gateway.settings import GatewaySettings
from gateway.store.tables import grants
from tests.support.clocked_world import MovableClock
from tests.support.fakebackend import FakeBackend
from tests.support.gateway_jobs import wait_for_job

START = datetime(2025, 6, 2, 2, 0, tzinfo=UTC)  # Monday 2 June 2025, 10:00 CST
SURNAMES = "诸葛欧阳司马上官慕容东方皇甫令狐"
NAMES = [
    f"{SURNAMES[2 * (i % 8) : 2 * (i % 8) + 2]}青{'云岚峰雪'[i % 4]}{i:02d}" for i in range(30)
]
IDS = [f"5001011988{(i % 12) + 1:02d}{(i % 28) + 1:02d}{4321 + 17 * i:04d}" for i in range(30)]
INCOMES = [987_650 + 113 * i for i in range(30)]
CSV = "citizen_id,full_name,district,income\n" + "".join(
    f"{IDS[i]},{NAMES[i]},district-{i % 3},{INCOMES[i]}\n" for i in range(30)
)
POLICY = """\
dataset: citizens
entity_column: citizen_id
k: 2
columns:
  citizen_id: {class: identifier, level: 4, visibility: join_key}
  full_name: {class: identifier, level: 4, visibility: hidden}
  district: {class: quasi_identifier, level: 2, visibility: group_key}
  income: {class: sensitive, level: 3, visibility: aggregate_only}
"""
SQL = "SELECT district, count(*) AS n FROM citizens GROUP BY 1  -- sql-marker-5d1c"
PYTHON = (
    "from sandbox.sdk import connect, publish_table  # py-marker-9e2b\n"
    "con = connect()\n"
    'df = con.sql("SELECT district, count(*) AS n FROM citizens GROUP BY 1").df()\n'
    'publish_table("districts.csv", df, group_by=["district"], measures=[], count="n")\n'
)
ROLES = {"provider-1": "provider", "op-1": "operator", "admin-1": "admin", "rev-1": "reviewer"}


class Deployed:
    def __init__(self, client: TestClient, tokens: dict[str, str], clock: MovableClock) -> None:
        self.client, self.tokens, self.clock = client, tokens, clock

    def h(self, who: str, **more: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", **more}

    def post(self, who: str, url: str, body: dict[str, Any] | None = None) -> Any:
        answer = self.client.post(url, headers=self.h(who), json=body or {})
        assert answer.status_code < 300, (url, answer.text)
        return answer.json()


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[Deployed]:
    clock = MovableClock(START)
    settings = GatewaySettings(data_dir=tmp_path / "var", database_url="")
    app = create_app(settings, build_runtime(settings, FakeBackend(tmp_path / "sbx")), clock=clock)
    tokens = {}
    with app.state.engine.begin() as conn:
        for name, role in ROLES.items():
            create_account(conn, name, {role}, actor="test")
            tokens[name] = issue_token(conn, name, actor="test")
    with TestClient(app) as client:
        yield Deployed(client, tokens, clock)
    app.state.engine.dispose()


def _activity(d: Deployed, tmp_path: Path) -> dict[str, Any]:
    """The upload, the grant, the two jobs and the product; what must never show."""
    source = tmp_path / "citizens.csv"
    source.write_text(CSV, encoding="utf-8")
    with source.open("rb") as f:
        uploaded = d.client.post(
            "/v1/datasets",
            headers=d.h("provider-1"),
            files={"file": ("citizens.csv", f, "text/csv")},
            data={"name": "citizens", "entity_column": "citizen_id"},
        )
    assert uploaded.status_code == 201, uploaded.text
    policy = d.client.put(
        "/v1/datasets/citizens/policy",
        headers=d.h("provider-1", **{"Content-Type": "application/yaml"}),
        content=POLICY.encode(),
    )
    assert policy.status_code in (200, 201), policy.text
    app = d.client.app
    with app.state.engine.begin() as conn:  # type: ignore[attr-defined]
        grant = grant_service(app).create(  # type: ignore[arg-type]
            conn, operator="op-1", scenario="district planning", purpose="residents per district",
            scopes=[("citizens", ("district", "income"))], valid_from=START,
            valid_until=START + timedelta(days=365), actor="admin-1", now=START,
        )  # fmt: skip
        key = conn.execute(sa.select(grants.c.pseudonym_key).where(grants.c.id == grant.id))
    secrets = [key.scalar_one(), *d.tokens.values()]
    jobs = {}
    for kind, code in (("sql", SQL), ("python", PYTHON)):
        made = d.post("op-1", "/v1/jobs", {"grant": grant.id, "kind": kind, "code": code})
        jobs[kind] = wait_for_job(d.client, d.h("op-1"), made["id"])
    assert (jobs["sql"]["state"], jobs["python"]["state"]) == ("released", "held"), jobs
    vote = {"decision": "approve", "reason": "district counts, each over k"}
    d.post("rev-1", f"/v1/reviews/{jobs['python']['id']}/votes", vote)
    outputs = []
    for job in jobs.values():
        for file in d.client.get(f"/v1/jobs/{job['id']}/outputs", headers=d.h("op-1")).json()[
            "files"
        ]:
            body = d.client.get(f"/v1/jobs/{job['id']}/outputs/{file['file']}", headers=d.h("op-1"))
            outputs += [line for line in body.text.splitlines()[1:] if line.strip()]
    applied = d.post("op-1", "/v1/products/registrations", {
        "type": "first", "job": jobs["sql"]["id"], "name": "居民分区统计",
        "description": "各区居民人数。", "category": "public_governance",
        "price_class": "free", "price_basis": {},
    })  # fmt: skip
    for step in ("accept", "review", "publicise"):
        shown = d.post("admin-1", f"/v1/products/registrations/{applied['id']}/{step}")
    d.clock.now = datetime.fromisoformat(shown["publicity_ends_at"])
    d.post("admin-1", f"/v1/products/registrations/{applied['id']}/register")
    never = [*NAMES, *IDS, *(str(i) for i in INCOMES), *outputs, *secrets]
    return {"grant": grant.id, "never": [*never, "sql-marker-5d1c", "py-marker-9e2b"]}


def test_no_portal_answer_holds_a_value_of_the_data(deployed: Deployed, tmp_path: Path) -> None:
    seen = _activity(deployed, tmp_path)
    client = TestClient(deployed.client.app)  # a fresh client: no cookie, no token
    answers = []
    for path in ("/portal/", "/portal/products", "/portal/grants", "/portal/usage"):
        for lang in ("zh-CN", "en"):
            answers.append(client.get(path, params={"year": 2025, "lang": lang}))
    for table in ("products", "grants", "usage"):
        for fmt in ("json", "csv"):
            answers.append(client.get(f"/v1/public/{table}", params={"year": 2025, "format": fmt}))
    assert [a.status_code for a in answers] == [200] * len(answers)
    text = "\n".join(a.content.decode("utf-8-sig") for a in answers)
    # The year's activity is there ...
    usage = client.get("/v1/public/usage", params={"year": 2025}).json()["items"]
    assert [
        (u["dataset"], u["provider"], u["jobs"], u["released"], u["products"]) for u in usage
    ] == [("citizens", "provider-1", 2, 2, 1)]
    assert seen["grant"] in text and "居民分区统计" in text and "district planning" in text
    # ... and nothing of the data, its outputs, the code, keys or tokens.
    assert len(seen["never"]) > 100
    leaked = [value for value in seen["never"] if value in text]
    assert leaked == []
