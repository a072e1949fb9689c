"""Fuzzing the gateway's OpenAPI: no input makes it fail (no 5xx, never a traceback).

Every operation the app's ``/openapi.json`` lists is called with inputs
schemathesis derives from the schema, valid and invalid (phases: examples,
coverage, fuzzing), against the deployed app (``create_app`` with the
runtime of ``build_runtime``, SQLite, the synthetic city registered by its
provider). The worker is not started: jobs stay queued, no container runs.

Requests carry the token of an account holding every role (else the fuzz
would only meet 401s); path parameters and the ids in bodies hit real
objects some of the time (a grant, a queued job, a data request, the
city's datasets). The ``Authorization`` header is fuzzed on its own, on
every route: always a 401, always audited.

Bounded and repeatable: a fixed seed, derandomized Hypothesis, a small
``max_examples``, no example database written anywhere.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis import Case
from schemathesis.config import SchemathesisConfig

from gateway.app import create_app
from gateway.grants.service import grant_service
from gateway.identity import Role, create_account, issue_token
from gateway.runtime import build_runtime
from gateway.settings import GatewaySettings
from gateway.store.tables import audit_events
from sandbox.intake.policy import PolicyStore
from sandbox.intake.registry import Registry
from sandbox.synthetic import demo
from tests.support.access import SAMPLE_PATH
from tests.support.city import ENTITY, POLICIES

# Hypothesis keeps caches (Unicode tables, constants) in its home directory, and
# schemathesis draws examples while pytest collects: keep them out of the repo
# from the start. No example database is kept anywhere (database=None below).
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "dsr-hypothesis")

SEED = 20261122
MAX_EXAMPLES = 30  # per operation, fuzzing phase (examples and coverage phases come on top)
WHO = "fuzzer"  # holds every role; provider of the city, operator of the grant
GRANT_COLUMNS = ["person_id", "district_code", "gender"]
SQL = "SELECT district_code, count(*) AS n FROM residents GROUP BY 1"


@dataclass(frozen=True)
class Seeded:
    app: FastAPI
    token: str
    grant: str
    job: str
    request: str
    datasets: tuple[str, ...]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    root = tmp_path_factory.mktemp("fuzz")
    data = root / "var"
    paths = demo.generate_city(root / "src", residents=400, enterprises=40, seed=3)
    registry, policies = Registry(data), PolicyStore(data)
    for name, path in paths.items():
        version = registry.register(path, name=name, entity_column=ENTITY[name], provider=WHO)
        text = (POLICIES / f"{name}.yaml").read_text()
        policies.apply(text, {c.name: c.type for c in version.columns}, dataset=name, author=WHO)
    settings_ = GatewaySettings(data_dir=data, database_url="")
    app = create_app(settings_, build_runtime(settings_))
    app.state.worker_autostart = False  # jobs stay queued: no container runs
    with app.state.engine.begin() as conn:
        create_account(conn, WHO, {r.value for r in Role}, actor="test")
        token = issue_token(conn, WHO, actor="test")
        grant = grant_service(app).create(
            conn,
            operator=WHO,
            scenario="fuzzing",
            purpose="district counts, for the fuzz",
            scopes=[("residents", GRANT_COLUMNS)],
            valid_until=datetime.now(UTC) + timedelta(days=365),
            actor="test",
        )
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as client:
        job = client.post(
            "/v1/jobs", headers=auth, json={"grant": grant.id, "kind": "sql", "code": SQL}
        )
        assert job.status_code == 201, job.text
        asked = client.post(
            "/v1/requests",
            headers=auth,
            json={
                "scenario": "asked",
                "purpose": "population by district",
                "content": "resident counts",
                "use": "aggregate statistics",
                "datasets": [{"dataset": "residents", "columns": ["district_code"]}],
            },
        )
        assert asked.status_code == 201, asked.text
    yield Seeded(app, token, grant.id, job.json()["id"], asked.json()["id"], tuple(paths))
    app.state.engine.dispose()


# Placeholders the generated inputs carry some of the time; ``_fill`` puts the
# seeded objects' ids (random, known only once the fixture ran) in their place.
TOKEN, GRANT, JOB, REQUEST = "seeded-token", "seeded-grant", "seeded-job", "seeded-request"
DATASETS = ("residents", "enterprises", "social_insurance", "tax_payments")
BINDINGS = {
    "path.grant_id": ([GRANT], 0.5),
    "path.job_id": ([JOB], 0.5),
    "path.request_id": ([REQUEST], 0.5),
    "path.name": ([WHO, *DATASETS], 0.5),
    "body.grant": ([GRANT], 0.5),
    "body.job": ([JOB], 0.5),
    "body.datasets[*].dataset": (list(DATASETS), 0.5),
}
CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": SEED,
        "generation": {
            "mode": "all",
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
            "unique-inputs": True,
        },
        # Every request is signed in (past the 401, to the routes themselves);
        # test_no_authorization_header_makes_the_gateway_fail fuzzes the header.
        "headers": {"Authorization": TOKEN},
        "dictionaries": {k: {"values": v} for k, (v, _) in BINDINGS.items()},
        "parameters": {k: {"dictionary": k, "probability": p} for k, (_, p) in BINDINGS.items()},
    }
)


def _openapi() -> dict[str, Any]:
    """The gateway's OpenAPI document, from a throwaway app (collection must not need the city)."""
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(GatewaySettings(data_dir=Path(tmp), database_url=""))
        try:
            return app.openapi()
        finally:
            app.state.engine.dispose()


