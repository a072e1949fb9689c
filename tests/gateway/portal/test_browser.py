"""The public portal in a real browser (Debian's Chromium, driven by Playwright) against a
served gateway (uvicorn in a thread, ``tests.support.served_gateway``) holding 2025 and
early 2026 (``tests.support.portal_world``). No Docker: nothing runs a job here.

Each page opens in Chinese without signing in, switches to English with the language
link, and is screenshotted full-page in both languages into
``var/test-artifacts/portal/`` (git-ignored); the year selector moves a page to another
year; the CSV link of the products downloads a file that Excel reads as UTF-8 (its BOM)
with the JSON's rows. Every wait is on a condition, never a fixed time.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.engine import ROOT
from tests.support.portal_world import PortalWorld, build_world
from tests.support.served_gateway import serve

pytestmark = [pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 60_000
ARTIFACTS = ROOT / "var" / "test-artifacts" / "portal"
PAGES = {"index": "/portal/", "products": "/portal/products", "grants": "/portal/grants",
         "usage": "/portal/usage"}  # fmt: skip


def _browser_problem() -> str | None:
    if not CHROMIUM.exists():
        return "Chromium is not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing (pip install -e '.[dev]')"
    return None


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PortalWorld, str]]:
    problem = _browser_problem()
    if problem is not None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI needs the browser: {problem}", pytrace=False)
        pytest.skip(problem)
    base = tmp_path_factory.mktemp("portal-browser")
    world = build_world(f"sqlite:///{base / 'gateway.sqlite'}", base)
    try:
        with serve(world.w.app) as url:
            yield world, url
    finally:
        world.w.app.state.engine.dispose()


@pytest.fixture(scope="module")
def page(served: tuple[PortalWorld, str]) -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-background-networking"],
        )
        try:
            context = chromium.new_context(viewport={"width": 1400, "height": 900})
            context.set_default_timeout(TIMEOUT_MS)
            yield context.new_page()
            assert context.cookies() == []  # the portal set none
        finally:
            chromium.close()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_every_page_in_chinese_then_english(served: tuple[PortalWorld, str], page: Any) -> None:
    from playwright.sync_api import expect

    world, url = served
    for name, path in PAGES.items():
        page.goto(f"{url}{path}?year=2025")
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        expect(page.locator("h1")).to_have_count(1)
        assert page.locator("select#year option[selected]").inner_text() == "2025"
        shot(page, f"{name}-zh-CN")
        page.click("#lang-switch")
        page.wait_for_url(f"**{path}?year=2025&lang=en")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator("#lang-switch")).to_have_text("中文")
        shot(page, f"{name}-en")
    # The products page in English names both classes and a price in yuan.
    page.goto(f"{url}/portal/products?year=2025&lang=en")
    expect(page.locator("#products-industry_development caption")).to_contain_text(
        "Industry and sector development"
    )
    expect(page.locator("#products-industry_development")).to_contain_text("CNY 2.75 per 次")
    revoked = world.made.products["revoked"]
    expect(page.locator(f'tr[data-product="{revoked}"]')).to_contain_text("Revoked")


def test_the_year_selector_moves_the_page(served: tuple[PortalWorld, str], page: Any) -> None:
    from playwright.sync_api import expect

    world, url = served
    page.goto(f"{url}/portal/grants?year=2025")
    gone = world.made.grants["revoked_grant"]
    expect(page.locator(f'tr[data-grant="{gone}"]')).to_contain_text("已撤销")
    page.select_option("#year", "2026")
    page.click("#year-submit")
    page.wait_for_url("**/portal/grants?year=2026&lang=zh-CN")
    expect(page.locator(f'tr[data-grant="{world.made.grants["g2026"]}"]')).to_have_count(1)
    expect(page.locator(f'tr[data-grant="{gone}"]')).to_have_count(0)
    shot(page, "grants-2026-zh-CN")


def test_the_csv_link_downloads_what_the_json_lists(
    served: tuple[PortalWorld, str], page: Any
) -> None:
    world, url = served
    page.goto(f"{url}/portal/products?year=2025")
    with page.expect_download() as download:
        page.click("#products-csv")
    content = Path(download.value.path()).read_bytes()
    assert download.value.suggested_filename == "products-2025.csv"
    assert content.startswith(b"\xef\xbb\xbf")
    header, *lines = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    listed = world.get("/v1/public/products", year=2025).json()["items"]
    assert header == list(listed[0])
    assert [line[0] for line in lines] == [p["id"] for p in listed]
