"""Bad input on every route: a 4xx with a plain message, no partial state, and an
audit event where it matters (SQLite and PostgreSQL).

"No partial state" is measured: every table of the metadata store is counted
before and after each refused request, and only the audit events the refusal
must write may be new. Routes are enumerated from the app's OpenAPI document,
so a new route is covered by the route-wide tables here without being named.

Covered elsewhere, not repeated: the wrong role on every route (403, "needs the
role ...") is the access matrix of ``tests/support/access.py``, checked by
``tests/gateway/test_app.py`` and each router's test file; a scope denial of a
column outside the grant is ``tests/gateway/test_jobs.py``; an upload beyond its
own cap and policies that do not fit their dataset are
``tests/gateway/test_providers.py``.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response

from gateway.app import create_app
from gateway.grants.model import ADMINISTRATORS, State
from gateway.grants.service import grant_service
from gateway.identity import Role, create_account, issue_token
from gateway.runtime import build_runtime
from gateway.settings import GatewaySettings
from gateway.store import metadata
from gateway.store.tables import audit_events
from sandbox.intake.policy import PolicyStore
from sandbox.intake.registry import Registry
from sandbox.synthetic import demo
from tests.support.access import SAMPLE_PATH
from tests.support.city import ENTITY, POLICIES
from tests.support.stores import BACKENDS, Cluster

PROVIDER = "city-bureau"
ACCOUNTS = {
    "op-1": Role.OPERATOR,
    "op-2": Role.OPERATOR,
    PROVIDER: Role.PROVIDER,
    "admin-1": Role.ADMIN,
    "rev-1": Role.REVIEWER,
    "auditor-1": Role.AUDITOR,
}
COLUMNS = ["person_id", "district_code", "gender"]  # what the test grants cover
SQL = "SELECT district_code, count(*) AS n FROM residents GROUP BY 1"
TEN_MB = 10 * 1024 * 1024
_grants = itertools.count()


@dataclass
class Gateway:
    app: FastAPI
    client: TestClient
    tokens: dict[str, str]

    def h(self, who: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", **extra}

    def counts(self) -> dict[str, int]:
        """Rows in every table of the metadata store."""
        with self.app.state.engine.connect() as conn:
            return {
                t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in metadata.sorted_tables
            }

    def events_since(self, last: int) -> list[dict[str, Any]]:
        with self.app.state.engine.connect() as conn:
            rows = conn.execute(
                sa.select(audit_events).where(audit_events.c.id > last).order_by(audit_events.c.id)
            ).all()
        return [dict(r._mapping) for r in rows]

    def head(self) -> int:
        with self.app.state.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(audit_events.c.id))).scalar_one() or 0)

    def grant(self, operator: str = "op-1", *, ago: timedelta | None = None) -> str:
        """A fresh grant on residents; ``ago``: issued then, for a term of one day."""
        start = datetime.now(UTC) - (ago or timedelta(0))
        with self.app.state.engine.begin() as conn:
            record = grant_service(self.app).create(
                conn,
                operator=operator,
                scenario=f"scenario-{next(_grants)}",
                purpose="district counts",
                scopes=[("residents", COLUMNS)],
                valid_from=start,
                valid_until=start + timedelta(days=1 if ago else 30),
                actor="admin-1",
                now=start,
            )
        return record.id

    def move(self, grant_id: str, to: State) -> None:
        grants = grant_service(self.app)
        with self.app.state.engine.begin() as conn:
            if to == State.SUSPENDED:  # a suspension is a stop someone holds
                grants.suspend(conn, grant_id, ADMINISTRATORS, "admin-1", "for the test")
            else:
                grants.transition(conn, grant_id, to, "admin-1", "for the test")


def plain(response: Response) -> None:
    """A refusal's body: JSON, no traceback, no Python frames."""
    assert response.headers["content-type"].startswith("application/json"), response.text
    assert "Traceback" not in response.text and 'File "' not in response.text


def refusals_only(gw: Gateway, head: int, answer: Response) -> int:
    """The events since ``head``: none, or, for a 403, its ``access.denied`` (the first
    refusal of the actor's minute is written at once, the rest counted; gateway.refusals)."""
    events = gw.events_since(head)
    assert all(e["type"] == "access.denied" for e in events), events
    assert answer.status_code == 403 or not events
    return len(events)


