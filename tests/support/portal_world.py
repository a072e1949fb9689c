"""A gateway with two years of products and grants, for the portal and disclosure tests.

``make_world`` builds it on ``tests.support.product_registration``'s world (the firms
dataset of ``provider-1``, accounts ``op-1``, ``op-2``, ``bank-1``, ``admin-1`` ...,
a grant of ``op-1`` from the clock's start for a year) and walks the clock from
3 March 2025 into 2026 through REST, recording what it made in ``Made``:

- four products of ``op-1``, registered in 2025 through the whole procedure:
  ``governance`` (public governance, conditionally free), ``guided`` and ``cost_plus``
  (industry; a guided price of the tariff item ``verification``, a cost-plus price of
  250 fen a call plus 10 %), ``revoked`` (registered, then revoked in June 2025);
- ``refused`` (a registration refused) and ``pending`` (applied, never registered):
  no product;
- grants: ``g2025`` (op-1's, from the start for a year), ``revoked_grant`` (op-2's,
  issued and revoked in 2025), ``g2026`` (op-2's, from February 2026);
- ``op-1`` belongs to the organisation "渝数运营有限公司" (its grantee name); ``provider-1``
  uploads the firms file through REST (the audit log names it as the provider).

Prices: the applications are all free (a class every category takes); ``price`` then
writes the two columns as ``PUT /v1/products/{id}/price`` (gateway.pricing) stores them,
to fixed values, so the prices these tests expect do not depend on the cost accounting.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from gateway.grants.service import grant_service
from gateway.jobs.model import Outcome, State, create_job, transition
from gateway.jobs.service import Files, record_outcome
from gateway.store.tables import products
from sandbox.container.sdk.publish import publish_model_summary
from sandbox.fsutil import sha256_file
from tests.support.he_world import World, firms_csv
from tests.support.product_registration import MovableClock, first, post, to_publicity
from tests.support.product_registration import build_world as registration_build
from tests.support.product_registration import make_world as registration_world

START = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)  # Monday 3 March 2025, 10:00 CST
ORGANISATION = "渝数运营有限公司"
TARIFF = {"verification": {"unit": "次", "price_fen": 120}}
PRICES: dict[str, tuple[str, dict[str, Any]]] = {
    "governance": ("conditionally_free", {"condition": "仅限政府部门用于公共服务"}),
    # as H2 stores a guided basis: the tariff's unit and price frozen in
    "guided": ("guided", {"tariff_item": "verification", "unit": "次", "price_fen": 120}),
    "cost_plus": (
        "cost_plus",
        {"margin": 0.1, "expected_units": 100, "unit_cost_fen": 250, "unit": "次"},
    ),
    "revoked": ("free", {}),
}
CATEGORIES = {
    "governance": "public_governance",
    "guided": "industry_development",
    "cost_plus": "industry_development",
    "revoked": "public_governance",
}


@dataclass
class Made:
    """What the walk made: product ids by name, grant ids by name, jobs by name."""

    products: dict[str, str] = field(default_factory=dict)
    grants: dict[str, str] = field(default_factory=dict)
    jobs: dict[str, str] = field(default_factory=dict)
    registrations: dict[str, str] = field(default_factory=dict)


@dataclass
class PortalWorld:
    w: World
    clock: MovableClock
    made: Made

    def get(self, url: str, **params: Any) -> Any:
        """An anonymous GET: no token, no cookie."""
        return self.w.client.get(url, params=params)


def make_world(store_url: str, tmp_path: Path) -> Iterator[PortalWorld]:
    """The world of the module docstring, its client entered for the test's duration."""
    clock = MovableClock(START)
    for w in registration_world(store_url, tmp_path, clock, price_tariff=TARIFF):
        yield PortalWorld(w, clock, walk(w, clock))


def build_world(store_url: str, tmp_path: Path) -> PortalWorld:
    """The world, its client never entered: for a test that serves the app itself."""
    clock = MovableClock(START)
    w = registration_build(store_url, tmp_path, clock, price_tariff=TARIFF)
    return PortalWorld(w, clock, walk(w, clock))


def walk(w: World, clock: MovableClock) -> Made:
    made = Made(grants={"g2025": w.grant_id})
    _organise(w)
    _upload_firms(w)
    for name in ("governance", "guided", "cost_plus", "revoked", "refused", "pending"):
        made.jobs[name] = job(w, clock, name)
    made.jobs["dummy"] = job(w, clock, "dummy", dummy=True)
    for name in ("governance", "guided", "cost_plus", "revoked"):
        made.products[name] = register(w, clock, made.jobs[name], name, CATEGORIES[name])
        price(w, made.products[name], *PRICES[name])
    refused = _apply(w, made.jobs["refused"], "refused", "industry_development")
    answer = post(w, "admin-1", f"/registrations/{refused}/refuse", REFUSAL)
    assert answer.status_code == 200, answer.text
    made.registrations["refused"] = refused
    made.registrations["pending"] = _apply(w, made.jobs["pending"], "pending", "public_governance")

    clock.now = datetime(2025, 6, 16, 2, 0, tzinfo=UTC)
    revoked = post(w, "admin-1", f"/{made.products['revoked']}/revoke", REFUSAL)
    assert revoked.status_code == 200, revoked.text
    made.grants["revoked_grant"] = _grant(w, "op-2", clock.now, days=365, scenario="试点核验")
    answer = w.client.post(
        f"/v1/grants/{made.grants['revoked_grant']}/revoke",
        headers=w.h("admin-1"),
        json={"reason": "试点结束"},
    )
    assert answer.status_code == 200, answer.text
    clock.now = datetime(2026, 2, 2, 2, 0, tzinfo=UTC)
    made.grants["g2026"] = _grant(w, "op-2", clock.now, days=365, scenario="企业信用评估")
    return made


