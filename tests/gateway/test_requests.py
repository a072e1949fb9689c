"""Data requests: the state table, rejections with their basis, providers' votes as rows
(and the migration that made them so), working-day deadlines, the whole request -> grant
flow over HTTP, and the routes' access matrix."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from fastapi.testclient import TestClient

from gateway.audit import append
from gateway.audit.chain import iter_events
from gateway.requests.errors import IllegalRequestTransition, RequestError
from gateway.requests.model import DEADLINE_DAYS, TRANSITIONS, Decision, RequestRecord, State
from gateway.requests.records import read_request
from gateway.requests.service import RequestService, request_service
from gateway.requests.votes import votes_of
from gateway.scope.objects import column_object
from gateway.store import make_engine, migrate
from gateway.store.migrations import CONNECTION, alembic_config
from gateway.store.tables import accounts as accounts_table
from gateway.store.tables import request_votes
from gateway.store.types import UTCDateTime
from gateway.workdays import CST, Calendar
from tests.support.access import REQUESTS as ACCESS
from tests.support.grants_world import ROLES, World, make_world

SAMPLE_PATH = {"{request_id}": "r-0000000000000000", "{extension_id}": "x-0000000000000000"}
REQUEST_BODY = {
    "scenario": "elderly care planning",
    "purpose": "plan care homes by district",
    "content": "age and income of residents",
    "use": "aggregate statistics per district",
    "datasets": [{"dataset": "people", "columns": ["age", "income"]}],
}
SAMPLE_BODY: dict[tuple[str, str], Any] = {
    ("POST", "/v1/requests"): REQUEST_BODY,
    ("POST", "/v1/requests/{request_id}/formal-review"): {"decision": "pass"},
    ("POST", "/v1/requests/{request_id}/provider-review"): {"decision": "approve"},
    ("POST", "/v1/requests/{request_id}/supply"): {"valid_until": "2030-01-01T00:00:00Z"},
    ("POST", "/v1/requests/{request_id}/extensions"): {"days": 5, "reason": "many columns"},
    ("POST", "/v1/requests/{request_id}/extensions/{extension_id}/decision"): {
        "decision": "approve",
        "reason": "agreed",
    },
}
MONDAY = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
BASIS = {"reason": "the scenario needs no income", "legal_basis": "Measures art. 12 (minimum)"}


@pytest.fixture
def world(store_url: str, tmp_path: Path) -> Iterator[World]:
    yield from make_world(store_url, tmp_path)


def service(w: World) -> RequestService:
    return request_service(w.app)


def submit(
    w: World,
    *,
    datasets: tuple[tuple[str, tuple[str, ...]], ...] = (("people", ("age",)),),
    now: datetime | None = None,
    scenario: str = "elderly care planning",
) -> RequestRecord:
    with w.engine.begin() as conn:
        return service(w).create(
            conn,
            operator="operator-1",
            scenario=scenario,
            purpose="plan care homes",
            content="ages",
            use="statistics",
            scopes=datasets,
            now=now,
        )


def request_at_state(w: World, state: State) -> RequestRecord:
    """A request brought to ``state`` through legal moves only."""
    r = submit(w)
    s = service(w)
    steps = {
        State.SUBMITTED: [],
        State.REJECTED: [lambda c: s.formal_review(c, r.id, "admin-1", passed=False, **BASIS)],
        State.FORMAL_REVIEW_PASSED: [lambda c: s.formal_review(c, r.id, "admin-1", passed=True)],
    }
    steps[State.PROVIDER_APPROVED] = [
        *steps[State.FORMAL_REVIEW_PASSED],
        lambda c: s.provider_review(c, r.id, "provider-1", approved=True),
    ]
    steps[State.DATA_PROVIDED] = [
        *steps[State.PROVIDER_APPROVED],
        lambda c: s.provide(c, r.id, _account(c, "provider-1")),
    ]
    steps[State.SUPPLIED] = [
        *steps[State.PROVIDER_APPROVED],
        lambda c: s.supply(
            c, r.id, _admin(w, c), valid_until=datetime.now(UTC) + timedelta(days=30)
        ),
    ]
    for step in steps[state]:
        with w.engine.begin() as conn:
            step(conn)
    with w.engine.connect() as conn:
        return s.get(conn, r.id)


def _admin(w: World, conn: Any) -> Any:
    return _account(conn, "admin-1")


def _account(conn: Any, name: str) -> Any:
    from gateway.identity import get_account

    return get_account(conn, name)


# -- the state table -----------------------------------------------------------------------


def test_every_state_has_an_entry_and_the_ends_are_final() -> None:
    assert set(TRANSITIONS) == set(State)
    assert TRANSITIONS[State.SUPPLIED] == set() and TRANSITIONS[State.REJECTED] == set()
    for state in (State.SUBMITTED, State.FORMAL_REVIEW_PASSED, State.PROVIDER_APPROVED):
        assert State.REJECTED in TRANSITIONS[state], "every review step may reject"
        assert state in DEADLINE_DAYS, "every step under way has a deadline"


def test_every_illegal_move_is_refused_and_names_it(world: World) -> None:
    for start in State:
        record = request_at_state(world, start)
        assert record.state == start
        for to in State:
            if to in TRANSITIONS[start]:
                continue
            with (
                pytest.raises(IllegalRequestTransition, match=f"from {start} to {to}"),
                world.engine.begin() as conn,
            ):
                service(world).transition(conn, record.id, to, "admin-1", **BASIS)


def test_illegal_moves_answer_409_over_http(world: World) -> None:
    r = request_at_state(world, State.SUBMITTED)
    early = world.client.post(
        f"/v1/requests/{r.id}/provider-review",
        headers=world.headers("provider"),
        json={"decision": "approve"},
    )
    assert early.status_code == 409 and "provider review needs" in early.json()["detail"]
    supply = world.client.post(
        f"/v1/requests/{r.id}/supply",
        headers=world.headers("admin"),
        json={"valid_until": "2030-01-01T00:00:00Z"},
    )
    assert supply.status_code == 409 and "from submitted to supplied" in supply.json()["detail"]
    unknown = world.client.post(
        "/v1/requests/r-nope/formal-review",
        headers=world.headers("admin"),
        json={"decision": "pass"},
    )
    assert unknown.status_code == 404


# -- rejection ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"decision": "reject"},
        {"decision": "reject", "reason": "not needed"},
        {"decision": "reject", "legal_basis": "art. 12"},
        {"decision": "reject", "reason": "  ", "legal_basis": "art. 12"},
    ],
)
def test_a_rejection_without_reason_and_legal_basis_is_422(world: World, body: Any) -> None:
    r = request_at_state(world, State.SUBMITTED)
    answer = world.client.post(
        f"/v1/requests/{r.id}/formal-review", headers=world.headers("admin"), json=body
    )
    assert answer.status_code == 422
    assert "reason and its legal basis" in str(answer.json()["detail"])
    with (
        world.engine.begin() as conn,
        pytest.raises(RequestError, match="reason and its legal basis"),
    ):
        service(world).formal_review(conn, r.id, "admin-1", passed=False, reason=body.get("reason"))
    with world.engine.connect() as conn:
        assert service(world).get(conn, r.id).state == State.SUBMITTED


def test_a_provider_rejects_with_reason_and_basis(world: World) -> None:
    r = request_at_state(world, State.FORMAL_REVIEW_PASSED)
    bare = world.client.post(
        f"/v1/requests/{r.id}/provider-review",
        headers=world.headers("provider"),
        json={"decision": "reject", "reason": "no"},
    )
    assert bare.status_code == 422
    done = world.client.post(
        f"/v1/requests/{r.id}/provider-review",
        headers=world.headers("provider"),
        json={"decision": "reject", **BASIS},
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["state"] == "rejected" and body["legal_basis"] == BASIS["legal_basis"]
    assert body["deadline"] is None and body["overdue"] is False
    with world.engine.connect() as conn:
        last = [e for e in iter_events(conn) if e.type == "request.state"][-1]
    assert last.detail["reason"] == BASIS["reason"]
    assert last.detail["legal_basis"] == BASIS["legal_basis"]


def test_every_provider_must_approve(world: World) -> None:
    r = submit(world, datasets=(("people", ("age",)), ("tax", ("income",))))
    s = service(world)
    with world.engine.begin() as conn:
        s.formal_review(conn, r.id, "admin-1", passed=True)
    with world.engine.begin() as conn:
        assert s.provider_review(conn, r.id, "provider-1", approved=True).state == (
            State.FORMAL_REVIEW_PASSED
        )
    again = world.client.post(
        f"/v1/requests/{r.id}/provider-review",
        headers=world.headers("provider"),
        json={"decision": "approve"},
    )
    assert again.status_code == 409
    last = world.client.post(
        f"/v1/requests/{r.id}/provider-review",
        headers=world.headers("provider-2"),
        json={"decision": "approve"},
    )
    assert last.status_code == 200 and last.json()["state"] == "provider_approved"
    assert last.json()["approvals"] == ["provider-1", "provider-2"]


# -- votes are rows ------------------------------------------------------------------------------


def two_provider_request(w: World) -> RequestRecord:
    """A request for one dataset of provider-1 and one of provider-2, at provider review."""
    r = submit(w, datasets=(("people", ("age",)), ("tax", ("income",))))
    with w.engine.begin() as conn:
        return service(w).formal_review(conn, r.id, "admin-1", passed=True)


def vote_rows(w: World, request_id: str) -> list[tuple[str, str]]:
    with w.engine.connect() as conn:
        rows = conn.execute(
            sa.select(request_votes.c.provider, request_votes.c.decision)
            .where(request_votes.c.request_id == request_id)
            .order_by(request_votes.c.provider, request_votes.c.decision)
        )
        return [(p, d) for p, d in rows]


def test_each_approval_is_one_row_and_the_last_needed_one_moves_the_request(
    world: World,
) -> None:
    r, s = two_provider_request(world), service(world)
    with world.engine.begin() as conn:
        first = s.provider_review(conn, r.id, "provider-1", approved=True, now=MONDAY)
    assert first.state == State.FORMAL_REVIEW_PASSED and first.approvals == ("provider-1",)
    assert vote_rows(world, r.id) == [("provider-1", "approved")]
    with (  # one approval per provider
        pytest.raises(
            IllegalRequestTransition, match=f"provider-1 approved data request {r.id} already"
        ),
        world.engine.begin() as conn,
    ):
        s.provider_review(conn, r.id, "provider-1", approved=True)
    assert vote_rows(world, r.id) == [("provider-1", "approved")]
    with world.engine.begin() as conn:
        last = s.provider_review(conn, r.id, "provider-2", approved=True)
    assert last.state == State.PROVIDER_APPROVED
    assert last.approvals == ("provider-1", "provider-2")
    assert vote_rows(world, r.id) == [("provider-1", "approved"), ("provider-2", "approved")]
    with world.engine.connect() as conn:
        (cast,) = votes_of(conn, [r.id]).values()
    assert [v.at for v in cast if v.provider == "provider-1"] == [MONDAY]
    with world.engine.connect() as conn:
        moves = [
            (e.actor, e.detail["from"], e.detail["to"], e.detail.get("waiting_for"))
            for e in iter_events(conn)
            if e.type == "request.state" and e.detail["request"] == r.id
        ][2:]
    assert moves == [
        ("provider-1", "formal_review_passed", "formal_review_passed", ["provider-2"]),
        ("provider-2", "formal_review_passed", "provider_approved", None),
    ]


def test_a_rejection_is_a_row_and_ends_the_request(world: World) -> None:
    r, s = two_provider_request(world), service(world)
    with world.engine.begin() as conn:
        s.provider_review(conn, r.id, "provider-1", approved=True)
    with world.engine.begin() as conn:
        done = s.provider_review(conn, r.id, "provider-2", approved=False, **BASIS)
    assert done.state == State.REJECTED and done.reason == BASIS["reason"]
    assert done.approvals == ("provider-1",)
    assert vote_rows(world, r.id) == [("provider-1", "approved"), ("provider-2", "rejected")]
    late = world.client.post(
        f"/v1/requests/{r.id}/provider-review",
        headers=world.headers("provider-2"),
        json={"decision": "approve"},
    )
    assert late.status_code == 409 and "provider review needs" in late.json()["detail"]
    shown = world.client.get(f"/v1/requests/{r.id}", headers=world.headers("operator"))
    assert shown.json()["approvals"] == ["provider-1"]


def test_a_provider_who_approved_may_still_reject_while_others_are_awaited(
    world: World,
) -> None:
    r, s = two_provider_request(world), service(world)
    with world.engine.begin() as conn:
        s.provider_review(conn, r.id, "provider-1", approved=True)
    with world.engine.begin() as conn:
        done = s.provider_review(conn, r.id, "provider-1", approved=False, **BASIS)
    assert done.state == State.REJECTED
    assert vote_rows(world, r.id) == [("provider-1", "approved"), ("provider-1", "rejected")]


def test_a_bare_rejection_leaves_no_vote(world: World) -> None:
    r, s = two_provider_request(world), service(world)
    with (
        pytest.raises(RequestError, match="reason and its legal basis"),
        world.engine.begin() as conn,
    ):
        s.provider_review(conn, r.id, "provider-1", approved=False, reason="no")
    assert vote_rows(world, r.id) == []


def test_migration_0010_carries_the_approvals_into_rows(store_url: str) -> None:
    """A store at 0009 with requests holding approvals upgrades to one row per approval,
    timed by the audit event that recorded it (else the step's start)."""
    engine = make_engine(store_url)
    try:
        config = alembic_config()
        with engine.begin() as conn:
            config.attributes[CONNECTION] = conn
            command.upgrade(config, "0009")
        old = sa.table(
            "data_requests",
            *(sa.column(c) for c in ("id", "operator", "scenario", "purpose", "content")),
            *(sa.column(c) for c in ("intended_use", "state", "reason", "legal_basis")),
            sa.column("scopes", sa.JSON()),
            sa.column("approvals", sa.JSON()),
            sa.column("created_at", UTCDateTime()),
            sa.column("step_started_at", UTCDateTime()),
            sa.column("grant_id"),
        )
        asked = {"operator": "op", "scenario": "s", "purpose": "p", "content": "c",
                 "intended_use": "u", "reason": None, "legal_basis": None, "grant_id": None,
                 "scopes": [{"dataset": "people", "columns": ["age"]}],
                 "created_at": MONDAY, "step_started_at": MONDAY}  # fmt: skip
        approval = {"request": "r-two", "from": "formal_review_passed",
                    "to": "formal_review_passed", "approved_by": "p-1"}  # fmt: skip
        with engine.begin() as conn:
            conn.execute(
                accounts_table.insert().values(
                    name="op", display_name="op", roles=["operator"], created_at=MONDAY
                )
            )
            two = {"id": "r-two", "state": "formal_review_passed", "approvals": ["p-2", "p-1"]}
            conn.execute(old.insert().values(**two, **asked))
            conn.execute(old.insert().values(id="r-none", state="submitted", approvals=[], **asked))
            recorded = append(conn, "request.state", "p-1", detail=approval)
        migrate(engine)
        with engine.connect() as conn:
            cast = votes_of(conn, ["r-two", "r-none"])
            assert read_request(conn, "r-two").approvals == ("p-1", "p-2")
            assert read_request(conn, "r-none").approvals == ()
            columns = {c["name"] for c in sa.inspect(conn).get_columns("data_requests")}
        assert set(cast) == {"r-two"}
        assert [(v.provider, v.decision, v.at) for v in cast["r-two"]] == [
            ("p-1", Decision.APPROVED, recorded.at),
            ("p-2", Decision.APPROVED, MONDAY),
        ]
        assert "approvals" not in columns  # the votes have one home
    finally:
        engine.dispose()


def test_a_request_for_hidden_columns_is_refused(world: World) -> None:
    body = {**REQUEST_BODY, "datasets": [{"dataset": "people", "columns": ["name"]}]}
    answer = world.client.post("/v1/requests", headers=world.headers("operator"), json=body)
    assert answer.status_code == 422 and "hidden" in answer.json()["detail"]


# -- deadlines ---------------------------------------------------------------------------------


def deadline_after(start: datetime, days: int) -> datetime:
    return Calendar().deadline(start, days).at


def test_deadlines_count_working_days_and_skip_weekends() -> None:
    friday = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)  # Friday 10:00 CST
    due = deadline_after(friday, 5).astimezone(CST)
    assert due == datetime(2026, 12, 5, 0, 0, tzinfo=CST)  # end of Friday 4 December
    saturday = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
    assert deadline_after(saturday, 1).astimezone(CST) == datetime(2026, 12, 1, tzinfo=CST)
    # Monday + 10 working days = end of the Monday two weeks later.
    assert deadline_after(MONDAY, 10).astimezone(CST) == datetime(2026, 12, 8, tzinfo=CST)
    # 20 working days are four calendar weeks.
    assert deadline_after(MONDAY, 20) - deadline_after(MONDAY, 10) == timedelta(days=14)
    # The CST day counts, not the UTC one: 23:00 UTC Sunday is Monday in Beijing.
    sunday_night = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)
    assert deadline_after(sunday_night, 1).astimezone(CST) == datetime(2026, 11, 25, tzinfo=CST)


