"""The web console in a real browser (Debian's Chromium, driven by Playwright) against a
served gateway: real containers run the jobs, reviewers and providers click through.

A reviewer signs in, opens a held output, sees its finding marked and approves it; a
blocked output shows the offending cell highlighted, one reviewer's approval leaves it
blocked, a second reviewer completes the override; a provider changes a policy and
sees the diff, then approves a data request; the language switch works; an auditor
verifies the chain. Screenshots go to ``var/test-artifacts/console/`` (git-ignored).

The machine may be loaded (other test runs share its cores and its engine): every
step waits for the condition it needs (a URL, an element, a text, an attribute;
Playwright's ``expect``), never for a fixed time, with generous timeouts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sandbox.synthetic import demo
from tests.support.engine import ROOT, require_engine
from tests.support.live import (
    LiveGateway,
    apply_policy,
    request_grant,
    submit,
    upload_dataset,
    wait,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 120_000  # for each wait on a condition; a loaded machine needs room
ARTIFACTS = ROOT / "var" / "test-artifacts" / "console"
PY_HEAD = "from sandbox.sdk import connect, publish_table\ncon = connect()\n"
# Held: a clean Python table, reviewed because the policy auto-releases SQL only.
PY_HELD = PY_HEAD + (
    'df = con.sql("SELECT district_code, count(*) AS n FROM residents GROUP BY 1").df()\n'
    'publish_table("districts.csv", df, group_by=["district_code"], measures=[], count="n")\n'
)
# Blocked: one pseudonymous person id per district leaks into a cell of each row.
PY_LEAK = PY_HEAD + (
    'df = con.sql("SELECT district_code, count(*) AS n, min(person_id) AS example '
    'FROM residents GROUP BY 1 ORDER BY 1").df()\n'
    'publish_table("examples.csv", df, group_by=["district_code"], measures=["example"],\n'
    '              count="n")\n'
)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _browser_problem() -> str | None:
    if not CHROMIUM.exists():
        return "Chromium is not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing (pip install -e '.[dev]')"
    return None


@dataclass
class World:
    gateway: LiveGateway
    held: str
    blocked: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    problem = _browser_problem()
    if problem is not None:
        if _in_ci():
            pytest.fail(f"CI needs the browser: {problem}", pytrace=False)
        pytest.skip(problem)
    require_engine()
    base = tmp_path_factory.mktemp("console")
    base.chmod(0o755)
    gw = LiveGateway(base / "var")
    for name, *roles in (
        ("city-bureau", "provider"),
        ("op-1", "operator", "reviewer"),  # submits, so may never review these jobs
        ("admin-1", "admin"),
        ("rev-1", "reviewer"),
        ("rev-2", "reviewer"),
        ("auditor-1", "auditor"),
    ):
        gw.account(name, *roles)
    gw.start()
    try:
        provider, operator = gw.client("city-bureau"), gw.client("op-1")
        paths = demo.generate_city(base / "src", residents=2000, enterprises=100, seed=5)
        upload_dataset(provider, paths["residents"], "residents")
        apply_policy(provider, "residents")
        columns = ["person_id", "district_code", "gender"]
        grant = request_grant(operator, gw.client("admin-1"), provider, [("residents", columns)])
        held, blocked = (submit(operator, grant, "python", c) for c in (PY_HELD, PY_LEAK))
        assert wait(operator, held)["state"] == "held"
        done = wait(operator, blocked)
        assert done["state"] == "blocked", done
        # The operator is told the rule and the output by position; "example" is a
        # column the job named, not a view column, so it is not repeated back.
        assert {(f["rule"], f["output"], f["column"]) for f in done["findings"]} >= {
            ("identifier_leakage", 1, None)
        }, done["findings"]
        yield World(gw, held, blocked)
    finally:
        gw.stop()


def expect(target: Any) -> Any:
    """Playwright's ``expect``: retries its assertion until it holds (or ``TIMEOUT_MS``)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


