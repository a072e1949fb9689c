"""``dsr`` as every role's client, against a live gateway (one per module).

The real ``dsr`` executable runs in a subprocess against ``dsr gateway
serve`` (real containers on runc), configured the way users configure it
(``DSR_SERVER``/``DSR_TOKEN``, or ``dsr login``'s config file). The steps
follow the product's flow and build on each other, in file order: a
provider registers the residents and their policy, a data request becomes a
grant, the operator browses the catalogue and submits SQL, Python and a
dummy run, reviewers approve and deny, an auditor verifies and lists the
log, an administrator manages accounts, tokens and the emergency stop. Then
the error paths (bad token, unknown job, server down, bad arguments) and
``dsr dev run`` on dummy data in the runner container. No command may print
a traceback.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq
import pytest

from sandbox.synthetic import demo
from tests.support.city import POLICIES
from tests.support.engine import require_engine, sandbox_objects
from tests.support.live import DsrShell, LiveGateway, free_port

pytestmark = pytest.mark.docker

SQL = "SELECT district_code, count(*) AS residents FROM residents GROUP BY 1\n"
PYTHON = (
    "from sandbox.sdk import connect, publish_table\n"
    "con = connect()\n"
    'q = "SELECT district_code, gender, count(*) AS n FROM residents GROUP BY 1, 2"\n'
    "df = con.sql(q).df()\n"
    'publish_table("pyramid.csv", df, group_by=["district_code", "gender"], count="n",\n'
    "              measures=[])\n"
)
DUMMY = (
    "from sandbox.sdk import catalog, connect\n"
    "con = connect()\n"
    'print("views:", [v["name"] for v in catalog()["views"]])\n'
    'print("rows:", con.sql("SELECT count(*) FROM residents").fetchall()[0][0])\n'
)
ACCOUNTS = (
    ("city-bureau", "provider"),
    ("op-1", "operator"),
    ("admin-1", "admin"),
    ("rev-1", "reviewer"),
    ("rev-2", "reviewer"),
    ("auditor-1", "auditor"),
)


@dataclass
class World(DsrShell):
    state: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    require_engine()
    root = tmp_path_factory.mktemp("client")
    root.chmod(0o755)
    gw = LiveGateway(root / "var")
    for name, role in ACCOUNTS:
        gw.account(name, role)
    gw.start()
    env = {**gw.env, "DSR_SERVER": gw.base}
    try:
        yield World(gw, root, env)
    finally:
        gw.stop()


# -- providers ------------------------------------------------------------------------------


def test_provider_registers_a_dataset_and_governs_its_policy(world: World) -> None:
    paths = demo.generate_city(world.root / "src", residents=3000, enterprises=300, seed=3)
    file = str(paths["residents"])
    made = world.ok(
        "datasets", "register", file, "--name", "residents", "--entity-column", "person_id",
        who="city-bureau",
    )  # fmt: skip
    assert "dataset residents version" in made and "registered, 3,000 rows" in made
    again = world.ok(
        "datasets", "register", file, "--name", "residents", "--entity-column", "person_id",
        who="city-bureau",
    )  # fmt: skip
    assert "already registered (same bytes)" in again
    (listed,) = world.json("datasets", "list", who="city-bureau")
    assert listed["name"] == "residents" and listed["rows"] == 3000
    shown = world.ok("datasets", "show", "residents", who="city-bureau")
    assert "person_id" in shown and "district_code" in shown

    bad = world.root / "bad.yaml"
    bad.write_text("dataset: residents\nentity_column: nobody\nk: 10\ncolumns: {}\n")
    refused = world.dsr("policies", "apply", "residents", str(bad), who="city-bureau")
    assert refused.returncode == 1 and "(422)" in refused.stderr
    assert "\n  - " in refused.stderr  # every problem listed
    policy = POLICIES / "residents.yaml"
    first = world.ok("policies", "apply", "residents", str(policy), who="city-bureau")
    assert "policy of residents: version" in first
    stricter = world.root / "residents.yaml"
    stricter.write_text(policy.read_text(encoding="utf-8").replace("k: 10", "k: 12", 1))
    world.ok("policies", "apply", "residents", str(stricter), who="city-bureau")
    v1, v2 = (
        v["version"] for v in world.json("policies", "versions", "residents", who="city-bureau")
    )
    assert "k: 12" in world.ok("policies", "show", "residents", who="city-bureau")
    diff = world.ok("policies", "diff", "residents", "--from", v1, "--to", v2, who="city-bureau")
    assert "-k: 10" in diff and "+k: 12" in diff
    # An operator cannot register datasets; the server's message says why.
    denied = world.dsr(
        "datasets", "register", file, "--name", "x", "--entity-column", "person_id", who="op-1"
    )
    assert denied.returncode == 1 and "needs the role" in denied.stderr


# -- a data request becomes a grant ------------------------------------------------------------


def test_a_data_request_is_reviewed_and_supplied(world: World) -> None:
    request_id = world.ok(
        "requests", "create", "--scenario", "district-population",
        "--purpose", "population by district for service planning",
        "--content", "resident counts by district", "--use", "aggregate statistics",
        "--dataset", "residents=person_id,district_code,gender", who="op-1",
    ).strip()  # fmt: skip
    assert request_id
    mine = world.json("requests", "list", who="op-1")
    assert [r["id"] for r in mine] == [request_id] and mine[0]["step"] == "formal review"
    assert request_id in world.ok("requests", "list", "--pending", who="admin-1")
    no_basis = world.dsr("requests", "review", request_id, "--decision", "reject", who="admin-1")
    assert no_basis.returncode == 2 and "--legal-basis" in no_basis.stderr
    not_admin = world.dsr(
        "requests", "review", request_id, "--decision", "approve", "--step", "formal",
        who="city-bureau",
    )  # fmt: skip
    assert not_admin.returncode == 1 and "needs the role admin" in not_admin.stderr
    formal = world.ok("requests", "review", request_id, "--decision", "approve", who="admin-1")
    assert "formal_review_passed; next: provider review" in formal
    provider = world.ok(
        "requests", "review", request_id, "--decision", "approve", who="city-bureau"
    )
    assert "provider_approved; next: supply" in provider
    grant = world.ok("requests", "supply", request_id, "--days", "30", who="city-bureau").strip()
    assert grant.startswith("g")
    shown = world.ok("requests", "show", request_id, who="op-1")
    assert "supplied" in shown and grant in shown
    assert [g["id"] for g in world.json("grants", "list", who="op-1")] == [grant]
    assert "district_code" in world.ok("grants", "show", grant, who="city-bureau")
    world.state["grant"] = grant


# -- operators ---------------------------------------------------------------------------------


def test_operator_browses_the_catalogue_and_downloads_dummy_data(world: World) -> None:
    grant = world.state["grant"]
    (view,) = world.json("catalog", "list", who="op-1")
    assert (view["grant"], view["name"]) == (grant, "residents")
    assert "residents" in world.ok("catalog", "list", who="op-1")
    shown = world.ok("catalog", "show", "residents", who="op-1")
    assert "quasi_identifier" in shown and "person_id" in shown and "phone" not in shown
    target = world.root / "dummy" / "residents.parquet"
    wrote = world.ok("catalog", "dummy", "residents", "-o", str(target), who="op-1")
    assert "bytes of dummy data, parquet" in wrote
    table = pq.read_table(target)
    assert table.num_rows == 1000
    assert table.column_names == [c["name"] for c in view["columns"]]
    as_csv = world.root / "dummy" / "residents.csv"
    world.ok("catalog", "dummy", "residents", "--grant", grant, "-o", str(as_csv), who="op-1")
    with as_csv.open(encoding="utf-8") as f:
        assert next(csv.reader(f)) == table.column_names
    missing = world.dsr("catalog", "show", "nothing_here", who="op-1")
    assert missing.returncode == 1 and "no view 'nothing_here'" in missing.stderr


def test_operator_submits_waits_and_downloads(world: World) -> None:
    grant = world.state["grant"]
    (world.root / "q.sql").write_text(SQL)
    (world.root / "main.py").write_text(PYTHON)
    (world.root / "dummy.py").write_text(DUMMY)
    # Two Python jobs queue while the SQL product runs to its end.
    held = [
        world.ok("jobs", "submit", "--grant", grant, "--python", "main.py", who="op-1").strip()
        for _ in range(2)
    ]
    sql = world.dsr("jobs", "submit", "--grant", grant, "--sql", "q.sql", "--wait", who="op-1")
    assert sql.returncode == 0, sql.stderr
    assert "state" in sql.stdout and "released" in sql.stdout and "PASS" in sql.stdout
    # Progress on stderr: the job's state as it goes (one operator runs one job at a time,
    # so the SQL product may wait behind the two Python jobs and skip past "running").
    assert re.search(rf"job {re.escape(sql.stdout.split()[1])}: \w+ \(\d+s\)", sql.stderr)
    sql_job = sql.stdout.split()[1]
    # held for review: `jobs wait` exits 1 and says why
    for job in held:
        waited = world.dsr("jobs", "wait", job, who="op-1")
        assert waited.returncode == 1 and "held for security review" in waited.stderr, waited
        assert "auto_release" in waited.stderr
    status = world.json("jobs", "status", held[0], who="op-1")
    assert status["state"] == "held" and status["verdict"] == "REVIEW"
    listed = world.json("jobs", "list", who="op-1")
    assert {j["id"] for j in listed} == {sql_job, *held}
    assert json.loads(world.ok("jobs", "--json", "list", who="op-1")) == listed  # on the group
    assert held[0] in world.ok("jobs", "list", "--state", "held", who="op-1")
    withheld = world.dsr("jobs", "logs", sql_job, who="op-1")
    assert withheld.returncode == 1 and "withheld" in withheld.stderr
    not_yet = world.dsr("jobs", "outputs", held[0], who="op-1")
    assert not_yet.returncode == 1 and "(409)" in not_yet.stderr
    cancel = world.dsr("jobs", "cancel", sql_job, who="op-1")
    assert cancel.returncode == 1 and "(409)" in cancel.stderr
    # The released product, each file checked against its manifest.
    out = world.root / "released"
    got = world.ok("jobs", "outputs", sql_job, "--download", str(out), who="op-1")
    listing = world.json("jobs", "outputs", sql_job, who="op-1")
    (entry,) = listing["files"]
    assert f"wrote {out / entry['file']} (sha256 checked)" in got
    content = (out / entry["file"]).read_bytes()
    assert hashlib.sha256(content).hexdigest() == entry["sha256"]
    assert content.startswith(b'"district_code","residents"')
    # A dummy run: its full logs come back.
    dummy = world.dsr(
        "jobs", "submit", "--grant", grant, "--python", "dummy.py", "--dummy", "--wait",
        who="op-1",
    )  # fmt: skip
    assert dummy.returncode == 0, dummy.stderr
    assert "completed" in dummy.stdout and "rows: 1000" in dummy.stdout
    dummy_job = dummy.stdout.split()[1]
    assert "views: ['residents']" in world.ok("jobs", "logs", dummy_job, who="op-1")
    world.state |= {"sql_job": sql_job, "held": held}


# -- reviewers -------------------------------------------------------------------------------


def test_reviewers_approve_and_deny_with_reasons(world: World) -> None:
    approve, deny = world.state["held"]
    queue = world.json("reviews", "list", who="rev-1")
    assert {q["job"] for q in queue} == {approve, deny}
    assert approve in world.ok("reviews", "list", who="rev-1")
    shown = world.ok("reviews", "show", approve, who="rev-1")
    assert "auto_release" in shown and "file pyramid.csv" in shown and "district_code" in shown
    short = world.dsr("reviews", "approve", approve, "--reason", "ok", who="rev-1")
    assert short.returncode == 1 and "(422)" in short.stderr and "reason" in short.stderr
    approved = world.ok(
        "reviews", "approve", approve, "--reason", "district by gender, every cell over k",
        who="rev-1",
    )  # fmt: skip
    assert f"job {approve}: released" in approved
    denied = world.ok(
        "reviews", "deny", deny, "--reason", "duplicate of an approved product", who="rev-2"
    )
    assert f"job {deny}: denied" in denied
    not_reviewer = world.dsr("reviews", "list", who="op-1")
    assert not_reviewer.returncode == 1 and "needs the role reviewer" in not_reviewer.stderr
    out = world.root / "approved"
    world.ok("jobs", "outputs", approve, "--download", str(out), who="op-1")
    assert (out / "pyramid.csv").read_text().startswith("district_code")
    ended = world.dsr("jobs", "wait", deny, who="op-1")
    assert ended.returncode == 1 and "denied by a security reviewer" in ended.stderr


# -- auditors --------------------------------------------------------------------------------


def test_auditor_verifies_exports_and_lists_the_log(world: World) -> None:
    verified = world.ok("audit", "verify", who="auditor-1")
    assert verified.startswith("audit chain ok: ")
    local = world.ok("audit", "verify", "--local")  # the store, on the gateway's machine
    assert local.startswith("audit chain ok: ")
    both = world.dsr("audit", "verify", "--local", "--server", world.gw.base)
    assert both.returncode == 2 and "--local" in both.stderr
    lines = world.ok("audit", "export", who="auditor-1").splitlines()
    events = [json.loads(line) for line in lines]
    assert {"dataset.registered", "policy.applied", "review.vote", "download"} <= {
        e["type"] for e in events
    }
    downloads = world.json("audit", "list", "--type", "download", "--last", "0", who="auditor-1")
    assert downloads and {e["type"] for e in downloads} == {"download"}
    assert any(e["detail"].get("dummy") for e in downloads)  # dummy data is audited too
    table = world.ok("audit", "list", "--actor", "rev-1", who="auditor-1")
    assert "review.vote" in table and "rev-1" in table
    # A provider reads the events about their dataset.
    theirs = world.json("audit", "list", "--dataset", "residents", who="city-bureau")
    assert theirs and all("residents" in e["datasets"] for e in theirs)
    refused = world.dsr("audit", "verify", who="city-bureau")
    assert refused.returncode == 1 and "needs the role auditor" in refused.stderr


# -- administrators --------------------------------------------------------------------------


def test_admin_manages_accounts_tokens_and_stops_a_dataset(world: World) -> None:
    made = world.ok("accounts", "create", "op-9", "--role", "operator", who="admin-1")
    assert made.strip() == "account op-9: operator"
    assert "op-9" in {a["name"] for a in world.json("accounts", "list", who="admin-1")}
    token = world.ok("tokens", "issue", "op-9", "--label", "laptop", who="admin-1").strip()
    assert token.startswith("dsr_")
    me = world.ok("whoami", env={"DSR_TOKEN": token})
    assert me.startswith("op-9 (operator) at http://127.0.0.1:")
    token_id = token.split("_")[1]
    assert world.ok("tokens", "revoke", token_id, who="admin-1").strip().endswith("revoked")
    gone = world.dsr("whoami", env={"DSR_TOKEN": token})
    assert gone.returncode == 4 and "refused the token (401)" in gone.stderr
    # The local store sees the same accounts (the bootstrap path).
    assert "op-9" in world.ok("accounts", "list", "--local")
    grant = world.state["grant"]
    stopped = world.ok("emergency-stop", "residents", "--reason", "leak drill", who="admin-1")
    assert "1 grant(s) suspended" in stopped and grant in stopped
    assert world.json("catalog", "list", who="op-1") == []  # a suspended grant shows nothing
    refused = world.dsr("jobs", "submit", "--grant", grant, "--sql", "q.sql", who="op-1")
    assert refused.returncode == 1 and "suspended" in refused.stderr
    # The provider cannot lift the administrators' stop; the administrators lift their own.
    theirs = world.dsr("grants", "resume", grant, "--reason", "drill over", who="city-bureau")
    assert theirs.returncode == 1 and "only they can lift their stop" in theirs.stderr
    resumed = world.ok("grants", "resume", grant, "--reason", "drill over", who="admin-1")
    assert resumed.strip() == f"grant {grant}: active"
    world.ok("grants", "suspend", grant, "--reason", "rectification", who="city-bureau")
    world.ok("grants", "resume", grant, "--reason", "rectified", who="city-bureau")


# -- error paths ---------------------------------------------------------------------------


def test_errors_are_messages_with_meaningful_exit_codes(world: World) -> None:
    bad = world.dsr("jobs", "list", env={"DSR_TOKEN": "dsr_000000000000_" + "A" * 43})
    assert bad.returncode == 4 and "a valid API token is required" in bad.stderr
    no_token = world.dsr("jobs", "list")
    assert no_token.returncode == 4 and "no API token" in no_token.stderr
    unknown = world.dsr("jobs", "status", "job-0000000000000000", who="op-1")
    assert unknown.returncode == 1 and "no job" in unknown.stderr and "(404)" in unknown.stderr
    down = f"http://127.0.0.1:{free_port()}"
    for args in (("jobs", "list"), ("audit", "verify"), ("catalog", "list")):
        dead = world.dsr(*args, who="op-1", env={"DSR_SERVER": down})
        assert dead.returncode == 3, dead.stderr
        assert f"cannot reach the gateway at {down}" in dead.stderr
    before = world.dsr("jobs", "--server", down, "list", who="op-1")  # the flag on the group
    assert before.returncode == 3 and f"cannot reach the gateway at {down}" in before.stderr
    nowhere = world.dsr("jobs", "list", env={"DSR_SERVER": ""})
    assert nowhere.returncode == 2 and "no gateway named" in nowhere.stderr
    not_url = world.dsr("jobs", "list", "--server", "localhost:8700", who="op-1")
    assert not_url.returncode == 2 and "http://" in not_url.stderr
    both = world.dsr(
        "jobs", "submit", "--grant", "g", "--sql", "q.sql", "--python", "main.py", who="op-1"
    )
    assert both.returncode == 2 and "exactly one of --sql" in both.stderr
    neither = world.dsr("jobs", "submit", "--grant", "g", who="op-1")
    assert neither.returncode == 2
    unknown_option = world.dsr("jobs", "list", "--colour", who="op-1")
    assert unknown_option.returncode == 2
    bad_scope = world.dsr(
        "requests", "create", "--scenario", "s", "--purpose", "p", "--content", "c",
        "--use", "u", "--dataset", "residents", who="op-1",
    )  # fmt: skip
    assert bad_scope.returncode == 2 and "NAME=COLUMN" in bad_scope.stderr
    refused_code = world.root / "bad.sql"
    refused_code.write_text("SELECT person_id FROM residents")
    rejected = world.dsr(
        "jobs", "submit", "--grant", world.state["grant"], "--sql", str(refused_code), who="op-1"
    )
    assert rejected.returncode == 1 and "refused by the static checks" in rejected.stderr
    assert "\n  - " in rejected.stderr


def test_login_writes_a_private_profile_used_by_every_command(world: World) -> None:
    config = world.root / "config" / "dsr.toml"
    env = {"DSR_CONFIG": str(config), "DSR_SERVER": "", "DSR_TOKEN": ""}
    bad = world.dsr("login", "--server", world.gw.base, "--token", "dsr_nope", env=env)
    assert bad.returncode == 4 and not config.exists()
    signed = world.dsr(
        "login", "--server", world.gw.base, "--token", world.gw.tokens["admin-1"], env=env
    )
    assert signed.returncode == 0 and "signed in to" in signed.stdout and "admin-1" in signed.stdout
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert world.ok("whoami", env=env).startswith("admin-1 (admin)")
    # With a gateway configured, `dsr accounts list` asks it, not the store.
    remote = json.loads(world.ok("accounts", "list", "--json", env=env))
    assert "op-9" in {a["name"] for a in remote}
    assert (
        json.loads(world.ok("accounts", "--profile", "default", "--json", "list", env=env))
        == remote
    )
    # The profile's token goes only to its own server.
    elsewhere = world.dsr("whoami", env={**env, "DSR_SERVER": f"http://127.0.0.1:{free_port()}"})
    assert elsewhere.returncode == 4 and "no API token" in elsewhere.stderr
    missing = world.dsr("whoami", "--profile", "nobody", env=env)
    assert missing.returncode == 2 and "no profile 'nobody'" in missing.stderr
    missing = world.dsr("accounts", "--profile", "nobody", "list", env=env)
    assert missing.returncode == 2 and "no profile 'nobody'" in missing.stderr


# -- the development loop --------------------------------------------------------------------


def test_dev_run_runs_locally_on_dummy_data(world: World) -> None:
    grant = world.state["grant"]
    code = world.root / "dev.py"
    code.write_text(
        DUMMY
        + "import pandas as pd\n"
        + 'pd.DataFrame({"a": [1, 2]}).to_csv("/output/local.csv", index=False)\n'
    )
    out = world.root / "dev-out"
    ran = world.dsr("dev", "run", str(code), "--grant", grant, "--out", str(out), who="op-1")
    assert ran.returncode == 0, ran.stderr
    assert "views: ['residents']" in ran.stdout and "rows: 1000" in ran.stdout
    assert "dev run on dummy data" in ran.stderr and "succeeded" in ran.stderr
    assert (out / "local.csv").read_text() == "a\n1\n2\n"
    # Fetched once, then offline with --catalog; a failing job exits 1 with its traceback.
    views = world.root / "views"
    assert "1 view(s)" in world.ok("dev", "fetch", str(views), "--grant", grant, who="op-1")
    catalog = json.loads((views / "catalog.json").read_text())
    assert [v["name"] for v in catalog["views"]] == ["residents"] and catalog["dummy"]
    broken = world.root / "broken.py"
    broken.write_text('raise SystemExit("no such column: salary")\n')
    failed = world.dsr("dev", "run", str(broken), "--catalog", str(views), "--out", str(out))
    assert failed.returncode == 1 and "no such column: salary" in failed.stderr
    sql = world.dsr("dev", "run", "q.sql", "--catalog", str(views), "--out", str(out))
    assert sql.returncode == 0, sql.stderr
    assert pq.read_table(out / "result.parquet").num_rows > 0
    neither = world.dsr("dev", "run", str(code))
    assert neither.returncode == 2 and "exactly one of --grant" in neither.stderr


def test_no_sandbox_is_left_behind(world: World) -> None:
    import docker

    client = docker.from_env(timeout=30)
    try:
        assert not [job for job, _ in sandbox_objects(client) if job.startswith("dev-")]
    finally:
        client.close()