OPENAPI = _openapi()
schema = schemathesis.openapi.from_dict(OPENAPI, config=CONFIG)
# Every signed-in route, with sample path parameters for the header fuzz.
ROUTES = {
    (method.upper(), path)
    for path, ops in OPENAPI["paths"].items()
    for method, op in ops.items()
    if any(p["name"] == "authorization" for p in op.get("parameters", []))
}


def _fill(case: Case[Any], seeded: Seeded) -> None:
    real = {
        TOKEN: f"Bearer {seeded.token}",
        GRANT: seeded.grant,
        JOB: seeded.job,
        REQUEST: seeded.request,
    }
    for where in (case.path_parameters, case.headers):
        if where:
            for key, value in where.items():
                if isinstance(value, str) and value in real:
                    where[key] = real[value]
    if isinstance(case.body, dict):
        for key, value in case.body.items():
            if isinstance(value, str) and value in real:
                case.body[key] = real[value]


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_makes_the_gateway_fail(case: Case[Any], seeded: Seeded) -> None:
    _fill(case, seeded)
    response = case.call(app=seeded.app)
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text)
    assert "Traceback" not in response.text, (case.method, case.path)


AUTHORIZATION = st.text(
    st.characters(codec="latin-1", exclude_characters="\x00\r\n"), max_size=120
) | st.builds(
    "Bearer {}".format, st.from_regex(r"dsr_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", fullmatch=True)
)


@settings(max_examples=120, derandomize=True, database=None, deadline=None)
@given(route=st.sampled_from(sorted(ROUTES)), value=AUTHORIZATION)
def test_no_authorization_header_makes_the_gateway_fail(
    seeded: Seeded, route: tuple[str, str], value: str
) -> None:
    method, path = route
    with seeded.app.state.engine.connect() as conn:
        head = conn.execute(sa.select(sa.func.max(audit_events.c.id))).scalar_one()
    with TestClient(seeded.app) as client:
        headers = [(b"authorization", value.encode("latin-1"))]
        response = client.request(method, path.format_map(SAMPLE_PATH), headers=headers)
    assert response.status_code == 401, (route, value, response.text)
    with seeded.app.state.engine.connect() as conn:
        types = conn.execute(sa.select(audit_events.c.type).where(audit_events.c.id > head))
        assert list(types.scalars()) == ["auth.failed"]


def test_after_the_fuzz_the_audit_chain_verifies(seeded: Seeded) -> None:
    """The token reached the routes (not only the 401), and nothing the fuzz did broke
    the hash chain of the audit log."""
    with TestClient(seeded.app) as client:
        auth = {"Authorization": f"Bearer {seeded.token}"}
        me = client.get("/v1/me", headers=auth)
        verified = client.get("/v1/audit/verify", headers=auth).json()
    assert me.status_code == 200 and set(me.json()["roles"]) == {r.value for r in Role}
    assert verified["ok"] and verified["checked"] > 100
