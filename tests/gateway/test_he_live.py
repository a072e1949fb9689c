"""Privacy-computing products end to end over HTTP: ``dsr gateway serve`` in its own
process, a dataset uploaded by its provider, a grant through a data request, a product
defined and approved, and a bank verifying claims with ``gateway.he.client`` and
``dsr he``. Neither the store, the data directory nor the gateway's log holds a
subject, a claim or the bank's secret key."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.he.client import HEClient, load_keys, make_keys
from tests.support.engine import require_engine
from tests.support.he_products import BANDS, assert_nowhere, secret_chunk
from tests.support.he_world import FIRMS_POLICY, GRANTED, code, firms_csv, tax
from tests.support.live import DSR, LiveGateway, request_grant
from tests.support.product_registration import finish_in_data_dir


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveGateway]:
    require_engine()  # the served gateway starts its job worker on the local engine
    gw = LiveGateway(tmp_path / "var")
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()


def test_a_bank_verifies_claims_over_http(live: LiveGateway, tmp_path: Path) -> None:
    for name, role in [
        ("provider-1", "provider"), ("admin-1", "admin"), ("op-1", "operator"),
        ("rev-1", "reviewer"), ("bank-1", "consumer"),
    ]:  # fmt: skip
        live.account(name, role)
    provider, admin = live.client("provider-1"), live.client("admin-1")
    operator, reviewer = live.client("op-1"), live.client("rev-1")
    src = tmp_path / "firms.csv"
    src.write_text(firms_csv(), encoding="utf-8")
    with src.open("rb") as f:
        uploaded = provider.post(
            "/v1/datasets",
            files={"file": ("firms.csv", f, "text/csv")},
            data={"name": "firms", "entity_column": "credit_code"},
        )
    assert uploaded.status_code == 201, uploaded.text
    policy = provider.put(
        "/v1/datasets/firms/policy",
        content=FIRMS_POLICY.encode(),
        headers={"Content-Type": "application/yaml"},
    )
    assert policy.status_code == 200, policy.text
    grant = request_grant(
        operator, admin, provider, [("firms", list(GRANTED))], scenario="credit verification"
    )
    body = {"kind": "verify", "name": "tax band", "grant": grant, "consumers": ["bank-1"]}
    body |= {"dataset": "firms", "value_column": "annual_tax", "boundaries": BANDS}
    made = operator.post("/v1/he/products", json=body)
    assert made.status_code == 201, made.text
    product = made.json()["id"]
    decided = reviewer.post(
        f"/v1/he/products/{product}/decision", json={"decision": "approve", "reason": "coarse"}
    )
    assert decided.status_code == 200, decided.text
    # Offered to the bank only once registered (gateway.products).
    application = {"type": "first", "he_product": product, "name": "tax band"}
    application |= {"description": "tax band of a firm", "category": "industry_development"}
    application |= {"price_class": "free"}  # an industry product names its class (gateway.pricing)
    applied = operator.post("/v1/products/registrations", json=application)
    assert applied.status_code == 201, applied.text
    finish_in_data_dir(live.data_dir, applied.json()["id"])

    keys_path = tmp_path / "bank" / "verify.keys"
    keys_path.parent.mkdir()
    make_keys(keys_path, "verify")
    assert keys_path.stat().st_mode & 0o777 == 0o600
    bank = HEClient(live.base, live.tokens["bank-1"], keys_path)
    try:
        true_band = sum(tax(42) >= b for b in BANDS)
        assert bank.verify(product, code(42), true_band) is True
        assert bank.verify(product, code(42), (true_band + 1) % 4) is False
    finally:
        bank.close()
    done = subprocess.run(
        [DSR, "he", "verify", product, code(43), str(sum(tax(43) >= b for b in BANDS)),
         "--keys", str(keys_path), "--url", live.base, "--token", live.tokens["bank-1"]],
        capture_output=True, text=True, timeout=120, env=live.env,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "yes", done.stderr
    live.stop()

    keys = load_keys(keys_path)
    secret = keys.context.serialize(save_secret_key=True)
    needles = [code(42).encode(), code(43).encode(), secret_chunk(secret, keys.public_context())]
    assert_nowhere(live.data_dir, needles, allow_in=[live.data_dir / "datasets"])
    log = live.log.read_bytes()
    assert b"/verify" in log  # the log is the gateway's, and it saw the calls
    for needle in needles:
        assert needle not in log
