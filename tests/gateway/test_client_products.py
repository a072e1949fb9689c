"""``dsr he products``, ``dsr he keys/verify`` and ``dsr products`` against a live gateway.

One gateway for the module (``dsr gateway serve``, real containers on runc):
a provider uploads the firms and their policy, a data request becomes a
grant. Then, with the real ``dsr`` executable, configured by ``DSR_SERVER``
and ``DSR_TOKEN``: an operator defines a verification product, a reviewer
approves it, a bank makes keys and verifies a matching and a non-matching
claim; the operator withdraws it and the bank's next call is refused with
the server's message. An SQL job is released, applied for and registered as
a data product (the procedure's publicity finished in the store), listed and
shown; its renewal waits for the window. Then the error paths (bad token,
unknown product, server down), and the ``--json`` forms of the remote
administration commands. No command may print a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.engine import require_engine
from tests.support.he_world import FIRMS_POLICY, GRANTED, code, firms_csv, tax
from tests.support.live import DsrShell, LiveGateway, free_port, request_grant
from tests.support.product_registration import finish_in_data_dir

pytestmark = pytest.mark.docker

BANDS = "100000,300000,500000"
ACCOUNTS = (
    ("provider-1", "provider"),
    ("admin-1", "admin"),
    ("op-1", "operator"),
    ("rev-1", "reviewer"),
    ("bank-1", "consumer"),
    ("auditor-1", "auditor"),
)


def band(i: int) -> int:
    return sum(tax(i) >= float(b) for b in BANDS.split(","))


@dataclass
class World(DsrShell):
    grant: str
    state: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    require_engine()
    root = tmp_path_factory.mktemp("products")
    root.chmod(0o755)
    gw = LiveGateway(root / "var")
    for name, role in ACCOUNTS:
        gw.account(name, role)
    gw.start()
    try:
        provider = gw.client("provider-1")
        src = root / "firms.csv"
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
            gw.client("op-1"), gw.client("admin-1"), provider, [("firms", list(GRANTED))],
            scenario="credit verification",
        )  # fmt: skip
        yield World(gw, root, {**gw.env, "DSR_SERVER": gw.base}, grant)
    finally:
        gw.stop()


# -- privacy-computing products ---------------------------------------------------------------


def test_operator_defines_reviewer_approves_bank_verifies(world: World) -> None:
    product = world.ok(
        "he", "products", "create", "verify", "--name", "tax band", "--grant", world.grant,
        "--dataset", "firms", "--value-column", "annual_tax", "--boundaries", BANDS,
        "--consumer", "bank-1", who="op-1",
    ).strip()  # fmt: skip
    assert product and " " not in product
    shown = world.json("he", "products", "show", product, who="op-1")
    assert shown["state"] == "pending_approval" and shown["consumers"] == ["bank-1"]
    # The definer is no reviewer; the reviewer approves with a reason.
    not_reviewer = world.dsr(
        "he", "products", "approve", product, "--reason", "coarse bands", who="op-1"
    )
    assert not_reviewer.returncode == 1 and "needs the role reviewer" in not_reviewer.stderr
    approved = world.ok(
        "he", "products", "approve", product, "--reason", "three coarse bands", who="rev-1"
    )
    assert approved.strip() == f"product {product}: approved"
    # Offered to the bank only once registered: applied for, then taken through the
    # procedure in the gateway's store (publicity lasts working days).
    applied = world.json("products", "apply", "--he-product", product, "--name", "tax band",
                         "--description", "tax band of a firm", "--category",
                         "industry_development", "--price-class", "free", who="op-1")  # fmt: skip
    finish_in_data_dir(world.gw.data_dir, applied["id"])

    keys = world.root / "bank" / "verify.keys"
    keys.parent.mkdir()
    made = world.ok("he", "keys", str(keys), who="bank-1")
    assert "verify keys written" in made and keys.stat().st_mode & 0o777 == 0o600
    claim = ("he", "verify", product, code(42))
    yes = world.ok(*claim, str(band(42)), "--keys", str(keys), who="bank-1")
    assert yes.strip() == "yes"
    no = world.ok(*claim, str((band(42) + 1) % 4), "--keys", str(keys), who="bank-1")
    assert no.strip() == "no"
    # DSR_URL still names the server where DSR_SERVER does not.
    legacy = world.ok(
        *claim, str(band(42)), "--keys", str(keys), who="bank-1",
        env={"DSR_SERVER": "", "DSR_URL": world.gw.base},
    )  # fmt: skip
    assert legacy.strip() == "yes"
    world.state |= {"product": product, "keys": keys}


def test_products_are_listed_and_shown_by_role(world: World) -> None:
    product = world.state["product"]
    (mine,) = world.json("he", "products", "list", who="op-1")
    assert mine["id"] == product and mine["state"] == "approved"
    assert json.loads(world.ok("he", "products", "--json", "list", who="op-1")) == [mine]
    table = world.ok("he", "products", "list", who="rev-1")
    assert product in table and "tax band" in table and "approved" in table
    shown = world.ok("he", "products", "show", product, who="bank-1")  # the consumer's view
    assert "approved" in shown and "annual_tax" in shown and "bucket_bits" in shown
    assert "op-1" not in shown and world.grant not in shown and "three coarse" not in shown
    owned = world.ok("he", "products", "show", product, who="op-1")
    assert "approved (three coarse bands)" in owned and world.grant in owned
    # A second product, a yes/no over a threshold, printed whole with --json; denied.
    made = world.json(
        "he", "products", "create", "verify", "--name", "contributions", "--grant",
        world.grant, "--dataset", "firms", "--value-column", "months", "--threshold", "24",
        "--consumer", "bank-1", who="op-1",
    )  # fmt: skip
    assert made["state"] == "pending_approval" and made["spec"]["boundaries"] == [24.0]
    denied = world.json(
        "he", "products", "deny", made["id"], "--reason", "not needed now", who="rev-1"
    )
    assert denied["state"] == "denied"
    both = world.dsr(
        "he", "products", "create", "verify", "--name", "x", "--grant", world.grant,
        "--dataset", "firms", "--value-column", "months", "--threshold", "1",
        "--boundaries", "1,2", "--consumer", "bank-1", who="op-1",
    )  # fmt: skip
    assert both.returncode == 2 and "exactly one of --threshold" in both.stderr
    outside = world.dsr(
        "he", "products", "create", "verify", "--name", "staff", "--grant", world.grant,
        "--dataset", "firms", "--value-column", "employees", "--threshold", "10",
        "--consumer", "bank-1", who="op-1",
    )  # fmt: skip
    assert outside.returncode == 1 and "employees" in outside.stderr


def test_a_withdrawn_product_answers_no_more(world: World) -> None:
    product, keys = world.state["product"], world.state["keys"]
    withdrawn = world.ok(
        "he", "products", "withdraw", product, "--reason", "contract ended", who="op-1"
    )
    assert withdrawn.strip() == f"product {product}: withdrawn"
    refused = world.dsr(
        "he", "verify", product, code(42), str(band(42)), "--keys", str(keys), who="bank-1"
    )
    assert refused.returncode == 1, refused.stderr
    # A consumer sees approved products only: a withdrawn one is no longer there for it.
    assert f"no privacy-computing product '{product}' (404)" in refused.stderr


def test_he_errors_are_messages_with_exit_codes(world: World) -> None:
    keys = world.state["keys"]
    bad = world.dsr("he", "products", "list", env={"DSR_TOKEN": "dsr_000000000000_" + "A" * 43})
    assert bad.returncode == 4 and "refused the token (401)" in bad.stderr
    no_token = world.dsr("he", "verify", "hp-x", code(1), "1", "--keys", str(keys))
    assert no_token.returncode == 4 and "no API token" in no_token.stderr
    unknown = world.dsr("he", "products", "show", "hp-nothing", who="rev-1")
    assert unknown.returncode == 1
    assert "no privacy-computing product 'hp-nothing' (404)" in unknown.stderr
    unknown_call = world.dsr(
        "he", "verify", "hp-nothing", code(1), "1", "--keys", str(keys), who="bank-1"
    )
    assert unknown_call.returncode == 1 and "hp-nothing" in unknown_call.stderr
    down = f"http://127.0.0.1:{free_port()}"
    for args in (
        ("he", "products", "list"),
        ("he", "verify", "hp-x", code(1), "1", "--keys", str(keys)),
    ):
        dead = world.dsr(*args, who="bank-1", env={"DSR_SERVER": down})
        assert dead.returncode == 3, dead.stderr
        assert f"cannot reach the gateway at {down}" in dead.stderr
    no_keys = world.dsr("he", "verify", "hp-x", code(1), "1", "--keys", "nowhere", who="bank-1")
    assert no_keys.returncode == 2 and "cannot use the key file nowhere" in no_keys.stderr


# -- data products ---------------------------------------------------------------------------


def test_a_released_job_is_registered_listed_shown_and_renewed(world: World) -> None:
    (world.root / "q.sql").write_text("SELECT district, count(*) AS firms FROM firms GROUP BY 1\n")
    ran = world.dsr("jobs", "submit", "--grant", world.grant, "--sql", "q.sql", "--wait",
                    who="op-1")  # fmt: skip
    assert ran.returncode == 0, ran.stderr + ran.stdout
    job = ran.stdout.split()[1]
    applied = world.ok(
        "products", "apply", "--job", job, "--name", "firms by district",
        "--description", "active enterprises counted by district",
        "--category", "public_governance", who="op-1",
    )  # fmt: skip
    (application,) = [
        a for a in world.json("products", "applications", who="op-1") if a["job"] == job
    ]
    assert applied.strip() == application["id"] and application["state"] == "applied"
    product = finish_in_data_dir(world.gw.data_dir, application["id"])
    listed = [p for p in world.json("products", "list", who="rev-1") if p["job"] == job]
    assert [(p["id"], p["category"]) for p in listed] == [(product, "public_governance")]
    assert listed[0]["registration_code"].startswith("CQGSJ-")
    shown = world.ok("products", "show", product, who="rev-1")
    assert "firms by district" in shown and "active enterprises" in shown and job in shown
    # A consumer calls the privacy-computing products offered to it, and reads no lineage.
    consumer = world.dsr("products", "show", product, who="bank-1")
    assert consumer.returncode == 1 and job not in consumer.stdout + consumer.stderr
    assert world.json("products", "show", product, who="op-1")["renewed_at"] is None
    early = world.dsr("products", "renew", product, who="op-1")  # years before the window
    assert early.returncode == 1 and "60 days before it expires" in early.stderr
    again = world.dsr(
        "products", "apply", "--job", job, "--name", "again", "--description", "d",
        "--category", "industry_development", "--price-class", "free", who="op-1",
    )  # fmt: skip
    assert again.returncode == 1 and "registered already" in again.stderr
    bad_category = world.dsr(
        "products", "apply", "--job", job, "--name", "n", "--description", "d",
        "--category", "x", who="op-1",
    )  # fmt: skip
    assert bad_category.returncode == 2
    unknown = world.dsr("products", "show", "prd-nothing", who="op-1")
    assert unknown.returncode == 1 and "no product 'prd-nothing' (404)" in unknown.stderr
    not_operator = world.dsr("products", "renew", product, who="rev-1")
    assert not_operator.returncode == 1 and "needs the role operator" in not_operator.stderr


# -- the administration commands' --json, through the gateway -----------------------------------


def test_admin_and_audit_commands_print_json(world: World) -> None:
    made = world.json("accounts", "create", "bank-9", "--role", "consumer", who="admin-1")
    assert (made["name"], made["roles"], made["disabled"]) == ("bank-9", ["consumer"], False)
    issued = world.json("tokens", "issue", "bank-9", "--label", "batch", who="admin-1")
    assert (issued["account"], issued["label"]) == ("bank-9", "batch")
    assert issued["token"].startswith(f"dsr_{issued['id']}_")
    revoked = world.json("tokens", "revoke", issued["id"], who="admin-1")
    assert revoked == {"id": issued["id"], "revoked": True}
    verified = world.json("audit", "verify", who="auditor-1")
    assert verified["ok"] is True and verified["checked"] > 0
    before = json.loads(world.ok("audit", "--json", "verify", who="auditor-1"))  # on the group
    assert before["ok"] is True and before["checked"] >= verified["checked"]
    local = json.loads(world.ok("audit", "verify", "--local", "--json", env={"DSR_SERVER": ""}))
    assert local["ok"] is True and local["checked"] > verified["checked"]
