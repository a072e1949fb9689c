"""The registration procedure over REST (registration measures 001 art. 13, 15).

A released job of ``op-1`` is applied for, accepted, formally reviewed and
publicised for ten working days counted across National Day 2025; objections
are raised and resolved; it is registered only after publicity with none
pending, gets the first code of the year and a validity capped by the grant.
Then a change, a correction and a cancellation of the product, and refusals
(by an administrator, by an upheld objection) with their reason and basis.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.he_world import World, released_model_job
from tests.support.product_registration import MovableClock, first, make_world, post, to_publicity

# Friday 26 September 2025, 10:00 CST: National Day (1-8 October) is ahead, with the
# make-up working days Sunday 28 September and Saturday 11 October.
START = datetime(2025, 9, 26, 2, 0, tzinfo=UTC)
TERMS = {"const": 1.0, "x0": 0.5}


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(START)


@pytest.fixture
def world(store_url: str, tmp_path: Path, clock: MovableClock) -> Iterator[World]:
    yield from make_world(store_url, tmp_path, clock)


def test_the_whole_procedure_with_objections(world: World, clock: MovableClock) -> None:
    w = world
    job = released_model_job(w, TERMS)
    assert post(w, "op-2", "/registrations", first(job=job)).status_code == 403  # not theirs
    made = post(w, "op-1", "/registrations", first(job=job))
    assert made.status_code == 201, made.text
    reg = made.json()
    assert (reg["state"], reg["type"], reg["job"]) == ("applied", "first", job)
    assert post(w, "op-1", "/registrations", first(job=job)).status_code == 409  # one at a time
    rid = reg["id"]
    # Only the registration body moves it; nothing is registered before its steps.
    assert post(w, "op-1", f"/registrations/{rid}/accept").status_code == 403
    assert post(w, "admin-1", f"/registrations/{rid}/register").status_code == 409
    assert post(w, "admin-1", f"/registrations/{rid}/publicise").status_code == 409
    assert w.client.get("/v1/products", headers=w.h("auditor-1")).json() == []

    clock.advance(days=3)  # Monday 29 September
    shown = to_publicity(w, rid)
    # Ten working days after 29 September: 30 Sep, 9, 10, 11 (Saturday, worked), 13-17,
    # 20 October; publicity ends at the end of 20 October, CST.
    ends = datetime.fromisoformat(shown["publicity_ends_at"])
    assert ends == datetime(2025, 10, 20, 16, 0, tzinfo=UTC)

    # Objections: everyone signed in but consumers and the applicant, until publicity ends.
    reasons = {"reasons": "the job's outputs were described as district counts elsewhere"}
    path = f"/registrations/{rid}/objections"
    assert post(w, "bank-1", path, reasons).status_code == 403
    assert post(w, "op-1", path, reasons).status_code == 403
    objection = post(w, "provider-1", path, reasons)
    assert objection.status_code == 201, objection.text
    seen = w.client.get(f"/v1/products/registrations/{rid}", headers=w.h("op-2")).json()
    assert [o["state"] for o in seen["objections"]] == ["pending"]  # publicity is public

    clock.now = ends - timedelta(seconds=1)
    assert post(w, "admin-1", f"/registrations/{rid}/register").status_code == 409  # not ended
    clock.now = ends
    assert post(w, "rev-1", path, reasons).status_code == 409  # objections closed
    pending = post(w, "admin-1", f"/registrations/{rid}/register")
    assert pending.status_code == 409 and "objections pending" in pending.json()["detail"]
    resolve = f"/objections/{objection.json()['id']}/resolve"
    dismissal = {"decision": "dismiss", "reason": "the description matches the manifest"}
    assert post(w, "provider-1", resolve, dismissal).status_code == 403
    assert post(w, "admin-1", resolve, dismissal).json()["state"] == "dismissed"
    assert post(w, "admin-1", resolve, dismissal).status_code == 409  # resolved once

    done = post(w, "admin-1", f"/registrations/{rid}/register")
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "registered"
    product = w.client.get(f"/v1/products/{done.json()['product']}", headers=w.h("rev-1")).json()
    assert product["registration_code"] == "CQGSJ-2025-000001"
    assert product["status"] == "registered" and product["job"] == job
    grant = w.client.get(f"/v1/grants/{w.grant_id}", headers=w.h("admin-1")).json()
    # Three years from the code's date, but the grant ends sooner: its end (art. 15).
    assert product["valid_until"] == grant["valid_until"]
    listed = w.client.get("/v1/products", headers=w.h("auditor-1")).json()
    assert [(p["id"], p["registration_code"]) for p in listed] == [
        (product["id"], "CQGSJ-2025-000001")
    ]
    assert w.client.get("/v1/products", headers=w.h("bank-1")).status_code == 403
    moves = [(e["from"], e["to"]) for e in w.events("product.registration")]
    assert moves == [
        (None, "applied"),
        ("applied", "accepted"),
        ("accepted", "formal_review"),
        ("formal_review", "publicity"),
        ("publicity", "registered"),
    ]
    assert [e["to"] for e in w.events("product.objection")] == ["pending", "dismissed"]


def _registered(w: World, clock: MovableClock, body: dict[str, object]) -> dict[str, object]:
    made = post(w, "op-1", "/registrations", body)
    assert made.status_code == 201, made.text
    shown = to_publicity(w, made.json()["id"])
    clock.now = datetime.fromisoformat(shown["publicity_ends_at"])
    done = post(w, "admin-1", f"/registrations/{shown['id']}/register")
    assert done.status_code == 200, done.text
    registered: dict[str, object] = done.json()
    return registered


def test_change_correction_and_cancellation(world: World, clock: MovableClock) -> None:
    w = world
    product_id = _registered(w, clock, first(job=released_model_job(w, TERMS)))["product"]
    before = w.client.get(f"/v1/products/{product_id}", headers=w.h("op-1")).json()
    change = {"type": "change", "product": product_id, "name": "Tax bands by street"}
    assert post(w, "op-1", "/registrations", change).status_code == 422  # no statement
    assert post(w, "op-2", "/registrations", change | {"statement": "x"}).status_code == 403
    _registered(w, clock, change | {"statement": "the breakdown is finer now"})
    correction = {"type": "correction", "product": product_id, "category": "industry_development"}
    _registered(w, clock, correction | {"statement": "the class was entered wrongly"})
    after = w.client.get(f"/v1/products/{product_id}", headers=w.h("op-1")).json()
    assert (after["name"], after["category"]) == ("Tax bands by street", "industry_development")
    # The code and validity stay what they were.
    assert after["registration_code"] == before["registration_code"]
    assert after["valid_until"] == before["valid_until"]
    cancel = {"type": "cancellation", "product": product_id, "statement": "no longer offered"}
    _registered(w, clock, cancel)
    gone = w.client.get(f"/v1/products/{product_id}", headers=w.h("op-1")).json()
    assert gone["status"] == "cancelled"
    assert w.client.get("/v1/products", headers=w.h("op-1")).json() == []
    every = w.client.get("/v1/products?status=all", headers=w.h("op-1")).json()
    assert [p["status"] for p in every] == ["cancelled"]
    assert post(w, "op-1", "/registrations", change | {"statement": "x"}).status_code == 409
    actions = [e["action"] for e in w.events("product.registered")]
    assert actions == ["registered", "changed", "corrected"]
    (status,) = w.events("product.status")
    assert (status["from"], status["to"]) == ("registered", "cancelled")


def test_refusals_name_their_reason_and_basis(world: World, clock: MovableClock) -> None:
    w = world
    refusal = {"reason": "the description does not match the outputs",
               "legal_basis": "registration measures (001) art. 9"}  # fmt: skip
    rid = post(w, "op-1", "/registrations", first(job=released_model_job(w, TERMS))).json()["id"]
    assert post(w, "admin-1", f"/registrations/{rid}/refuse", {"reason": "x"}).status_code == 422
    refused = post(w, "admin-1", f"/registrations/{rid}/refuse", refusal).json()
    assert (refused["state"], refused["refusal_reason"], refused["refusal_basis"]) == (
        "refused", refusal["reason"], refusal["legal_basis"]
    )  # fmt: skip
    assert post(w, "admin-1", f"/registrations/{rid}/accept").status_code == 409  # final

    # An upheld objection refuses the application in publicity.
    job = released_model_job(w, TERMS)
    rid = post(w, "op-1", "/registrations", first(job=job)).json()["id"]
    to_publicity(w, rid)
    objection = post(w, "rev-1", f"/registrations/{rid}/objections", {"reasons": "false data"})
    resolve = f"/objections/{objection.json()['id']}/resolve"
    assert post(w, "admin-1", resolve, {"decision": "uphold", "reason": "r"}).status_code == 422
    upheld = {"decision": "uphold", "reason": "the material is false",
              "legal_basis": "registration measures (001) art. 9, art. 13"}  # fmt: skip
    assert post(w, "admin-1", resolve, upheld).json()["state"] == "upheld"
    shown = w.client.get(f"/v1/products/registrations/{rid}", headers=w.h("op-1")).json()
    assert (shown["state"], shown["refusal_reason"]) == ("refused", "the material is false")
    # The refused job may be applied for again.
    assert post(w, "op-1", "/registrations", first(job=job)).status_code == 201
    # An operator sees their own applications; another operator none but those in publicity.
    mine = w.client.get("/v1/products/registrations", headers=w.h("op-1")).json()
    assert len(mine) == 3
    assert w.client.get("/v1/products/registrations", headers=w.h("op-2")).json() == []
    hidden = w.client.get(f"/v1/products/registrations/{rid}", headers=w.h("op-2"))
    assert hidden.status_code == 404