def test_overdue_flags_follow_the_current_step(world: World) -> None:
    s = service(world)
    r = submit(world, now=MONDAY)
    step = s.deadline(r, MONDAY + timedelta(days=7))
    assert step is not None and step.step == "formal review" and not step.overdue
    late = s.deadline(r, MONDAY + timedelta(days=8))  # Tuesday after the Monday due date
    assert late is not None and late.overdue
    with world.engine.begin() as conn:
        passed = s.formal_review(conn, r.id, "admin-1", passed=True, now=MONDAY + timedelta(days=8))
    provider_step = s.deadline(passed, MONDAY + timedelta(days=9))
    assert provider_step is not None and provider_step.step == "provider review"
    assert not provider_step.overdue  # a new step, a new clock
    assert provider_step.due == deadline_after(MONDAY + timedelta(days=8), 10)


def test_list_endpoints_show_deadlines_and_overdue(world: World) -> None:
    old = submit(world, now=datetime.now(UTC) - timedelta(days=30), scenario="old")
    new = submit(world, scenario="new")
    listed = world.client.get("/v1/requests", headers=world.headers("operator")).json()
    by_id = {r["id"]: r for r in listed}
    assert by_id[old.id]["overdue"] is True and by_id[new.id]["overdue"] is False
    assert by_id[new.id]["step"] == "formal review" and by_id[new.id]["deadline"]
    pending = world.client.get("/v1/requests?pending=true", headers=world.headers("admin"))
    assert {r["id"] for r in pending.json()} == {old.id, new.id}
    provider = world.client.get("/v1/requests?pending=true", headers=world.headers("provider"))
    assert provider.json() == []  # nothing is at provider review yet
    assert world.client.get("/v1/requests", headers=world.headers("operator-2")).json() == []


