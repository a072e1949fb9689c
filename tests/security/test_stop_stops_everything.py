"""An operator (and its consumers) against a stop: using a grant after it was stopped.

The README says a suspended, revoked or expired grant "stops everything at
once". Before this, only submissions checked the grant: an operator could
still download a released job's files, register a product from it or renew
one, after the grant was suspended or even revoked. Now each of those, and a
consumer's privacy-computing call, answers 409 under a grant that is not
active, and the refusal is audited as a denied ``scope.decision`` naming the
action and the reason (committed although the request is refused).

Real pieces: the app from ``create_app`` on SQLite, a released job recorded
as the worker records one (its files on disk), the REST routes; for the call,
a verification product with real TenSEAL keys, evaluated in process (the call
is refused before evaluation). On the code before this, the download after a
suspension answered 200, and the product routes 201/200.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.he.client import VerificationKeys
from tests.support.gateway import Gateway, make_gateway
from tests.support.grants import events, issue, register_dataset, released_job
from tests.support.he_world import World as HEWorld
from tests.support.he_world import code, make_world
from tests.support.product_registration import finish_in_store, register_in_store

STOPS = ("suspended", "revoked")
CSV = b"age,n\n20,12\n30,15\n"


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[Gateway]:
    with make_gateway(tmp_path / "var") as gw:
        register_dataset(gw.app, "people", "provider")
        yield gw


def stop_grant(gw: Gateway, grant_id: str, how: str) -> None:
    action = "suspend" if how == "suspended" else "revoke"
    r = gw.post("provider", f"/v1/grants/{grant_id}/{action}", json={"reason": "rectification"})
    assert r.status_code == 200 and r.json()["state"] == how, r.text


def refusals(app: Any, action: str) -> list[dict[str, Any]]:
    return [
        e
        for e in events(app, "scope.decision")
        if e.get("action") == action and e.get("allowed") is False
    ]


@pytest.mark.parametrize("how", STOPS)
def test_no_download_under_a_stopped_grant(gw: Gateway, how: str) -> None:
    g = issue(gw.app)
    job = released_job(gw.app, g.id, files={"result.csv": CSV})
    url = f"/v1/jobs/{job}/outputs/result.csv"
    assert gw.get("operator", url).content == CSV  # while the grant is active
    stop_grant(gw, g.id, how)
    refused = gw.get("operator", url)
    assert refused.status_code == 409, refused.text
    assert how in refused.json()["detail"]
    [denied] = refusals(gw.app, "download")
    assert denied["grant_id"] == g.id and denied["job"] == job and denied["actor"] == "operator"
    assert how in denied["reason"][0] and denied["datasets"] == ["people"]
    assert len(events(gw.app, "download")) == 1  # only the download made while active


@pytest.mark.parametrize("how", STOPS)
def test_no_product_registered_or_renewed_under_a_stopped_grant(gw: Gateway, how: str) -> None:
    g = issue(gw.app)
    first = released_job(gw.app, g.id, files={"result.csv": CSV})
    second = released_job(gw.app, g.id, files={"other.csv": CSV})
    body = {"type": "first", "name": "care homes by age", "description": "counts"}
    body |= {"category": "public_governance"}
    made = gw.post("operator", "/v1/products/registrations", json=body | {"job": first})
    assert made.status_code == 201, made.text
    product = finish_in_store(gw.app, made.json()["id"])
    stop_grant(gw, g.id, how)
    refused = gw.post("operator", "/v1/products/registrations", json=body | {"job": second})
    assert refused.status_code == 409 and how in refused.json()["detail"], refused.text
    renewed = gw.post("operator", f"/v1/products/{product}/renew")
    assert renewed.status_code == 409 and how in renewed.json()["detail"], renewed.text
    assert [e["job"] for e in refusals(gw.app, "product.apply")] == [second]
    assert [e["product"] for e in refusals(gw.app, "product.renew")] == [product]
    listed = gw.get("operator", "/v1/products").json()
    assert [p["job"] for p in listed] == [first] and listed[0]["renewed_at"] is None


@pytest.fixture(scope="module")
def vkeys() -> VerificationKeys:
    return VerificationKeys.make()


@pytest.fixture
def he(tmp_path: Path) -> Iterator[HEWorld]:
    w = make_world(tmp_path / "he", he_evaluator="process")
    with w.client:
        yield w
    w.app.state.engine.dispose()


@pytest.mark.parametrize("how", STOPS)
def test_no_privacy_computing_call_under_a_stopped_grant(
    he: HEWorld, vkeys: VerificationKeys, how: str
) -> None:
    body = {"kind": "verify", "name": "tax band", "grant": he.grant_id, "consumers": ["bank-1"]}
    body |= {"dataset": "firms", "value_column": "months", "threshold": 24}
    made = he.client.post("/v1/he/products", headers=he.h("op-1"), json=body)
    assert made.status_code == 201, made.text
    product = made.json()
    decision = {"decision": "approve", "reason": "one yes/no answer"}
    ok = he.client.post(f"/v1/he/products/{product['id']}/decision", headers=he.h("rev-1"),
                        json=decision)  # fmt: skip
    assert ok.status_code == 200, ok.text
    register_in_store(he.app, "op-1", he_product=product["id"])  # offered: registered
    context = he.client.post(
        "/v1/he/contexts?kind=verify",
        headers=he.h("bank-1", **{"Content-Type": "application/octet-stream"}),
        content=vkeys.public_context(),
    ).json()["id"]
    action = "suspend" if how == "suspended" else "revoke"
    stopped = he.client.post(f"/v1/grants/{he.grant_id}/{action}", headers=he.h("provider-1"),
                             json={"reason": "rectification"})  # fmt: skip
    assert stopped.status_code == 200 and stopped.json()["state"] == how, stopped.text
    query = vkeys.encrypt_claim(product["id"], code(5), 1, bucket_bits=0)
    call = he.client.post(
        f"/v1/he/products/{product['id']}/verify?context={context}&bucket={query.bucket}",
        headers=he.h("bank-1", **{"Content-Type": "application/octet-stream"}),
        content=query.ciphertext,
    )
    assert call.status_code == 409, call.text
    assert he.grant_id not in call.text  # the consumer is told no grant id
    denied = [
        e
        for e in he.events("scope.decision")
        if e.get("action") == "he.verify" and e.get("allowed") is False
    ]
    assert len(denied) == 1 and how in denied[0]["reason"][0]
    assert denied[0]["actor"] == "bank-1" and denied[0]["he_product"] == product["id"]
    assert [e["outcome"] for e in he.events("he.call")] == ["HEConflict"]
