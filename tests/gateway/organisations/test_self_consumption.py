"""No self-consumption (001 art. 20, 004 art. 21) on privacy-computing products, with
real TenSEAL and SQLite, evaluated in process (no Docker): a product cannot be offered
to its operator or a colleague of the operator's organisation; a call is refused once
the consumer joins the operator's organisation, whenever that happens; a consumer of
another organisation is served. Every refusal is audited as the HE module audits
its refusals (a denied ``scope.decision`` at definition, ``he.call`` at a call)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.identity import create_account, issue_token
from sandbox.he.client import VerificationKeys
from tests.support.he_products import ask, band, define, ready_product, register
from tests.support.he_world import World, code, make_world

ORGS = "/v1/organisations"
ARTICLE = "第二十条"


@pytest.fixture(scope="module")
def vkeys() -> VerificationKeys:
    return VerificationKeys.make()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """The HE world, plus ``op-bank`` (a consumer account of op-1's organisation), the
    organisations ``acme-ops`` (op-1, op-bank) and ``bank-a`` (bank-2)."""
    w = make_world(tmp_path / "var", he_evaluator="process", he_calls_per_hour=50)
    with w.app.state.engine.begin() as conn:
        create_account(conn, "op-bank", {"consumer"}, actor="test")
        w.tokens["op-bank"] = issue_token(conn, "op-bank", actor="test")
    with w.client:
        admin = w.h("admin-1")
        for org, kind in (("acme-ops", "operator"), ("bank-a", "financial")):
            made = w.client.post(ORGS, headers=admin, json={"id": org, "name": org, "kind": kind})
            assert made.status_code == 201, made.text
        for org, account in (("acme-ops", "op-1"), ("acme-ops", "op-bank"), ("bank-a", "bank-2")):
            assert join(w, org, account).status_code == 200
        yield w
    w.app.state.engine.dispose()


def join(w: World, org: str, account: str) -> object:
    return w.client.put(f"{ORGS}/{org}/members/{account}", headers=w.h("admin-1"))


def test_a_product_cannot_be_offered_to_its_operator_or_a_colleague(world: World) -> None:
    w = world
    itself = define(w, consumers=["op-1"])
    assert itself.status_code == 403 and ARTICLE in itself.json()["detail"], itself.text
    colleague = define(w, consumers=["bank-1", "op-bank"])
    assert colleague.status_code == 403, colleague.text
    assert "op-bank" in colleague.json()["detail"] and "bank-1" not in colleague.json()["detail"]
    assert w.client.get("/v1/he/products", headers=w.h("op-1")).json() == []
    refusals = [e for e in w.events("scope.decision") if e.get("action") == "offer"]
    assert [(e["actor"], e["allowed"], e["consumers"]) for e in refusals] == [
        ("op-1", False, ["op-1"]),
        ("op-1", False, ["op-bank"]),
    ]
    assert ARTICLE in refusals[0]["reason"][0]
    # Consumers of no organisation, or of another one, are offered the product.
    offered = define(w, consumers=["bank-1", "bank-2"])
    assert offered.status_code == 201, offered.text
    assert offered.json()["consumers"] == ["bank-1", "bank-2"]


def test_a_call_is_refused_once_the_consumer_joins_the_operators_organisation(
    world: World, vkeys: VerificationKeys
) -> None:
    w = world
    product, mine = ready_product(w, vkeys, consumers=["bank-1", "bank-2"])
    theirs = register(w, vkeys.public_context(), who="bank-2").json()["id"]
    first = ask(w, vkeys, product, mine, code(5), band(5))
    assert first.status_code == 200, first.text

    # The organisations change after the product was defined and approved.
    assert join(w, "acme-ops", "bank-1").status_code == 200
    refused = ask(w, vkeys, product, mine, code(5), band(5))
    assert refused.status_code == 403 and ARTICLE in refused.json()["detail"], refused.text
    last = w.events("he.call")[-1]
    assert (last["actor"], last["product"], last["outcome"]) == (
        "bank-1", product["id"], "SelfConsumption",
    )  # fmt: skip

    # A consumer of another organisation is served.
    served = ask(w, vkeys, product, theirs, code(77), band(77), who="bank-2")
    assert served.status_code == 200, served.text
    assert vkeys.read_answer(served.content) is True
    # Back out of the operator's organisation, bank-1 is served again.
    assert join(w, "bank-a", "bank-1").status_code == 200
    assert ask(w, vkeys, product, mine, code(5), band(5)).status_code == 200
    outcomes = [e["outcome"] for e in w.events("he.call") if e["actor"] == "bank-1"]
    assert outcomes == ["answered", "SelfConsumption", "answered"]
