"""The web console without a browser: sign-in and sign-out, CSRF refusals, which role
opens which page, the message catalogue, escaping, headers, and the providers' forms
(policy diff, grant suspension) against a real store and registry."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from gateway.console.messages import CATALOGUES, EN, ZH
from gateway.console.pages import PAGES
from gateway.console.tables import marks_of, show
from gateway.identity import revoke_token
from gateway.workdays import CST, Calendar
from tests.support.city import POLICIES
from tests.support.console import BASE, ROLES, Console, csrf_of

CONSOLE = Path(__file__).resolve().parents[3] / "gateway" / "console"
# -- signing in and out ------------------------------------------------------------------


def test_sign_in_sets_a_strict_http_only_cookie_and_sign_out_ends_the_session(
    console: Console,
) -> None:
    c = console.client
    anonymous = c.get("/console/reviews", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/console/login?next=%2Fconsole%2Freviews"
    form = c.get(anonymous.headers["location"])
    assert form.status_code == 200 and 'name="next" value="/console/reviews"' in form.text
    done = c.post(
        "/console/login",
        data={"token": console.tokens["reviewer"], "csrf": csrf_of(form.text),
              "next": "/console/reviews"},
        follow_redirects=False,
    )  # fmt: skip
    assert done.status_code == 303 and done.headers["location"] == "/console/reviews"
    cookie = next(h for h in done.headers.get_list("set-cookie") if h.startswith("dsr_console="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert console.tokens["reviewer"] not in cookie  # the browser holds a session id only
    page = c.get("/console/reviews")
    assert page.status_code == 200 and "reviewer" in page.text
    out = c.post("/console/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/console/login?notice=out"
    c.cookies.set("dsr_console", cookie.split(";")[0].split("=", 1)[1], path="/console")
    assert c.get("/console/reviews", follow_redirects=False).status_code == 303


def test_a_wrong_token_is_refused_and_audited_without_its_secret(console: Console) -> None:
    c = console.client
    forged = console.tokens["admin"][:-4] + "AAAA"
    form = c.get("/console/login")
    refused = c.post("/console/login", data={"token": forged, "csrf": csrf_of(form.text)})
    assert refused.status_code == 401
    assert "令牌无效" in refused.text
    assert "dsr_console=" not in refused.headers.get("set-cookie", "")
    (event,) = console.events("auth.failed")
    assert event["token"] == forged.split("_")[1] and forged.split("_", 2)[2] not in str(event)


def test_only_console_pages_are_targets_after_sign_in(console: Console) -> None:
    c = console.client
    for target in ("https://evil.example/", "//evil.example/x", "/v1/me", "/console/../v1"):
        c.cookies.clear()
        form = c.get("/console/login")
        done = c.post(
            "/console/login",
            data={"token": console.tokens["auditor"], "csrf": csrf_of(form.text),
                  "next": target},
            follow_redirects=False,
        )  # fmt: skip
        assert done.headers["location"] == "/console/", target


def test_a_revoked_token_ends_its_sessions(console: Console) -> None:
    console.login("auditor")
    assert console.client.get("/console/audit/verify").status_code == 200
    token_id = console.tokens["auditor"].split("_")[1]
    with console.app.state.engine.begin() as conn:
        revoke_token(conn, token_id, actor="test")
    gone = console.client.get("/console/audit/verify", follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"].startswith("/console/login")


# -- CSRF --------------------------------------------------------------------------------


def test_forms_without_the_csrf_token_or_from_another_origin_are_refused(
    console: Console,
) -> None:
    c = console.client
    form = c.get("/console/login")
    # The sign-in form: the token must match the cookie set with the form.
    no_token = c.post("/console/login", data={"token": console.tokens["auditor"]})
    assert no_token.status_code == 403 and "dsr_console=" not in str(no_token.headers)
    foreign = c.post(
        "/console/login",
        data={"token": console.tokens["auditor"], "csrf": csrf_of(form.text)},
        headers={"Origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    csrf = console.login("auditor")
    for data, headers in (
        ({}, {}),
        ({"csrf": "x" * 43}, {}),
        ({"csrf": csrf}, {"Origin": "https://evil.example"}),
    ):
        refused = c.post("/console/audit/verify", data=data, headers=headers)
        assert refused.status_code == 403, refused.text
        assert "表单已过期或来源不符" in refused.text
        out = c.post("/console/logout", data=data, headers=headers, follow_redirects=False)
        assert out.status_code == 403
    assert console.events("audit.verified") == []
    ok = c.post("/console/audit/verify", data={"csrf": csrf}, headers={"Origin": BASE})
    assert ok.status_code == 200 and 'data-ok="true"' in ok.text
    (verified,) = console.events("audit.verified")
    assert verified["actor"] == "auditor" and verified["ok"] is True


# -- roles ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_each_role_opens_its_pages_and_gets_a_403_page_elsewhere(
    console: Console, role: str
) -> None:
    console.login(role)
    home = console.client.get("/console/")
    for name, (path, roles) in PAGES.items():
        got = console.client.get(path)
        assert got.headers["content-type"].startswith("text/html"), (role, path)
        if role in roles:
            assert got.status_code == 200, (role, path, got.text[:500])
            assert f'href="{path}"' in home.text, (role, name)
        else:
            assert got.status_code == 403, (role, path)
            assert "此页面需要以下角色之一" in got.text and "Traceback" not in got.text
            assert f'href="{path}"' not in home.text, (role, name)


# Form -> roles it serves; the others get a 403 page before anything is looked up.
FORMS = {
    "/console/requests/r-none/formal-review": {"admin"},
    "/console/requests/r-none/provider-review": {"provider"},
    "/console/requests/r-none/supply": {"admin", "provider"},
    "/console/datasets/none/emergency-stop": {"admin"},
    "/console/grants/g-none/suspend": {"operator", "provider", "admin"},
}


@pytest.mark.parametrize("role", ROLES)
def test_each_role_posts_its_forms_and_gets_a_403_page_elsewhere(
    console: Console, role: str
) -> None:
    csrf = console.login(role)
    data = {"csrf": csrf, "decision": "reject", "reason": "r", "legal_basis": "b",
            "days": "30", "confirm": "yes"}  # fmt: skip
    for path, roles in FORMS.items():
        got = console.client.post(path, data=data)
        assert got.headers["content-type"].startswith("text/html"), (role, path)
        # Those it serves reach the service, which knows no such object.
        assert got.status_code == (404 if role in roles else 403), (role, path, got.text[:500])


def test_unknown_objects_and_wrong_methods_are_pages_not_tracebacks(console: Console) -> None:
    console.login("reviewer")
    # No sandbox runtime in this app: the review service cannot serve the evidence.
    missing = console.client.get("/console/reviews/j-nothing")
    assert missing.status_code in (404, 503) and "<html" in missing.text
    console.login("provider")
    unknown = console.client.get("/console/datasets/nothing_here")
    assert unknown.status_code == 404 and "找不到该对象" in unknown.text
    bad = console.client.get("/console/datasets/BAD%00NAME")
    assert bad.status_code in (404, 422) and "<html" in bad.text


# -- language, escaping, headers -------------------------------------------------------------


def test_both_catalogues_have_every_key_and_every_key_used_exists() -> None:
    assert set(ZH) == set(EN) and all(ZH.values()) and all(EN.values())
    for lang, catalogue in CATALOGUES.items():
        for key, text in catalogue.items():
            fields = set(re.findall(r"{(\w+)}", text))
            assert fields == set(re.findall(r"{(\w+)}", ZH[key])), (lang, key)
    used = set()
    keys = r'"((?:review|login|grants|datasets?|requests)\.[a-z_]+)"'  # keys passed in code
    for path in [*CONSOLE.glob("templates/*.html"), *CONSOLE.glob("*.py")]:
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_]+\.[A-Za-z_0-9. ]+)["']""", path.read_text()))
        used |= set(re.findall(keys, path.read_text()))
    missing = sorted(k for k in used if k not in ZH and not k.endswith(".html"))
    assert not missing and len(used) > 60, missing


