"""A consumer against the operator: reading more of a privacy-computing product than it
needs to call it.

A consumer (a bank) is offered products to call; it has no business knowing
the operator's internals. Before this, ``GET /v1/he/products`` and ``GET
/v1/he/products/{id}`` showed a consumer every product listing it, pending
or suspended ones included, with the operator, the grant id, the job and
file a scoring model came from, and the other consumers. Now a consumer sees
only the approved products that list it, through a schema of its own
(``ConsumerProductOut``): id, name, kind, state and what a call needs (the
dataset and its subject and value columns with the bands and bucket bits; or
the feature order), never the operator, a job, a grant or a coefficient; and
that is enough to call.

Real pieces: the app from ``create_app`` on SQLite with the firms dataset and
a grant (``tests.support.he_world``), a released model job, real TenSEAL keys,
evaluation in process. On the code before this, the consumer's list held the
pending product and every product carried ``operator`` and ``grant``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.he.client import VerificationKeys
from tests.support.he_world import World, code, make_world, months, released_model_job
from tests.support.product_registration import register_in_store

OCTETS = {"Content-Type": "application/octet-stream"}
CONSUMER_KEYS = {"id", "kind", "name", "state", "spec"}
TERMS = {"const": 0.5, "months": 0.25, "annual_tax": 0.001}


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    world = make_world(tmp_path / "var", he_evaluator="process")
    with world.client:
        yield world
    world.app.state.engine.dispose()


def define(w: World, **body: Any) -> dict[str, Any]:
    base = {"grant": w.grant_id, "consumers": ["bank-1", "bank-2"]}
    made = w.client.post("/v1/he/products", headers=w.h("op-1"), json=base | body)
    assert made.status_code == 201, made.text
    product: dict[str, Any] = made.json()
    return product


def approve(w: World, product_id: str) -> None:
    body = {"decision": "approve", "reason": "coarse answers to licensed banks"}
    done = w.client.post(f"/v1/he/products/{product_id}/decision", headers=w.h("rev-1"), json=body)
    assert done.status_code == 200, done.text
    register_in_store(w.app, "op-1", he_product=product_id)  # offered only once registered


def secrets_of(w: World, job: str) -> list[str]:
    """What no consumer's answer may hold: the operator, the grant, the job, the model."""
    return ["op-1", w.grant_id, job, "model.json", "coefficients", "intercept", '"subjects"']


def test_a_consumer_sees_only_approved_products_and_only_what_it_calls_with(w: World) -> None:
    verify = define(w, kind="verify", name="24 months", dataset="firms",
                    value_column="months", threshold=24)  # fmt: skip
    job = released_model_job(w, TERMS)
    score = define(w, kind="score", name="credit score", job=job, file="model.json",
                   features=["months", "annual_tax"])  # fmt: skip
    pending = define(w, kind="verify", name="tax band", dataset="firms",
                     value_column="annual_tax", boundaries=[100_000, 300_000])  # fmt: skip
    approve(w, verify["id"])
    approve(w, score["id"])

    listed = w.client.get("/v1/he/products", headers=w.h("bank-1"))
    assert listed.status_code == 200
    assert sorted(p["id"] for p in listed.json()) == sorted([verify["id"], score["id"]])
    for product in listed.json():
        assert set(product) == CONSUMER_KEYS, product
        assert product["state"] == "approved"
    text = listed.text
    assert not any(s in text for s in secrets_of(w, job)), text
    assert "bank-2" not in text  # nor the other consumers

    shown = w.client.get(f"/v1/he/products/{verify['id']}", headers=w.h("bank-1")).json()
    spec = {k: v for k, v in shown["spec"].items() if v is not None}
    assert spec == {"dataset": "firms", "subject_column": "credit_code",
                    "value_column": "months", "boundaries": [24.0], "bucket_bits": 0}  # fmt: skip
    scored = w.client.get(f"/v1/he/products/{score['id']}", headers=w.h("bank-1"))
    assert scored.json()["spec"]["features"] == ["months", "annual_tax"]
    assert not any(s in scored.text for s in secrets_of(w, job)), scored.text
    # A pending product is not there for a consumer (404, as for one never offered).
    hidden = w.client.get(f"/v1/he/products/{pending['id']}", headers=w.h("bank-1"))
    assert hidden.status_code == 404 and "op-1" not in hidden.text
    # The operator and oversight still see everything.
    mine = w.client.get(f"/v1/he/products/{score['id']}", headers=w.h("op-1")).json()
    assert mine["grant"] == w.grant_id and mine["spec"]["coefficients"]
    assert len(w.client.get("/v1/he/products", headers=w.h("auditor-1")).json()) == 3


def test_what_a_consumer_sees_is_enough_to_call(w: World) -> None:
    verify = define(w, kind="verify", name="24 months", dataset="firms",
                    value_column="months", threshold=24)  # fmt: skip
    approve(w, verify["id"])
    seen = w.client.get(f"/v1/he/products/{verify['id']}", headers=w.h("bank-2")).json()
    keys = VerificationKeys.make()
    context = w.client.post("/v1/he/contexts?kind=verify", headers=w.h("bank-2", **OCTETS),
                            content=keys.public_context())  # fmt: skip
    assert context.status_code == 201, context.text
    i = 30
    claim = int(months(i) >= seen["spec"]["boundaries"][0])
    query = keys.encrypt_claim(seen["id"], code(i), claim, bucket_bits=seen["spec"]["bucket_bits"])
    answer = w.client.post(
        f"/v1/he/products/{seen['id']}/verify?context={context.json()['id']}&bucket={query.bucket}",
        headers=w.h("bank-2", **OCTETS),
        content=query.ciphertext,
    )
    assert answer.status_code == 200, answer.text
    assert keys.read_answer(answer.content) is True
    assert json.dumps(seen).count("op-1") == 0


def test_a_consumer_does_not_read_the_data_products_lineage(w: World) -> None:
    """Registered data products carry their job, grant and operator: not a consumer's."""
    for path in ("/v1/products", "/v1/products/p-0000000000000000"):
        refused = w.client.get(path, headers=w.h("bank-1"))
        assert refused.status_code == 403, refused.text
        assert "op-1" not in refused.text and w.grant_id not in refused.text
