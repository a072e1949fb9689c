"""Whoever supplies a grant (a provider, an administrator) against its term, and any stored
date against every page.

Before this, a grant supplied with dates in year 9999 made ``GET
/console/grants`` answer 500 for every role from then on (China Standard
Time is UTC+8: the last hours of 9999 cannot be shown in it); a back-dated
``valid_from`` was accepted (a grant "issued" years ago); the maximum term was
1,096 days, not three calendar years; and ``dsr requests supply --days
3000000`` printed a traceback. Now (``gateway.grants.terms``) a grant starts
at issue (within the clock skew), runs at most three calendar years and ends
by 2100; a term in days is bounded where it is parsed; times that cannot be
moved to UTC are a 422; and every page, list and command survives any date
the store can hold, from year 1 to year 9999.

Real pieces: the app from ``create_app`` on SQLite, the REST routes, the
console signed in through its form, the ``dsr`` client (its commands run in
process, their HTTP calls answered by the app). On the code before this, the
back-dated start was accepted (201), the console's grants page answered 500
once a year-9999 grant was stored, and the CLI raised OverflowError.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gateway.cli import app as dsr
from gateway.client import http
from gateway.client.config import Target
from gateway.console.pages import PAGES
from gateway.grants.errors import GrantError
from gateway.grants.service import grant_service
from gateway.store.tables import data_requests, grants
from tests.support.gateway import ROLES, Gateway, make_gateway
from tests.support.grants import COLUMNS, console_login, register_dataset

LAST = datetime.max.replace(tzinfo=UTC)  # 9999-12-31 23:59:59.999999 UTC
FIRST = datetime.min.replace(tzinfo=UTC)  # 0001-01-01 00:00 UTC


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[Gateway]:
    with make_gateway(tmp_path / "var") as gw:
        register_dataset(gw.app, "people", "provider")
        yield gw


def approved_request(gw: Gateway, scenario: str = "elderly care planning") -> str:
    """A data request through formal and provider review, waiting for supply."""
    body = {"scenario": scenario, "purpose": "plan care homes", "content": "age, income",
            "use": "aggregate statistics",
            "datasets": [{"dataset": "people", "columns": list(COLUMNS)}]}  # fmt: skip
    made = gw.post("operator", "/v1/requests", json=body)
    assert made.status_code == 201, made.text
    rid = str(made.json()["id"])
    assert gw.post(
        "admin", f"/v1/requests/{rid}/formal-review", json={"decision": "pass"}
    ).is_success
    review = gw.post(
        "provider", f"/v1/requests/{rid}/provider-review", json={"decision": "approve"}
    )
    assert review.status_code == 200, review.text
    return rid


def supply(gw: Gateway, rid: str, **term: Any) -> Any:
    body = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in term.items()}
    return gw.post("provider", f"/v1/requests/{rid}/supply", json=body)


def issue_at(gw: Gateway, now: datetime, until: datetime, scenario: str = "s") -> str:
    with gw.app.state.engine.begin() as conn:
        g = grant_service(gw.app).create(
            conn, operator="operator", scenario=scenario, purpose="p",
            scopes=[("people", COLUMNS)], valid_until=until, actor="admin", now=now,
        )  # fmt: skip
    return g.id


# -- a grant's term ----------------------------------------------------------------------


def test_a_grant_starts_when_it_is_issued(gw: Gateway) -> None:
    rid = approved_request(gw)
    now = datetime.now(UTC)
    until = now + timedelta(days=30)
    for start in (now - timedelta(days=400), now - timedelta(hours=1), now + timedelta(days=7)):
        refused = supply(gw, rid, valid_from=start, valid_until=until)
        assert refused.status_code == 422, (start, refused.text)
        assert "neither back-dated nor post-dated" in refused.json()["detail"]
    assert supply(gw, rid, valid_from=now, valid_until=until).status_code == 201


def test_a_grant_runs_at_most_three_calendar_years(gw: Gateway) -> None:
    leap = datetime(2028, 2, 29, 9, tzinfo=UTC)  # three years on: 28 February 2031
    with pytest.raises(GrantError, match="at most 3 years"):
        issue_at(gw, leap, datetime(2031, 2, 28, 9, tzinfo=UTC) + timedelta(seconds=1))
    assert issue_at(gw, leap, datetime(2031, 2, 28, 9, tzinfo=UTC)).startswith("g-")
    rid = approved_request(gw, "another scenario")
    now = datetime.now(UTC)
    too_long = supply(gw, rid, valid_until=now.replace(year=now.year + 3) + timedelta(days=2))
    assert too_long.status_code == 422 and "at most 3 years" in too_long.json()["detail"]
    assert supply(gw, rid, days=1097).status_code == 422  # more days than three years hold


def test_no_grant_runs_past_2100(gw: Gateway) -> None:
    late = datetime(2098, 12, 1, tzinfo=UTC)
    with pytest.raises(GrantError, match="no later than the end of 2100"):
        issue_at(gw, late, datetime(2101, 1, 1, tzinfo=UTC))
    assert issue_at(gw, late, datetime(2100, 12, 31, 23, tzinfo=UTC)).startswith("g-")


def test_terms_out_of_any_range_are_422_not_500(gw: Gateway) -> None:
    rid = approved_request(gw)
    for term in (
        {"days": 3_000_000},
        {"days": 0},
        {"days": -5},
        {"valid_until": "9999-12-31T23:00:00-05:00"},  # past year 9999 in UTC
        {"valid_until": "2027-01-01T00:00:00Z", "valid_from": "0001-01-01T00:00:00+05:00"},
        {"valid_until": "9999-12-31T23:59:59Z"},
        {"valid_until": "2027-01-01T00:00:00Z", "days": 30},  # two ends
    ):
        refused = supply(gw, rid, **term)
        assert refused.status_code == 422, (term, refused.text)
    assert supply(gw, rid, days=30).status_code == 201


# -- any stored date ------------------------------------------------------------------------


def store_extreme_dates(gw: Gateway) -> dict[str, list[str]]:
    """Grants and requests with the first and last times the store can hold, written
    straight into it (as a past version or a hand-edited row might have left them)."""
    now = datetime.now(UTC)
    terms = [(now, LAST, LAST), (now, LAST - timedelta(hours=3), now),
             (FIRST, FIRST + timedelta(days=1), FIRST)]  # fmt: skip
    ids = [issue_at(gw, now, now + timedelta(days=30), f"extreme {i}") for i in range(3)]
    asked = {"operator": "operator", "purpose": "p", "content": "c", "intended_use": "u",
             "scopes": [{"dataset": "people", "columns": ["age"]}],
             "reason": None, "legal_basis": None, "grant_id": None}  # fmt: skip
    steps = [(LAST, "submitted"), (FIRST, "formal_review_passed"),
             (LAST - timedelta(hours=5), "provider_approved")]  # fmt: skip
    with gw.app.state.engine.begin() as conn:
        for grant_id, (start, end, made) in zip(ids, terms, strict=True):
            conn.execute(
                grants.update()
                .where(grants.c.id == grant_id)
                .values(valid_from=start, valid_until=end, created_at=made, state_changed_at=made)
            )
        for i, (at, state) in enumerate(steps):
            conn.execute(
                data_requests.insert().values(
                    id=f"r-extreme{i:08d}", scenario=f"extreme {i}", state=state,
                    created_at=at, step_started_at=at, **asked,
                )
            )  # fmt: skip
    stopped = gw.post("admin", f"/v1/grants/{ids[0]}/suspend", json={"reason": "x"})
    assert stopped.status_code == 200, stopped.text
    return {"grants": ids, "requests": [f"r-extreme{i:08d}" for i in range(len(steps))]}


def test_every_page_and_list_survives_any_stored_date(gw: Gateway) -> None:
    stored = store_extreme_dates(gw)
    for who, role in ROLES.items():
        console_login(gw, who)
        for path in ["/console/", *(p for p, roles in PAGES.values() if role in roles)]:
            page = gw.client.get(path)
            assert page.status_code == 200, (who, path, page.status_code, page.text[-800:])
    paths = gw.client.get("/openapi.json").json()["paths"]
    lists = [p for p, ops in paths.items() if "get" in ops and "{" not in p]
    ones = [f"/v1/grants/{g}" for g in stored["grants"]]
    ones += [f"/v1/requests/{r}" for r in stored["requests"]] + ["/v1/requests?pending=true"]
    for who in ROLES:
        for path in [*lists, *ones]:
            got = gw.get(who, path)
            assert got.status_code < 500, (who, path, got.status_code, got.text[:500])
    listed = gw.get("admin", "/v1/grants").json()
    assert {g["id"] for g in listed} >= set(stored["grants"])


def run_dsr(gw: Gateway, monkeypatch: pytest.MonkeyPatch, who: str, *args: str) -> Any:
    """``dsr ARGS`` as ``who``, in process; its HTTP calls answered by the app."""

    def connect(self: http.Api, target: Target) -> None:
        self.target = target
        self._client = TestClient(  # a 5xx stays a response, as over the network
            gw.app, base_url=target.server, raise_server_exceptions=False,
            headers={"Authorization": f"Bearer {target.token}"},
        )  # fmt: skip

    monkeypatch.setattr(http.Api, "__init__", connect)
    auth = ["--server", "http://testserver", "--token", gw.tokens[who]]
    return CliRunner().invoke(dsr, [*args, *auth])


def test_every_command_survives_any_stored_date(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DSR_CONFIG", str(tmp_path / "no-config.toml"))
    stored = store_extreme_dates(gw)
    commands = [("grants", "list"), ("requests", "list")]
    commands += [("grants", "show", g) for g in stored["grants"]]
    commands += [("requests", "show", r) for r in stored["requests"]]
    for command in commands:
        done = run_dsr(gw, monkeypatch, "admin", *command)
        assert done.exit_code == 0 and done.exception is None, (command, done.output)
    shown = run_dsr(gw, monkeypatch, "admin", "grants", "show", stored["grants"][0])
    assert "9999-12-31" in shown.output and "the administrators" in shown.output


def test_a_huge_term_in_days_is_the_gateways_refusal_not_a_traceback(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DSR_CONFIG", str(tmp_path / "no-config.toml"))
    rid = approved_request(gw)
    done = run_dsr(gw, monkeypatch, "provider", "requests", "supply", rid, "--days", "3000000")
    assert isinstance(done.exception, SystemExit), done.exception  # not OverflowError
    assert done.exit_code == 1, done.output  # the gateway refused (gateway.client.errors)
    assert "Traceback" not in done.output and "(422)" in done.output
    assert "days: Input should be less than or equal to 1096" in done.output
    with gw.app.state.engine.connect() as conn:
        state = conn.execute(sa.select(data_requests.c.state).where(data_requests.c.id == rid))
        assert state.scalar_one() == "provider_approved"  # nothing was supplied
    ok = run_dsr(gw, monkeypatch, "provider", "requests", "supply", rid, "--days", "30")
    assert ok.exit_code == 0 and ok.output.startswith("g-"), ok.output