def test_every_state_verdict_step_and_role_has_its_words() -> None:
    from gateway.grants.model import State as GrantState
    from gateway.jobs.model import State as JobState
    from gateway.requests.model import STEP
    from gateway.requests.model import State as RequestState
    from sandbox.judge.rules import Verdict

    keys = {f"state.{s.value}" for s in (*JobState, *GrantState, *RequestState)}
    keys |= {f"step.{s}" for s in STEP.values()} | {f"verdict.{v.value}" for v in Verdict}
    keys |= {f"role.{r}" for r in ROLES} | {f"nav.{n}" for n in PAGES}
    keys |= {"decision.approve", "decision.deny"}
    assert not sorted(keys - set(ZH))


def test_chinese_by_default_english_on_request_and_remembered(console: Console) -> None:
    c = console.client
    page = c.get("/console/login")
    assert '<html lang="zh-CN">' in page.text and "登录" in page.text
    english = c.get("/console/login?lang=en")
    assert '<html lang="en">' in english.text and "Sign in" in english.text
    assert "lang=en" in english.headers["set-cookie"]
    again = c.get("/console/login")
    assert '<html lang="en">' in again.text
    back = c.get("/console/login?lang=zh-CN")
    assert '<html lang="zh-CN">' in back.text
    ignored = c.get("/console/login?lang=xx")
    assert '<html lang="zh-CN">' in ignored.text