def job(w: World, clock: MovableClock, name: str, *, dummy: bool = False) -> str:
    """A job of ``op-1`` under its grant, run and released at the clock's time (a dummy run:
    completed), its ``model.json`` written as the worker records it."""
    job_id = f"job-{name.replace('_', '-')}"
    outputs = Files(w.data_dir / "work").outputs(job_id)
    outputs.mkdir(parents=True)
    publish_model_summary(
        "model.json", coefficients={"const": 1.0, "x0": 0.5}, std_errors=None, n=400,
        df_resid=396, output_dir=outputs,
    )  # fmt: skip
    path = outputs / "model.json"
    entry = {"file": "model.json", "kind": "model", "sha256": sha256_file(path)}
    entry |= {"bytes": path.stat().st_size, "verdict": "PASS"}
    final = State.COMPLETED if dummy else State.RELEASED
    with w.app.state.engine.begin() as conn:
        create_job(
            conn, job_id=job_id, operator="op-1", grant_id=w.grant_id, kind="python",
            code=CODE, dummy=dummy, datasets=("firms",), clock=clock,
        )  # fmt: skip
        transition(
            conn, job_id, State.RUNNING, actor="system", outcome=Outcome.STARTED, clock=clock
        )
        transition(conn, job_id, State.CHECKING, actor="system", outcome=Outcome.RAN, clock=clock)
        record_outcome(conn, job_id, {"outputs": [entry], "verdict": "PASS"}, clock=clock)
        transition(conn, job_id, final, actor="system", outcome=Outcome.CHECKS_PASSED, clock=clock)
    return job_id


CODE = "from sandbox.sdk import publish_model_from  # job-code-marker-7f3a"
REFUSAL = {"reason": "材料不全", "legal_basis": "登记管理实施办法第十三条"}


def _organise(w: World) -> None:
    made = w.client.post(
        "/v1/organisations",
        headers=w.h("admin-1"),
        json={"id": "yushu-ops", "name": ORGANISATION, "kind": "operator"},
    )
    assert made.status_code == 201, made.text
    member = w.client.put("/v1/organisations/yushu-ops/members/op-1", headers=w.h("admin-1"))
    assert member.status_code == 200, member.text


def _upload_firms(w: World) -> None:
    """provider-1 uploads the firms file through REST: the registry has its bytes already
    (``populate`` stored them), so only the upload's ``dataset.registered`` event is new."""
    with io.BytesIO(firms_csv().encode()) as f:
        answer = w.client.post(
            "/v1/datasets",
            headers=w.h("provider-1"),
            files={"file": ("firms.csv", f, "text/csv")},
            data={"name": "firms", "entity_column": "credit_code"},
        )
    assert answer.status_code in (200, 201), answer.text


def _apply(w: World, job: str, name: str, category: str) -> str:
    body = first(job=job) | {"name": f"{name} product", "category": category}
    body |= {"price_class": "free", "price_basis": {}}  # priced once registered: ``price``
    made = post(w, "op-1", "/registrations", body)
    assert made.status_code == 201, made.text
    registration: str = made.json()["id"]
    return registration


def register(w: World, clock: MovableClock, job: str, name: str, category: str) -> str:
    """A first registration of ``job`` through the whole procedure; the product's id."""
    shown = to_publicity(w, _apply(w, job, name, category))
    clock.now = datetime.fromisoformat(shown["publicity_ends_at"])
    done = post(w, "admin-1", f"/registrations/{shown['id']}/register")
    assert done.status_code == 200, done.text
    product: str = done.json()["product"]
    return product


def price(w: World, product_id: str, price_class: str, basis: dict[str, Any]) -> None:
    """Set a product's price columns (see the module docstring)."""
    with w.app.state.engine.begin() as conn:
        conn.execute(
            sa.update(products)
            .where(products.c.id == product_id)
            .values(price_class=price_class, price_basis=basis)
        )


def _grant(w: World, operator: str, start: datetime, *, days: int, scenario: str) -> str:
    with w.app.state.engine.begin() as conn:
        grant = grant_service(w.app).create(
            conn,
            operator=operator,
            scenario=scenario,
            purpose="银行核验企业申报的纳税与社保记录",
            scopes=[("firms", ("annual_tax", "months"))],
            valid_from=start,
            valid_until=start + timedelta(days=days),
            actor="admin-1",
            now=start,
        )
    return grant.id
