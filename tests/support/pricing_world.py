"""Helpers of the pricing and cost tests (``gateway.pricing``, ``gateway.costs``).

``open_world`` is ``tests.support.product_registration.make_world`` (accounts of
``tests.support.he_world``: ``op-1``/``op-2`` operators, ``bank-1``/``bank-2``
consumers, ``admin-1``, ``auditor-1``, ``rev-1``, ``provider-1``; a grant of ``op-1``
over the firms dataset) with the guided tariff :data:`TARIFF`, no publicity (a
registration is granted at once) and the default cost rates. ``metered_job`` writes a
released job with the usage the worker would record; ``registered`` takes a first
registration through the procedure over REST and returns the product's JSON.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from gateway.jobs.model import Outcome, State, create_job, transition
from gateway.jobs.outcomes import record_outcome
from tests.support.he_world import World
from tests.support.product_registration import MovableClock, make_world, post

TARIFF = {
    "credit-check": {"unit": "call", "price_fen": 250},
    "district-report": {"unit": "copy", "price_fen": 80_000},
}
RATES = {"cpu_second_fen": 1, "gb_scanned_fen": 100, "storage_gb_day_fen": 2}
RATES |= {"review_hour_fen": 15_000}
GOVERNANCE = {"category": "public_governance"}
INDUSTRY = {"category": "industry_development"}


def open_world(
    store_url: str, tmp_path: Path, clock: MovableClock, **settings: Any
) -> Iterator[World]:
    settings = {"price_tariff": TARIFF, "product_publicity_working_days": 0} | settings
    yield from make_world(store_url, tmp_path, clock, **settings)


def metered_job(
    w: World,
    clock: MovableClock,
    *,
    cpu_seconds: float,
    bytes_scanned: int = 0,
    output_bytes: int = 1000,
    operator: str = "op-1",
) -> str:
    """A released SQL job of ``operator`` under the world's grant, finished at the clock's
    time, whose outcome holds this usage and one released file of ``output_bytes``."""
    job_id = "job-" + secrets.token_hex(8)
    entry = {"file": "result.csv", "kind": "table", "sha256": "0" * 64}
    entry |= {"bytes": output_bytes, "verdict": "PASS"}
    with w.app.state.engine.begin() as conn:
        create_job(
            conn, job_id=job_id, operator=operator, grant_id=w.grant_id, kind="sql",
            code="SELECT district, count(*) FROM firms GROUP BY district", dummy=False,
            datasets=("firms",),
        )  # fmt: skip
        transition(conn, job_id, State.RUNNING, actor="system", outcome=Outcome.STARTED,
                   clock=clock)  # fmt: skip
        transition(conn, job_id, State.CHECKING, actor="system", outcome=Outcome.RAN,
                   clock=clock)  # fmt: skip
        usage = {"cpu_seconds": cpu_seconds, "bytes_scanned": bytes_scanned, "rows_scanned": 10}
        usage |= {"output_bytes": output_bytes, "sandbox_seconds": 3.0}
        record_outcome(conn, job_id, {"outputs": [entry], "verdict": "PASS"} | usage)
        transition(conn, job_id, State.RELEASED, actor="system",
                   outcome=Outcome.CHECKS_PASSED, clock=clock)  # fmt: skip
    return job_id


def apply(w: World, *, who: str = "op-1", **body: Any) -> Any:
    """A first registration application (``job=`` or ``he_product=`` and the price)."""
    base: dict[str, Any] = {"type": "first", "name": "District firm counts"}
    base |= {"description": "Firms per district and tax band."}
    return post(w, who, "/registrations", base | body)


def grant_registration(w: World, registration_id: str) -> dict[str, Any]:
    """Accept, review, publicise (no publicity) and register; the product's JSON."""
    for step in ("accept", "review", "publicise", "register"):
        done = post(w, "admin-1", f"/registrations/{registration_id}/{step}")
        assert done.status_code == 200, (step, done.text)
    product_id = done.json()["product"]
    found: dict[str, Any] = get(w, "admin-1", f"/v1/products/{product_id}").json()
    return found


def registered(w: World, **body: Any) -> dict[str, Any]:
    """A product registered through the procedure over REST (see :func:`apply`)."""
    made = apply(w, **body)
    assert made.status_code == 201, made.text
    return grant_registration(w, made.json()["id"])


def get(w: World, who: str, path: str, **params: Any) -> Any:
    return w.client.get(path, headers=w.h(who), params=params)


def price(w: World, who: str, product_id: str, price_class: str, **basis: Any) -> Any:
    body = {"price_class": price_class, "price_basis": basis}
    return w.client.put(f"/v1/products/{product_id}/price", headers=w.h(who), json=body)


def charge(w: World, who: str, product_id: str, **body: Any) -> Any:
    body = {"payer": "bank-1", "quantity": 1, "reference": "INV-1"} | body
    return w.client.post(f"/v1/products/{product_id}/charges", headers=w.h(who), json=body)


def fen(quantity: float, rate_fen: int) -> int:
    """The ledger's rounding, recomputed: quantity (6 decimals) x rate, half up."""
    exact = Decimal(repr(round(quantity, 6))) * rate_fen
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
