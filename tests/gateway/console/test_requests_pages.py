"""The console's decisions without a browser: the data-request steps (formal review,
provider review, supply) taken by whoever's step it is and refused to anyone else, the
administrators' emergency stop of a dataset, and the HTML 404/405 pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from gateway.grants.model import State as GrantState
from gateway.grants.service import grant_service
from gateway.identity import create_account, issue_token
from gateway.requests.model import State
from gateway.requests.service import request_service
from tests.support.console import Console


def request_id(console: Console) -> str:
    with console.app.state.engine.connect() as conn:
        (record,) = request_service(console.app).find(conn)
    return record.id


def state_of(console: Console, rid: str) -> State:
    with console.app.state.engine.connect() as conn:
        return request_service(console.app).get(conn, rid).state


def formal_pass(console: Console, rid: str) -> None:
    with console.app.state.engine.begin() as conn:
        request_service(console.app).formal_review(conn, rid, "admin", passed=True)


def forms_of(html: str) -> list[str]:
    return re.findall(r'class="decision" data-step="(\w+)"', html)


def test_the_administrator_passes_or_rejects_with_reason_and_legal_basis(
    governed: Console,
) -> None:
    c, rid = governed.client, request_id(governed)
    csrf = governed.login("admin")
    page = c.get("/console/requests")
    assert forms_of(page.text) == ["formal"]
    url = f"/console/requests/{rid}/formal-review"
    no_basis = c.post(url, data={"csrf": csrf, "decision": "reject", "reason": "vague"})
    assert no_basis.status_code == 422 and 'id="request-problem"' in no_basis.text
    assert "legal basis" in no_basis.text and "操作未完成" in no_basis.text
    no_choice = c.post(url, data={"csrf": csrf, "decision": "maybe"})
    assert no_choice.status_code == 422 and "请选择通过或驳回" in no_choice.text
    assert state_of(governed, rid) == State.SUBMITTED
    done = c.post(url, data={"csrf": csrf, "decision": "pass"})
    assert done.status_code == 200 and 'id="request-notice"' in done.text
    assert "形式审查通过" in done.text and forms_of(done.text) == []
    (_, passed) = governed.events("request.state")
    assert passed["actor"] == "admin" and passed["to"] == "formal_review_passed"
    # A second request, rejected with both fields: the page shows why.
    with governed.app.state.engine.begin() as conn:
        other = request_service(governed.app).create(
            conn, operator="operator", scenario="s2", purpose="p", content="c", use="u",
            scopes=[("residents", ["gender"])],
        ).id  # fmt: skip
    rejected = c.post(
        f"/console/requests/{other}/formal-review?lang=en",
        data={"csrf": csrf, "decision": "reject", "reason": "no purpose",
              "legal_basis": "Data Security Law art. 32"},
    )  # fmt: skip
    assert rejected.status_code == 200 and "is now rejected" in rejected.text
    assert "Rejected: no purpose (basis: Data Security Law art. 32)" in rejected.text


def test_the_provider_reviews_and_supplies_an_active_grant(governed: Console) -> None:
    c, rid = governed.client, request_id(governed)
    with governed.app.state.engine.begin() as conn:
        create_account(conn, "provider2", {"provider"}, actor="test")
        governed.tokens["provider2"] = issue_token(conn, "provider2", actor="test")
    csrf = governed.login("provider")
    assert forms_of(c.get("/console/requests").text) == []  # formal review is not theirs
    formal_pass(governed, rid)
    assert forms_of(c.get("/console/requests").text) == ["provider", "extend"]
    missing = c.post(f"/console/requests/{rid}/provider-review", data={"decision": "approve"})
    assert missing.status_code == 403 and "表单已过期" in missing.text
    # Another provider and an operator see the state only; forged POSTs are refused.
    for who in ("provider2", "operator"):
        other = governed.login(who)
        seen = c.get("/console/requests")
        assert forms_of(seen.text) == [] and 'class="decision"' not in seen.text, who
        forged = c.post(f"/console/requests/{rid}/provider-review",
                        data={"csrf": other, "decision": "approve"})  # fmt: skip
        assert forged.status_code == 403 and "Traceback" not in forged.text, who
        supply = c.post(f"/console/requests/{rid}/supply", data={"csrf": other})
        assert supply.status_code == 403, who
    assert state_of(governed, rid) == State.FORMAL_REVIEW_PASSED
    csrf = governed.login("provider")
    approved = c.post(f"/console/requests/{rid}/provider-review",
                      data={"csrf": csrf, "decision": "approve"})  # fmt: skip
    assert approved.status_code == 200 and forms_of(approved.text) == ["supply", "provide"]
    assert 'name="days" value="365"' in approved.text
    bad_term = c.post(f"/console/requests/{rid}/supply", data={"csrf": csrf, "days": "-3"})
    assert bad_term.status_code == 422 and "正整数" in bad_term.text
    too_long = c.post(f"/console/requests/{rid}/supply", data={"csrf": csrf, "days": "5000"})
    assert too_long.status_code == 422 and "at most" in too_long.text  # the grant service's
    supplied = c.post(f"/console/requests/{rid}/supply", data={"csrf": csrf, "days": "30"})
    assert supplied.status_code == 200 and "已创建授权" in supplied.text
    with governed.app.state.engine.connect() as conn:
        record = request_service(governed.app).get(conn, rid)
        assert record.state == State.SUPPLIED and record.grant_id
        grant = grant_service(governed.app).get(conn, record.grant_id)
    assert grant.state == GrantState.ACTIVE and grant.operator == "operator"
    term = grant.valid_until - datetime.now(UTC)
    assert timedelta(days=29) < term <= timedelta(days=30)
    again = c.post(f"/console/requests/{rid}/supply", data={"csrf": csrf, "days": "30"})
    assert again.status_code == 409 and 'id="request-problem"' in again.text


def test_the_administrator_stops_a_dataset_and_others_cannot(governed: Console) -> None:
    c = governed.client
    csrf = governed.login("provider")
    page = c.get("/console/datasets")
    assert "emergency-stop" not in page.text and 'id="stop-warning"' not in page.text
    refused = c.post("/console/datasets/residents/emergency-stop",
                     data={"csrf": csrf, "reason": "leak", "confirm": "yes"})  # fmt: skip
    assert refused.status_code == 403
    csrf = governed.login("admin")
    page = c.get("/console/datasets")
    assert 'id="stop-warning"' in page.text and 'data-action="emergency-stop"' in page.text
    url = "/console/datasets/residents/emergency-stop"
    unconfirmed = c.post(url, data={"csrf": csrf, "reason": "leak"})
    assert unconfirmed.status_code == 422 and 'id="stop-problem"' in unconfirmed.text
    no_csrf = c.post(url, data={"reason": "leak", "confirm": "yes"})
    assert no_csrf.status_code == 403
    unknown = c.post("/console/datasets/nothing/emergency-stop",
                     data={"csrf": csrf, "reason": "leak", "confirm": "yes"})  # fmt: skip
    assert unknown.status_code == 404
    done = c.post(url, data={"csrf": csrf, "reason": "leak", "confirm": "yes"})
    assert done.status_code == 200 and 'data-count="1"' in done.text
    assert "暂停了 1 项授权" in done.text
    with governed.app.state.engine.connect() as conn:
        (grant,) = grant_service(governed.app).find(conn, datasets=["residents"])
    assert grant.state == GrantState.SUSPENDED and "leak" in (grant.state_reason or "")
    (event,) = [e for e in governed.events("grant.state") if e["to"] == "suspended"]
    assert event["actor"] == "admin"


def test_unknown_console_paths_and_methods_are_console_pages(governed: Console) -> None:
    c = governed.client
    anonymous = c.get("/console/anything-else")
    assert anonymous.status_code == 404
    assert anonymous.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in anonymous.text and "找不到该对象" in anonymous.text
    assert 'id="error-message"' in anonymous.text
    assert anonymous.headers["x-frame-options"] == "DENY"
    governed.login("admin")
    english = c.get("/console/requests/r-1/nothing?lang=en")
    assert english.status_code == 404 and '<html lang="en">' in english.text
    assert "Not found." in english.text
    wrong = c.get("/console/logout")
    assert wrong.status_code == 405 and "POST" in wrong.headers["allow"]
    assert "不支持该请求方式" not in wrong.text and "does not accept" in wrong.text
    api = c.get("/v1/nothing").json()  # the API stays JSON, with a reference for support
    assert api["detail"] == "Not Found" and api["reference"].startswith("ref-")