# -- the whole flow -----------------------------------------------------------------------------


def test_request_to_grant_through_the_api(world: World) -> None:
    c, h = world.client, world.headers
    made = c.post("/v1/requests", headers=h("operator"), json=REQUEST_BODY)
    assert made.status_code == 201, made.text
    rid = made.json()["id"]
    assert made.json()["state"] == "submitted" and made.json()["step"] == "formal review"
    formal = c.post(
        f"/v1/requests/{rid}/formal-review", headers=h("admin"), json={"decision": "pass"}
    )
    assert formal.status_code == 200 and formal.json()["step"] == "provider review"
    pending = c.get("/v1/requests?pending=true", headers=h("provider")).json()
    assert [r["id"] for r in pending] == [rid]
    assert c.get("/v1/requests?pending=true", headers=h("provider-2")).json() == []
    stranger = c.post(
        f"/v1/requests/{rid}/provider-review", headers=h("provider-2"), json={"decision": "approve"}
    )
    assert stranger.status_code == 403
    approved = c.post(
        f"/v1/requests/{rid}/provider-review", headers=h("provider"), json={"decision": "approve"}
    )
    assert approved.status_code == 200 and approved.json()["state"] == "provider_approved"
    too_long = c.post(
        f"/v1/requests/{rid}/supply",
        headers=h("provider"),
        json={"valid_until": (datetime.now(UTC) + timedelta(days=1200)).isoformat()},
    )
    assert too_long.status_code == 422 and "at most 3 years" in too_long.json()["detail"]
    until = datetime.now(UTC) + timedelta(days=365)
    supplied = c.post(
        f"/v1/requests/{rid}/supply", headers=h("provider"), json={"valid_until": until.isoformat()}
    )
    assert supplied.status_code == 201, supplied.text
    grant_id = supplied.json()["grant_id"]
    assert supplied.json()["state"] == "supplied" and grant_id
    grants = c.get("/v1/grants", headers=h("operator")).json()
    assert [g["id"] for g in grants] == [grant_id]
    assert grants[0]["request_id"] == rid and grants[0]["state"] == "active"
    assert grants[0]["datasets"] == [{"dataset": "people", "columns": ["age", "income"]}]
    assert world.grants.scope.can_access(
        "operator-1", grant_id, column_object("people", "income"), "aggregate"
    )
    assert c.get(f"/v1/requests/{rid}", headers=h("operator-2")).status_code == 403
    with world.engine.connect() as conn:
        moves = [
            (e.detail["from"], e.detail["to"])
            for e in iter_events(conn)
            if e.type == "request.state" and e.detail["request"] == rid
        ]
    assert moves == [
        (None, "submitted"),
        ("submitted", "formal_review_passed"),
        ("formal_review_passed", "provider_approved"),
        ("provider_approved", "supplied"),
    ]


# -- the access matrix ----------------------------------------------------------------------------


def call(client: TestClient, method: str, path: str, token: str | None) -> Any:
    url = path
    for key, value in SAMPLE_PATH.items():
        url = url.replace(key, value)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.request(method, url, headers=headers, json=SAMPLE_BODY.get((method, path)))


@pytest.mark.parametrize(("method", "path"), sorted(ACCESS))
def test_access_matrix(world: World, method: str, path: str) -> None:
    allowed = ACCESS[(method, path)]
    for role in ROLES:
        response = call(world.client, method, path, world.tokens[role])
        if role in allowed:
            assert response.status_code not in (401, 403, 500), (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
            assert "needs the role" in response.json()["detail"]
    assert call(world.client, method, path, None).status_code == 401
    assert call(world.client, method, path, "dsr_000000000000_" + "A" * 43).status_code == 401