def test_values_are_escaped(console: Console) -> None:
    console.login("mallory")
    home = console.client.get("/console/")
    assert "<script>alert(1)</script>" not in home.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in home.text
    console.login("provider")
    quoted = console.client.get('/console/datasets/"><script>x</script>')
    assert "<script>x</script>" not in quoted.text


def test_security_headers_on_pages_errors_and_the_stylesheet(console: Console) -> None:
    c = console.client
    for response in (
        c.get("/console/login"),
        c.get("/console/grants", follow_redirects=False),
        c.get("/console/static/console.css"),
    ):
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
    assert c.get("/console/login").headers["cache-control"] == "no-store"
    css = c.get("/console/static/console.css").text
    assert "http:" not in css and "https:" not in css and "@import" not in css
    for template in CONSOLE.glob("templates/*.html"):
        text = template.read_text()
        assert "http://" not in text and "https://" not in text, template.name
        assert "|safe" not in text.replace(" ", "") and "autoescape false" not in text


def test_the_console_is_not_in_the_openapi_document(console: Console) -> None:
    paths = console.client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/console")]


# -- the review page's marks ---------------------------------------------------------------------


def test_findings_mark_cells_rows_columns_and_whole_files() -> None:
    findings = [
        {"rule": "identifier_leakage", "verdict": "FAIL", "file": "t.csv", "row": 1,
         "column": "b", "message": "m1"},
        {"rule": "min_aggregation", "verdict": "FAIL", "file": "t.csv", "row": 0,
         "column": None, "message": "m2"},
        {"rule": "sensitive_value", "verdict": "REVIEW", "file": "t.csv", "row": None,
         "column": "a", "message": "m3"},
        {"rule": "auto_release", "verdict": "REVIEW", "file": "t.csv", "row": None,
         "column": None, "message": "m4"},
        {"rule": "differencing", "verdict": "FAIL", "file": None, "row": None,
         "column": None, "message": "m5"},
    ]  # fmt: skip
    marks = marks_of(findings)
    table = show({"file": "t.csv", "sha256": "0" * 64, "encoding": "utf-8",
                  "content": "a,b\n1,x\n2,y\n"}, marks)  # fmt: skip
    assert table.kind == "table" and [h.value for h in table.header] == ["a", "b"]
    rules = [[sorted(m.rule for m in cell.marks) for cell in row] for row in table.rows]
    assert rules == [
        [["min_aggregation", "sensitive_value"], ["min_aggregation"]],
        [["sensitive_value"], ["identifier_leakage"]],
    ]
    assert [m.rule for m in table.header[0].marks] == ["sensitive_value"]
    assert [m.rule for m in table.whole] == ["auto_release"] and table.verdict == "REVIEW"
    binary = show({"file": "m.bin", "sha256": "1" * 64, "encoding": "base64",
                   "content": "AAEC"}, marks)  # fmt: skip
    assert binary.kind == "binary" and binary.text == ""


def test_working_days_left_counts_working_days_in_china_standard_time() -> None:
    # Monday 2026-11-23 09:00 CST; a 5-working-day deadline ends Monday 30th 24:00 CST.
    working_days_left = Calendar().working_days_left
    monday = datetime(2026, 11, 23, 9, 0, tzinfo=CST)
    due = datetime(2026, 12, 1, 0, 0, tzinfo=CST)
    assert working_days_left(due, monday) == 6  # today, Tue-Fri, next Monday
    assert working_days_left(due, datetime(2026, 11, 28, 12, tzinfo=CST)) == 1  # Saturday
    assert working_days_left(due, due) == 0
    assert working_days_left(due, due + timedelta(days=3)) == 0