@pytest.fixture(scope="module")
def browser(world: World) -> Iterator[Any]:
    from playwright.sync_api import expect as playwright_expect
    from playwright.sync_api import sync_playwright

    playwright_expect.set_options(timeout=TIMEOUT_MS)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-background-networking"],
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    """Pages in fresh browser contexts (each its own cookie jar), closed after the test."""
    contexts = []

    def make() -> Any:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def sign_in(page: Any, world: World, who: str, target: str = "/console/") -> None:
    page.goto(f"{world.gateway.base}/console/login?next={target}")
    page.fill("#token", world.gateway.tokens[who])
    page.click("#login-submit")
    page.wait_for_url(f"{world.gateway.base}{target}")


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_a_reviewer_approves_a_held_output(world: World, new_page: Any) -> None:
    page = new_page()
    sign_in(page, world, "rev-1", "/console/reviews")
    queue = page.locator("#review-queue")
    assert queue.locator(f'tr[data-job="{world.held}"]').count() == 1
    assert queue.locator(f'tr[data-job="{world.blocked}"]').count() == 1
    shot(page, "01-review-queue")
    queue.locator(f'tr[data-job="{world.held}"] a').click()
    page.wait_for_url(f"**/console/reviews/{world.held}")
    output = page.locator('section.output[data-file="districts.csv"]')
    # The finding names the whole file: the file is marked and the finding is beside it.
    assert output.locator(".content.hl-file.hl-REVIEW").count() == 1
    assert output.locator('li.finding[data-rule="auto_release"]').is_visible()
    assert output.locator("table.data tbody tr").count() >= 5
    assert "一名审核员批准即可放行" in page.locator("#review-rule").inner_text()
    shot(page, "02-held-output")
    page.check("#decision-approve")
    page.fill("#reason", "区县人数统计, 每格均超过 k")
    page.click("#vote-submit")
    page.wait_for_url("**/console/reviews?voted=*")
    notice = page.locator("#vote-notice").inner_text()
    assert world.held in notice and "已放行" in notice and "1/1" in notice
    assert page.locator(f'tr[data-job="{world.held}"]').count() == 0


def test_a_blocked_output_shows_the_cell_and_needs_a_second_reviewer(
    world: World, new_page: Any
) -> None:
    first = new_page()
    sign_in(first, world, "rev-1", f"/console/reviews/{world.blocked}")
    cell = first.locator(
        'section.output[data-file="examples.csv"] td.hl.hl-FAIL[data-column="example"]'
    ).first
    assert cell.is_visible()
    assert cell.get_attribute("data-row") is not None
    assert "identifier_leakage" in (cell.get_attribute("title") or "")
    neighbour = first.locator('td[data-column="district_code"]').first
    assert "hl" not in (neighbour.get_attribute("class") or "")
    finding = first.locator('li.finding[data-rule="identifier_leakage"]').first
    assert finding.is_visible() and "列 example" in finding.inner_text()
    assert "两名不同的审核员" in first.locator("#review-rule").inner_text()
    assert "0/2" in first.locator("#approvals").inner_text()
    shot(first, "03-blocked-output")
    first.check("#decision-approve")
    first.fill("#reason", "an override: the pseudonyms are keyed per grant")
    first.click("#vote-submit")
    first.wait_for_url("**/console/reviews?voted=*")
    notice = first.locator("#vote-notice").inner_text()
    assert "已拦截" in notice and "1/2" in notice
    first.goto(f"{world.gateway.base}/console/reviews/{world.blocked}")
    assert first.locator("#already-voted").is_visible()
    assert first.locator("#vote-form").count() == 0
    assert "1/2" in first.locator("#approvals").inner_text()
    assert "rev-1" in first.locator("#votes").inner_text()

    second = new_page()
    sign_in(second, world, "rev-2", f"/console/reviews/{world.blocked}")
    assert second.locator('#votes li[data-reviewer="rev-1"]').is_visible()
    assert "还需要 1 个批准" in second.locator("#still-needed").inner_text()
    shot(second, "04-second-reviewer")
    second.check("#decision-approve")
    second.fill("#reason", "同意 rev-1 的判断: 假名按授权加密, 无法还原")
    second.click("#vote-submit")
    second.wait_for_url("**/console/reviews?voted=*")
    notice = second.locator("#vote-notice").inner_text()
    assert "已放行" in notice and "2/2" in notice
    job = world.gateway.client("op-1").get(f"/v1/jobs/{world.blocked}").json()
    assert job["state"] == "released" and job["outcome"] == "review_approved", job


