"""Privacy-computing products through the gateway, with real TenSEAL, SQLite and DuckDB:
definition under a grant (scope-checked), approval, contexts, encrypted calls,
rate limits across a restart, suspension, and what the platform never holds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import tenseal as ts

from gateway.grants.model import Holder, HolderKind
from gateway.grants.model import State as GrantState
from gateway.grants.service import grant_service
from gateway.he.model import get_product
from sandbox.container.he.protocol import claim_element
from sandbox.he.client import ScoringKeys, VerificationKeys
from tests.support.access import HE_PRODUCTS as ACCESS
from tests.support.he_products import (
    OCTETS,
    approve,
    ask,
    assert_nowhere,
    band,
    define,
    ready_product,
    register,
    secret_chunk,
)
from tests.support.he_world import (
    FIRMS,
    World,
    closed,
    code,
    make_world,
    months,
    open_app,
    released_model_job,
)
from tests.support.product_registration import register_in_store

ROLE_ACCOUNT = {
    "operator": "op-1",
    "reviewer": "rev-1",
    "consumer": "bank-1",
    "provider": "provider-1",
    "admin": "admin-1",
    "auditor": "auditor-1",
}


@pytest.fixture(scope="module")
def vkeys() -> VerificationKeys:
    return VerificationKeys.make()


@pytest.fixture(scope="module")
def vkeys_other() -> VerificationKeys:
    return VerificationKeys.make()


@pytest.fixture(scope="module")
def skeys() -> ScoringKeys:
    return ScoringKeys.make()


@pytest.fixture(autouse=True)
def _runc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSR_RUNTIME", "runc")  # the evaluation sandbox starts faster


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path / "var", he_calls_per_hour=50)
    with w.client:
        yield w
    w.app.state.engine.dispose()


def test_verification_answers_only_the_claim_and_nothing_is_kept(
    world: World, vkeys: VerificationKeys, vkeys_other: VerificationKeys
) -> None:
    w = world
    made = define(w)
    assert made.status_code == 201, made.text
    product = made.json()
    assert product["state"] == "pending_approval" and product["spec"]["bucket_bits"] == 0
    context = register(w, vkeys.public_context()).json()["id"]
    # Not approved yet: refused, and audited.
    early = ask(w, vkeys, product, context, code(5), band(5))
    assert early.status_code == 409 and "pending_approval" in early.json()["detail"]
    # The definer cannot approve their own product (op-rev is operator and reviewer).
    own = define(w, "op-rev")
    assert own.status_code == 403  # op-rev holds no grant: refused before anything
    assert approve(w, product["id"]).json()["state"] == "approved"
    assert approve(w, product["id"]).status_code == 409  # decided once
    register_in_store(w.app, "op-1", he_product=product["id"])  # offered only once registered

    for i in (5, 77, 150, 239):
        assert not closed(i)
        yes = ask(w, vkeys, product, context, code(i), band(i))
        assert yes.status_code == 200, yes.text
        assert yes.headers["content-type"] == "application/octet-stream"
        assert vkeys.read_answer(yes.content) is True
        no = ask(w, vkeys, product, context, code(i), (band(i) + 1) % 4)
        assert vkeys.read_answer(no.content) is False
        # Another consumer's key reads garbage: no slot decrypts to zero.
        assert vkeys_other.read_answer(yes.content) is False
    # A closed firm is outside the view (row filter): its true band never matches.
    gone = next(i for i in range(FIRMS) if closed(i))
    assert (
        vkeys.read_answer(ask(w, vkeys, product, context, code(gone), band(gone)).content) is False
    )
    assert vkeys.read_answer(ask(w, vkeys, product, context, "NOT-A-FIRM", 0).content) is False

    # A second consumer is not offered the product.
    theirs = register(w, vkeys_other.public_context(), who="bank-2").json()["id"]
    refused = ask(w, vkeys_other, product, theirs, code(5), band(5), who="bank-2")
    assert refused.status_code == 403
    # A consumer cannot use another consumer's context.
    assert ask(w, vkeys, product, theirs, code(5), band(5)).status_code == 404

    calls = [e for e in w.events("he.call") if e.get("outcome") == "answered"]
    assert len(calls) == 10 and all(c["actor"] == "bank-1" and c["bucket"] == 0 for c in calls)
    assert {e["outcome"] for e in w.events("he.call")} >= {"HEConflict", "HEForbidden"}

    # Nothing the platform keeps holds a subject, a claim or the secret key.
    secret = vkeys.context.serialize(save_secret_key=True)
    public = vkeys.public_context()
    key_chunk = secret_chunk(secret, public)
    needles = [code(5).encode(), code(239).encode(), key_chunk]
    needles += [str(claim_element(product["id"], code(5), band(5))).encode()]
    assert_nowhere(w.data_dir, needles, allow_in=[w.data_dir / "datasets"])


def test_a_yes_no_threshold_product(world: World, vkeys: VerificationKeys) -> None:
    product, context = ready_product(
        world, vkeys, name="24 months", value_column="months", boundaries=None, threshold=24
    )
    for i in (10, 30):
        expected = int(months(i) >= 24)
        answer = ask(world, vkeys, product, context, code(i), expected)
        assert vkeys.read_answer(answer.content) is True
        answer = ask(world, vkeys, product, context, code(i), 1 - expected)
        assert vkeys.read_answer(answer.content) is False


def test_predicates_outside_the_grant_are_refused(world: World) -> None:
    w = world
    for column, why in [
        ("employees", "no rule matched"),  # a visible column the grant does not cover
        ("legal_rep", "join_key"),  # granted, but a keyed pseudonym
        ("name", "no rule matched"),  # hidden
        ("credit_code", "no rule matched"),  # the subject itself
    ]:
        refused = define(w, value_column=column)
        assert refused.status_code == 403, (column, refused.text)
        assert why in refused.json()["detail"], refused.text
    assert define(w, dataset="tax").status_code == 403
    decisions = [e for e in w.events("scope.decision") if "he_product" in e]
    assert len(decisions) == 5 and not any(d["allowed"] for d in decisions)
    assert define(w, "op-2").status_code == 403  # another operator's grant
    assert define(w, value_column="district").status_code == 422  # generalised text
    assert define(w, boundaries=[3.0, 1.0]).status_code == 422
    assert define(w, consumers=["op-2"]).status_code == 422  # not a consumer account
    assert w.client.get("/v1/he/products", headers=w.h("op-1")).json() == []


def test_contexts_are_checked_and_bodies_capped(
    world: World, vkeys: VerificationKeys, skeys: ScoringKeys
) -> None:
    w = world
    with_secret = vkeys.context.serialize(save_secret_key=True)
    refused = register(w, with_secret)
    assert refused.status_code == 422 and "secret key" in refused.json()["detail"]
    ckks = ts.context(ts.SCHEME_TYPE.CKKS, 8192, -1, [60, 40, 40, 60])
    wrong = register(w, ckks.serialize(save_secret_key=False, save_galois_keys=False))
    assert wrong.status_code == 422 and "BFV" in wrong.json()["detail"]
    assert register(w, skeys.public_context()).status_code == 413  # over the verify cap
    assert register(w, b"\x00" * 5 * 2**20).status_code == 413
    assert register(w, b"not a context").status_code == 422
    assert not (w.data_dir / "he" / "contexts").exists() or not list(
        (w.data_dir / "he" / "contexts").iterdir()
    )
    events = w.events("he.context")
    assert [e["outcome"] for e in events] == ["refused", "refused", "refused"]  # not 413s
    assert events[0]["reason"] == "SecretKeyPresent"
    good = register(w, skeys.public_context(), kind="score")
    assert good.status_code == 201 and good.json()["bytes"] > 2**20  # over the 1 MiB body limit
    stored = w.data_dir / "he" / "contexts" / good.json()["id"]
    assert stored.stat().st_mode & 0o777 == 0o600


def test_rate_limit_holds_and_survives_a_restart(tmp_path: Path, vkeys: VerificationKeys) -> None:
    w = make_world(tmp_path / "var", he_calls_per_hour=3)
    with w.client:
        product, context = ready_product(w, vkeys)
        for _ in range(3):
            assert ask(w, vkeys, product, context, code(7), band(7)).status_code == 200
        limited = ask(w, vkeys, product, context, code(7), band(7))
        assert limited.status_code == 429 and 3000 <= int(limited.headers["Retry-After"]) <= 3600
        # Another consumer's calls are counted apart.
    w.app.state.engine.dispose()
    app = open_app(tmp_path / "var", he_calls_per_hour=3)
    restarted = World(app, __import__("fastapi.testclient").testclient.TestClient(app), w.tokens)
    with restarted.client:
        again = ask(restarted, vkeys, product, context, code(7), band(7))
        assert again.status_code == 429
        outcomes = [e["outcome"] for e in restarted.events("he.call")]
        assert outcomes.count("answered") == 3 and outcomes.count("HERateLimited") == 2
    app.state.engine.dispose()


def test_a_suspended_grant_stops_calls_and_a_revoked_one_withdraws(
    world: World, vkeys: VerificationKeys
) -> None:
    w = world
    product, context = ready_product(w, vkeys)
    grants = grant_service(w.app)
    provider = Holder(HolderKind.PROVIDER, "provider-1")
    with w.app.state.engine.begin() as conn:
        grants.suspend(conn, w.grant_id, provider, "provider-1", "rectification")
    got = w.client.get(f"/v1/he/products/{product['id']}", headers=w.h("op-1")).json()
    assert got["state"] == "suspended"
    # A consumer sees only approved products: a suspended one is not there for it.
    hidden = w.client.get(f"/v1/he/products/{product['id']}", headers=w.h("bank-1"))
    assert hidden.status_code == 404
    assert ask(w, vkeys, product, context, code(9), band(9)).status_code == 409
    with w.app.state.engine.begin() as conn:
        grants.resume(conn, w.grant_id, provider, "provider-1", "rectified")
    assert vkeys.read_answer(ask(w, vkeys, product, context, code(9), band(9)).content)
    with w.app.state.engine.begin() as conn:
        grants.transition(conn, w.grant_id, GrantState.REVOKED, "provider-1", "terminated")
    with w.app.state.engine.connect() as conn:  # withdrawn with the grant's end, not on use
        assert get_product(conn, product["id"]).state == "withdrawn"
    assert ask(w, vkeys, product, context, code(9), band(9)).status_code == 409
    got = w.client.get(f"/v1/he/products/{product['id']}", headers=w.h("op-1")).json()
    assert got["state"] == "withdrawn"
    moves = [(e["from"], e["to"]) for e in w.events("he.product")]
    assert moves == [
        (None, "pending_approval"),
        ("pending_approval", "approved"),
        ("approved", "suspended"),
        ("suspended", "approved"),
        ("approved", "withdrawn"),
    ]


def test_scoring_with_a_released_model(world: World, skeys: ScoringKeys) -> None:
    w = world
    terms = {"const": 1.5, **{f"x{j}": 0.25 * (j - 16) for j in range(32)}}
    job = released_model_job(w, terms)
    features = [f"x{j}" for j in range(32)]
    body = {"kind": "score", "name": "credit score", "grant": w.grant_id, "consumers": ["bank-1"]}
    body |= {"job": job, "file": "model.json", "features": features}
    held = released_model_job(w, terms, state="held")
    other = released_model_job(w, terms, operator="op-2")
    post = w.client.post
    assert (
        post("/v1/he/products", headers=w.h("op-1"), json=body | {"job": held}).status_code == 409
    )
    assert (
        post("/v1/he/products", headers=w.h("op-1"), json=body | {"job": other}).status_code == 403
    )
    short = body | {"features": features[:-1]}
    assert post("/v1/he/products", headers=w.h("op-1"), json=short).status_code == 422
    made = post("/v1/he/products", headers=w.h("op-1"), json=body)
    assert made.status_code == 201, made.text
    product = made.json()
    assert approve(w, product["id"]).status_code == 200
    register_in_store(w.app, "op-1", he_product=product["id"])  # offered only once registered
    seen = w.client.get(f"/v1/he/products/{product['id']}", headers=w.h("bank-1")).json()
    assert "coefficients" not in seen["spec"] and seen["spec"]["features"] == features
    context = register(w, skeys.public_context(), kind="score").json()["id"]
    x = [((j * 7) % 11) / 10 - 0.5 for j in range(32)]
    expected = terms["const"] + sum(terms[f"x{j}"] * x[j] for j in range(32))
    answer = w.client.post(
        f"/v1/he/products/{product['id']}/score?context={context}",
        headers=w.h("bank-1", **OCTETS),
        content=skeys.encrypt_features(x),
    )
    assert answer.status_code == 200, answer.text
    assert abs(skeys.read_score(answer.content) - expected) < 2e-3
    other_keys = ScoringKeys(ts.context(ts.SCHEME_TYPE.CKKS, 8192, -1, [60, 40, 40, 60]))
    other_keys.context.global_scale = 2.0**40
    assert abs(other_keys.read_score(answer.content) - expected) > 1.0
    # The verify route does not serve a scoring product.
    wrong = w.client.post(
        f"/v1/he/products/{product['id']}/verify?context={context}&bucket=0",
        headers=w.h("bank-1", **OCTETS),
        content=b"x",
    )
    assert wrong.status_code == 422
    assert {e["job"] for e in w.events("download")} == {job}  # the model was read, audited


def test_access_matrix(world: World) -> None:
    w = world
    paths = w.client.get("/openapi.json").json()["paths"]
    routes = {(m.upper(), p) for p, ops in paths.items() for m in ops if p.startswith("/v1/he/")}
    assert routes == set(ACCESS)
    for (method, path), allowed in sorted(ACCESS.items()):
        url = path.replace("{product_id}", "hp-0000")
        for role, who in ROLE_ACCOUNT.items():
            response = w.client.request(method, url, headers=w.h(who), json={})
            if allowed == "any" or role in allowed:
                assert response.status_code not in (401, 403), (method, path, role)
            else:
                assert response.status_code == 403, (method, path, role, response.text)
        assert w.client.request(method, url).status_code == 401