# -- providers' forms ---------------------------------------------------------------------------


def test_a_provider_applies_a_policy_version_and_sees_the_diff(governed: Console) -> None:
    c = governed.client
    csrf = governed.login("provider")
    page = c.get("/console/datasets/residents")
    assert page.status_code == 200 and 'id="policy-form"' in page.text
    text = (POLICIES / "residents.yaml").read_text(encoding="utf-8")
    changed = text.replace("k: 10 ", "k: 15 ")
    assert changed != text
    bad = c.post("/console/datasets/residents/policy", data={"csrf": csrf, "text": "k: [1"})
    assert bad.status_code == 422 and 'id="policy-problems"' in bad.text
    done = c.post("/console/datasets/residents/policy", data={"csrf": csrf, "text": changed})
    assert done.status_code == 200 and 'id="policy-applied"' in done.text
    diff = re.search(r'<pre class="diff">(.*?)</pre>', done.text, re.S)
    assert diff is not None
    assert '<span class="del">-k: 10 ' in diff.group(1)
    assert '<span class="add">+k: 15 ' in diff.group(1)
    assert len(governed.events("policy.applied")) == 2
    # Another role reads the dataset but is not offered the form; applying is refused.
    csrf = governed.login("auditor")
    seen = c.get("/console/datasets/residents")
    assert seen.status_code == 200 and 'id="policy-form"' not in seen.text
    assert 'id="diff-form"' in seen.text
    refused = c.post("/console/datasets/residents/policy", data={"csrf": csrf, "text": text})
    assert refused.status_code == 403


def test_a_provider_suspends_and_resumes_a_grant_with_a_reason(governed: Console) -> None:
    c = governed.client
    csrf = governed.login("provider")
    page = c.get("/console/grants")
    assert "district &lt;b&gt;population&lt;/b&gt;" in page.text
    grant = re.search(r'data-grant="(g-[0-9a-f]+)"', page.text)
    assert grant is not None
    gid = grant.group(1)
    no_reason = c.post(f"/console/grants/{gid}/suspend", data={"csrf": csrf, "reason": " "})
    assert no_reason.status_code == 422
    done = c.post(f"/console/grants/{gid}/suspend", data={"csrf": csrf, "reason": "audit found"})
    assert done.status_code == 200 and 'id="grant-notice"' in done.text and "已暂停" in done.text
    again = c.post(f"/console/grants/{gid}/suspend", data={"csrf": csrf, "reason": "twice"})
    assert again.status_code == 409
    resumed = c.post(f"/console/grants/{gid}/resume", data={"csrf": csrf, "reason": "fixed"})
    assert resumed.status_code == 200 and 'data-action="suspend"' in resumed.text
    states = [e["to"] for e in governed.events("grant.state")]
    assert states == ["active", "suspended", "active"]
    # The operator sees the grant, with no action to take.
    csrf = governed.login("operator")
    mine = c.get("/console/grants")
    assert gid in mine.text and "data-action=" not in mine.text
    refused = c.post(f"/console/grants/{gid}/revoke", data={"csrf": csrf, "reason": "mine"})
    assert refused.status_code == 403


def test_requests_show_their_deadline_in_working_days(governed: Console) -> None:
    governed.login("provider")
    page = governed.client.get("/console/requests")
    assert page.status_code == 200 and "形式审查" in page.text
    assert re.search(r"剩余 \d+ 个工作日", page.text), page.text
    governed.login("admin")
    english = governed.client.get("/console/requests?lang=en")
    assert re.search(r"\d+ working day\(s\) left", english.text)


def test_audit_events_are_listed_and_the_listing_is_audited(governed: Console) -> None:
    governed.login("provider")
    page = governed.client.get("/console/audit/events")
    assert page.status_code == 200 and 'data-type="policy.applied"' in page.text
    assert 'data-type="account.created"' not in page.text  # not about the provider's data
    governed.login("auditor")
    everything = governed.client.get("/console/audit/events")
    assert 'data-type="account.created"' in everything.text
    scopes = [e["scope"] for e in governed.events("audit.exported")]
    assert scopes == ["provider", "all"]