def test_nobody_reviews_their_own_job(world: World, new_page: Any) -> None:
    page = new_page()
    sign_in(page, world, "op-1", "/console/reviews")
    assert page.locator("#own-hidden").is_visible()
    assert page.locator("#review-queue").count() == 0
    response = page.goto(f"{world.gateway.base}/console/reviews/{world.blocked}")
    assert response is not None and response.status == 403
    assert "cannot review it" in page.locator("#error-detail").inner_text()
    assert page.locator("table.data").count() == 0


def test_a_provider_changes_a_policy_and_sees_the_diff(world: World, new_page: Any) -> None:
    page = new_page()
    sign_in(page, world, "city-bureau", "/console/datasets")
    page.click('tr[data-dataset="residents"] a')
    page.wait_for_url("**/console/datasets/residents")
    text = page.input_value("#policy-text")
    assert "k: 10 " in text
    page.fill("#policy-text", text.replace("k: 10 ", "k: 12 "))
    page.click("#policy-submit")
    page.wait_for_selector("#diff")
    assert page.locator("#policy-applied").is_visible()
    assert "-k: 10" in page.locator("pre.diff span.del").all_inner_texts()[-1]
    assert "+k: 12" in page.locator("pre.diff span.add").all_inner_texts()[-1]
    assert page.locator("#policy-versions tbody tr").count() == 2
    shot(page, "05-policy-diff")
    # Comparing the other way round, through the version selectors.
    versions = page.locator("#policy-versions tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.version)"
    )
    page.select_option("#diff-from", versions[0])
    page.select_option("#diff-to", versions[1])
    page.click("#diff-submit")
    # The page before shows a diff too: wait for the one asked for.
    page.wait_for_url(re.compile(r"[?&]from="))
    expect(page.locator("pre.diff span.add", has_text="+k: 10")).to_have_count(1)
    # A data request past formal review waits for the provider, who approves it here.
    made = world.gateway.client("op-1").post("/v1/requests", json={
        "scenario": "gender-mix", "purpose": "p", "content": "c", "use": "u",
        "datasets": [{"dataset": "residents", "columns": ["gender"]}]})  # fmt: skip
    assert made.status_code == 201, made.text
    rid = made.json()["id"]
    passed = world.gateway.client("admin-1").post(f"/v1/requests/{rid}/formal-review",
                                                  json={"decision": "pass"})  # fmt: skip
    assert passed.status_code == 200, passed.text
    page.goto(f"{world.gateway.base}/console/requests")
    row = page.locator(f'tr[data-request="{rid}"]')
    assert row.count() == 1, page.content()[:4000]
    assert row.locator('button[data-action="approve"]').count() == 1, row.inner_html()
    row.locator('button[data-action="approve"]').click()
    page.wait_for_selector("#request-notice")
    assert page.locator(f'tr[data-request="{rid}"] form[data-step="supply"]').is_visible()


def test_the_language_switch(world: World, new_page: Any) -> None:
    page = new_page()
    html, h1 = page.locator("html"), page.locator("h1")
    page.goto(f"{world.gateway.base}/console/login")
    expect(html).to_have_attribute("lang", "zh-CN")
    expect(h1).to_have_text("登录")
    page.click("#lang-switch")
    page.wait_for_url("**lang=en")
    expect(html).to_have_attribute("lang", "en")
    expect(h1).to_have_text("Sign in")
    page.fill("#token", world.gateway.tokens["auditor-1"])
    page.click("#login-submit")
    page.wait_for_url(f"{world.gateway.base}/console/")
    expect(html).to_have_attribute("lang", "en")  # remembered in a cookie
    expect(page.locator("nav.menu a").first).to_have_text("Datasets and policies")
    page.click('nav.menu a[href="/console/audit/verify"]')
    page.wait_for_url("**/console/audit/verify")
    page.click("#verify-run")
    result = page.locator("#verify-result")  # only on the page the POST answers
    expect(result).to_have_attribute("data-ok", "true")
    expect(result).to_contain_text("The audit chain is intact.")
    shot(page, "06-audit-verify-en")
    page.click("#lang-switch")
    # The switch reloads the page: sign out only from the page it loads.
    expect(html).to_have_attribute("lang", "zh-CN")
    expect(h1).to_have_text("校验审计链")
    page.click("#logout")
    page.wait_for_url("**/console/login?notice=out")
    expect(page.locator(".notice")).to_have_text("您已退出登录。")