def unchanged(
    before: dict[str, int],
    after: dict[str, int],
    *,
    events: int = 0,
    but: frozenset[str] = frozenset(),
) -> None:
    """Nothing stored but ``events`` audit events (and what changes in the tables ``but``)."""
    assert after["audit_events"] - before["audit_events"] == events
    skip = {"audit_events", *but}
    assert {k: v for k, v in after.items() if k not in skip} == {
        k: v for k, v in before.items() if k not in skip
    }


def _database(request: pytest.FixtureRequest) -> Generator[str, None, None]:
    if request.param == "sqlite":
        yield ""  # the embedded default: SQLite in the data dir
        return
    cluster: Cluster = request.getfixturevalue("postgres_cluster")
    cluster.admin("CREATE DATABASE bad_input")
    try:
        yield cluster.url("bad_input")
    finally:
        cluster.admin("DROP DATABASE bad_input WITH (FORCE)")


@pytest.fixture(scope="module", params=BACKENDS)
def gw(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """The deployed gateway (runtime, worker not started) over the city, on each backend."""
    root = tmp_path_factory.mktemp(f"bad-input-{request.param}")
    data = root / "var"
    paths = demo.generate_city(root / "src", residents=300, enterprises=30, seed=4)
    registry, policies = Registry(data), PolicyStore(data)
    for name, path in paths.items():
        version = registry.register(path, name=name, entity_column=ENTITY[name], provider=PROVIDER)
        text = (POLICIES / f"{name}.yaml").read_text()
        policies.apply(
            text, {c.name: c.type for c in version.columns}, dataset=name, author=PROVIDER
        )
    databases = _database(request)
    settings = GatewaySettings(data_dir=data, database_url=next(databases))
    app = create_app(settings, build_runtime(settings))
    app.state.worker_autostart = False  # jobs stay queued: no container runs
    tokens = {}
    with app.state.engine.begin() as conn:
        for name, role in ACCOUNTS.items():
            create_account(conn, name, {role.value}, actor="test")
            tokens[name] = issue_token(conn, name, actor="test")
    try:
        with TestClient(app) as client:
            yield Gateway(app, client, tokens)
    finally:
        app.state.engine.dispose()
        databases.close()


def operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, operation) of every route the OpenAPI document lists."""
    paths = app.openapi()["paths"]
    return [(m.upper(), p, op) for p, ops in sorted(paths.items()) for m, op in sorted(ops.items())]


def url(path: str, **values: str) -> str:
    path = path.format_map({**SAMPLE_PATH, **values})
    assert "{" not in path, path
    return path


def json_routes(app: FastAPI) -> list[tuple[str, str]]:
    return [
        (m, p)
        for m, p, op in operations(app)
        if "application/json" in op.get("requestBody", {}).get("content", {})
    ]


def body_routes(app: FastAPI) -> list[tuple[str, str]]:
    return [(m, p) for m, p, _ in operations(app) if m in ("POST", "PUT", "PATCH")]


# -- grants on job submission ----------------------------------------------------------


def moved(to: State) -> Callable[[Gateway], str]:
    def make(gw: Gateway) -> str:
        grant = gw.grant()
        gw.move(grant, to)
        return grant

    return make


GRANT_CASES: dict[str, tuple[Callable[[Gateway], str], int, str]] = {
    "unknown": (lambda gw: "g-does-not-exist", 404, "no grant 'g-does-not-exist'"),
    "expired": (lambda gw: gw.grant(ago=timedelta(days=10)), 409, "expired on"),
    "suspended": (moved(State.SUSPENDED), 409, "is suspended"),
    "revoked": (moved(State.REVOKED), 409, "is revoked"),
    "another operator's": (lambda gw: gw.grant("op-2"), 403, "is not held by op-1"),
}


@pytest.mark.parametrize("case", sorted(GRANT_CASES))
def test_a_grant_that_cannot_be_used_is_refused_named_and_audited(gw: Gateway, case: str) -> None:
    make, status, message = GRANT_CASES[case]
    grant = make(gw)
    before, head = gw.counts(), gw.head()
    answer = gw.client.post(
        "/v1/jobs", headers=gw.h("op-1"), json={"grant": grant, "kind": "sql", "code": SQL}
    )
    assert answer.status_code == status, answer.text
    plain(answer)
    detail = answer.json()["detail"]
    assert grant in detail and message in detail
    events = gw.events_since(head)
    refusal = [e for e in events if e["type"] == "scope.decision"]
    assert len(refusal) == 1 and refusal[0]["grant_id"] == grant
    assert refusal[0]["actor"] == "op-1" and refusal[0]["detail"]["allowed"] is False
    assert refusal[0]["detail"]["reason"] == [detail]
    assert refusal[0]["datasets"] == ([] if case == "unknown" else ["residents"])
    if case == "expired":  # found past its term: moved to expired, in the same transaction
        (expiry,) = [e for e in events if e["type"] == "grant.state"]
        assert expiry["detail"]["to"] == "expired" and expiry["actor"] == "system"
        destroyed = [e for e in events if e["type"] == "destruction"]
        grant_row = gw.client.get(f"/v1/grants/{grant}", headers=gw.h("admin-1")).json()
        assert grant_row["state"] == "expired"
        after = gw.counts()  # the expiry removed the grant's scope lines, and only those
        assert before["scope_rules"] - after["scope_rules"] == 3 * len(COLUMNS) + 3
        unchanged(before, after, events=2 + len(destroyed), but=frozenset({"scope_rules"}))
    else:  # a 403 is also an access.denied event (gateway.refusals)
        unchanged(before, gw.counts(), events=2 if status == 403 else 1)


# -- malformed code ----------------------------------------------------------------------

# (kind, code, what the 422 must name): a finding per problem, with its rule id.
CODE_CASES = [
    ("sql", "SELECT district_code, count(* FROM residents", ["[parse_error]"]),
    ("sql", "SELECT 1 AS a; SELECT 2 AS b", ["[forbidden_statement]"]),
    ("sql", "SELECT gender FROM residents WHERE name = 'Wang Fang'", ["[hidden_column]"]),
    ("python", "total = (1 +\n", ["line 1:", "[syntax_error]"]),
    ("python", "import pandas\n\ndef f(:\n    pass\n", ["line 3:", "[syntax_error]"]),
    (
        "python",
        "secret = '13800138000'\nimport os\nos.system('ls')\n",
        ["line 3:", "[process_spawn]"],
    ),
]


@pytest.mark.parametrize(("kind", "code", "named"), CODE_CASES)
def test_malformed_code_is_refused_with_its_findings_and_leaves_no_job(
    gw: Gateway, kind: str, code: str, named: list[str]
) -> None:
    grant = gw.grant()
    before, head = gw.counts(), gw.head()
    answer = gw.client.post(
        "/v1/jobs", headers=gw.h("op-1"), json={"grant": grant, "kind": kind, "code": code}
    )
    assert answer.status_code == 422, answer.text
    plain(answer)
    detail = answer.json()["detail"]
    assert "nothing was queued" in detail["message"]
    assert all(any(n in p for p in detail["problems"]) for n in named), detail
    for literal in ("Wang Fang", "13800138000"):  # the code's values are never echoed
        assert literal not in answer.text
    (refused,) = [e for e in gw.events_since(head) if e["type"] == "job.refused"]
    assert refused["grant_id"] == grant and refused["datasets"] == ["residents"]
    assert refused["detail"]["kind"] == kind and len(refused["detail"]["code_sha256"]) == 64
    assert refused["detail"]["findings"] and code not in json.dumps(refused["detail"])
    # SQL is refused before the scope check; Python after it (its lineage is the grant).
    unchanged(before, gw.counts(), events=1 if kind == "sql" else 2)
    jobs = gw.client.get("/v1/jobs", headers=gw.h("op-1")).json()
    assert all(j["grant"] != grant for j in jobs)


# -- bodies: too large, not JSON, not plain text ---------------------------------------


HE_OWN_CAPS = {
    "/v1/he/contexts",
    "/v1/he/products/{product_id}/verify",
    "/v1/he/products/{product_id}/score",
}


def test_a_10_mb_body_is_refused_on_every_route_before_anything_runs(gw: Gateway) -> None:
    body = b'{"reason": "' + b"x" * TEN_MB + b'"}'
    for method, path in body_routes(gw.app):
        before, head = gw.counts(), gw.head()
        headers = gw.h(PROVIDER, **{"Content-Type": "application/json"})
        answer = gw.client.request(method, url(path), headers=headers, content=body)
        plain(answer)
        if (method, path) == ("POST", "/v1/datasets"):
            # Uploads stream to disk under their own cap (test_providers); this one is
            # not multipart, and is refused before a byte is read.
            assert answer.status_code == 422 and "multipart" in answer.json()["detail"]
        elif path in HE_OWN_CAPS:
            # Contexts and ciphertexts are capped by their routes (test_he_products);
            # a provider is refused by role before a byte is read.
            assert answer.status_code == 403, (method, path, answer.text)
        else:
            assert answer.status_code == 413, (method, path, answer.text)
            assert "larger than 1048576 bytes" in answer.json()["detail"]
        unchanged(before, gw.counts(), events=refusals_only(gw, head, answer))


def test_a_large_body_without_a_length_is_counted_and_refused(gw: Gateway) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"reason": "'
        for _ in range(64):
            yield b"x" * 65536
        yield b'"}'

    for method, path in [*json_routes(gw.app), ("PUT", "/v1/datasets/{name}/policy")]:
        before = gw.counts()
        headers = gw.h(PROVIDER, **{"Content-Type": "application/json"})
        answer = gw.client.request(method, url(path), headers=headers, content=chunks())
        assert answer.status_code == 413, (method, path, answer.text)
        plain(answer)
        unchanged(before, gw.counts())


def test_a_dataset_upload_larger_than_the_body_limit_streams_through(
    gw: Gateway, tmp_path: Path
) -> None:
    source = tmp_path / "big.csv"
    with source.open("w") as f:
        f.write("entity,value\n")
        f.writelines(f"{i},{'v' * 40}\n" for i in range(40_000))  # about 1.9 MB
    assert source.stat().st_size > 1024 * 1024
    with source.open("rb") as f:
        answer = gw.client.post(
            "/v1/datasets",
            headers=gw.h(PROVIDER),
            files={"file": ("big.csv", f, "text/csv")},
            data={"name": f"big_{next(_grants)}", "entity_column": "entity"},
        )
    assert answer.status_code == 201, answer.text


def test_json_nested_beyond_the_parser_is_a_4xx_on_every_route(gw: Gateway) -> None:
    for method, path in body_routes(gw.app):
        before = gw.counts()
        headers = gw.h(PROVIDER, **{"Content-Type": "application/json"})
        answer = gw.client.request(method, url(path), headers=headers, content=b"[" * 100_000)
        assert 400 <= answer.status_code < 500, (method, path, answer.text)
        plain(answer)
        unchanged(before, gw.counts())


@pytest.mark.parametrize(
    "body", [b'{"grant": "g-1", "kind": ', b"\xff\xfe{}", b"[]", b'"text"', b"null"]
)
def test_a_body_that_is_not_the_json_asked_for_is_422_on_every_route(
    gw: Gateway, body: bytes
) -> None:
    for method, path in json_routes(gw.app):
        before, head = gw.counts(), gw.head()
        headers = gw.h("admin-1", **{"Content-Type": "application/json"})
        answer = gw.client.request(method, url(path), headers=headers, content=body)
        # 403 is the access matrix answering first, on routes admin-1 may not use.
        assert answer.status_code in (403, 422), (method, path, answer.text)
        plain(answer)
        if answer.status_code == 422:
            problems = answer.json()["detail"]
            assert problems and all({"loc", "msg"} <= set(p) and "input" not in p for p in problems)
        unchanged(before, gw.counts(), events=refusals_only(gw, head, answer))


@pytest.mark.parametrize("bad", ["\\u0000", "\\ud800"])
def test_nul_and_lone_surrogates_are_refused_everywhere(gw: Gateway, bad: str) -> None:
    """PostgreSQL text cannot hold a NUL; no store can encode a lone surrogate."""
    for method, path in json_routes(gw.app):
        before = gw.counts()
        body = '{"name": "a%s", "reason": "b%s", "grant": "c%s"}' % (bad, bad, bad)  # noqa: UP031
        headers = gw.h("admin-1", **{"Content-Type": "application/json"})
        answer = gw.client.request(method, url(path), headers=headers, content=body.encode())
        assert answer.status_code == 422, (method, path, answer.text)
        plain(answer)
        assert "NUL" in answer.json()["detail"]
        unchanged(before, gw.counts())
    for method, path, op in operations(gw.app):
        params = [p["name"] for p in op.get("parameters", []) if p["in"] == "path"]
        if not params:
            continue
        before = gw.counts()
        target = url(path, **{p: "x%00" for p in params})
        answer = gw.client.request(method, target, headers=gw.h("admin-1"))
        assert answer.status_code == 422, (method, path, answer.text)
        plain(answer)
        unchanged(before, gw.counts())


# -- authentication -----------------------------------------------------------------------


def test_every_authentication_failure_is_401_and_audited(gw: Gateway) -> None:
    forged = "dsr_000000000000_" + "A" * 43
    for method, path, op in operations(gw.app):
        if not any(p["name"] == "authorization" for p in op.get("parameters", [])):
            continue  # public (health)
        for headers in ({}, {"Authorization": f"Bearer {forged}"}, {"Authorization": "Basic x"}):
            before, head = gw.counts(), gw.head()
            answer = gw.client.request(method, url(path), headers=headers)
            assert answer.status_code == 401, (method, path, answer.text)
            plain(answer)
            (event,) = gw.events_since(head)
            assert event["type"] == "auth.failed" and event["actor"] == "anonymous"
            assert event["detail"]["route"] == url(path) and event["detail"]["method"] == method
            assert forged.split("_")[2] not in json.dumps(event["detail"])
            unchanged(before, gw.counts(), events=1)


# -- policies, tokens, uploads ------------------------------------------------------------


POLICY_CASES = {
    "not YAML": ("dataset: [residents\n", "not valid YAML (line"),
    "not a mapping": ("- residents\n- 10\n", "must be a YAML mapping"),
    "nested too deep": ("a: " + "[" * 5000, "nests too deeply"),
    "bad fields": (
        "dataset: residents\nentity_column: person_id\nk: many\ncolumns: {}\n",
        "k (line 3)",
    ),
    "another dataset's": ("dataset: enterprises\nentity_column: credit_code\n", "line"),
}


@pytest.mark.parametrize("case", sorted(POLICY_CASES))
def test_an_invalid_policy_is_422_with_its_problems_and_the_old_one_stays(
    gw: Gateway, case: str
) -> None:
    text, named = POLICY_CASES[case]
    policy = "/v1/datasets/residents/policy"
    active = gw.client.get(policy, headers=gw.h(PROVIDER)).json()
    versions = gw.client.get(f"{policy}/versions", headers=gw.h(PROVIDER)).json()
    before = gw.counts()
    answer = gw.client.put(
        policy, headers=gw.h(PROVIDER, **{"Content-Type": "application/yaml"}), content=text
    )
    assert answer.status_code == 422, answer.text
    plain(answer)
    problems = answer.json()["detail"]["problems"]
    assert problems and any(named in p for p in problems), problems
    assert gw.client.get(policy, headers=gw.h(PROVIDER)).json() == active
    assert gw.client.get(f"{policy}/versions", headers=gw.h(PROVIDER)).json() == versions
    unchanged(before, gw.counts())


@pytest.mark.parametrize(
    ("expires_at", "named"),
    [("2030-01-01T00:00:00", "timezone"), ("2000-01-01T00:00:00Z", "in the past")],
)
def test_a_token_that_could_never_work_is_not_issued(
    gw: Gateway, expires_at: str, named: str
) -> None:
    before = gw.counts()
    answer = gw.client.post(
        "/v1/accounts/op-1/tokens", headers=gw.h("admin-1"), json={"expires_at": expires_at}
    )
    assert answer.status_code == 422, answer.text
    plain(answer)
    assert named in json.dumps(answer.json()["detail"])
    unchanged(before, gw.counts())


@pytest.mark.parametrize(
    ("file", "content", "fields", "named"),
    [
        ("data.csv", b"entity,v\n1,2\n", {"encoding": "rot13"}, "not a text encoding"),
        ("data.csv", b"entity,v\n1,2\n", {"encoding": "utf-16"}, "does not decode as utf-16"),
        ("data.parquet", b"PAR1 not really parquet", {}, "data.parquet"),
    ],
)
def test_an_upload_that_cannot_be_read_is_422_and_stores_nothing(
    gw: Gateway, file: str, content: bytes, fields: dict[str, str], named: str
) -> None:
    registry: Registry = gw.app.state.registry
    names = registry.names()
    before = gw.counts()
    answer = gw.client.post(
        "/v1/datasets",
        headers=gw.h(PROVIDER),
        files={"file": (file, content, "application/octet-stream")},
        data={"name": "unreadable", "entity_column": "entity", **fields},
    )
    assert answer.status_code == 422, answer.text
    plain(answer)
    detail = answer.json()["detail"]
    assert named in detail
    assert not re.search(r"/(tmp|var|uploads)/", detail), detail  # no server paths
    assert registry.names() == names
    assert not any((registry.root / "uploads").iterdir())
    unchanged(before, gw.counts())
