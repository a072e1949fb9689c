"""The public portal over HTTP, anonymously (001 authorized-operation art. 24-26; 004
art. 30): pages and open data of a store that saw 2025 and early 2026
(``tests.support.portal_world``; the store itself is tested on both backends in
``tests/gateway/disclosure``, so one SQLite world serves this module).

Every page answers without a token in Chinese and English, sets no cookie, and has
accessible markup; products show in their two classes with their price in words;
a refused or pending registration, a product revoked before the year and a grant
outside the year do not show; the JSON and the CSV of each table hold the same rows;
a bad year is a 422; the data routes are public and in the OpenAPI document, the pages
are not.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest

from tests.support.access import PORTAL
from tests.support.markup import problems
from tests.support.portal_world import ORGANISATION, PortalWorld, make_world

PAGES = ("/portal/", "/portal/products", "/portal/grants", "/portal/usage")
TABLES = ("products", "grants", "usage")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalWorld]:
    base = tmp_path_factory.mktemp("portal")
    yield from make_world(f"sqlite:///{base / 'gateway.sqlite'}", base)


def test_every_page_answers_anyone_in_both_languages_with_accessible_markup(
    world: PortalWorld,
) -> None:
    for path in PAGES:
        for lang in ("zh-CN", "en"):
            params = {"year": "2025"} | ({"lang": "en"} if lang == "en" else {})
            page = world.get(path, **params)
            assert page.status_code == 200, (path, lang, page.text)
            assert "set-cookie" not in page.headers
            assert page.headers["cache-control"] == "public, max-age=300"
            assert "default-src 'none'" in page.headers["content-security-policy"]
            assert problems(page.text, lang) == [], (path, lang)
            # The language switch leads to the same page and year in the other language.
            other = "zh-CN" if lang == "en" else "en"
            assert f'href="{path}?year=2025&amp;lang={other}"' in page.text
    assert "公共数据授权运营公开信息" in world.get("/portal/").text
    assert "Public information" in world.get("/portal/", lang="en").text
    # Not a console page: no sign-in asked, nothing of the console's navigation.
    assert "/console/login" not in world.get("/portal/").text


def test_products_in_their_two_classes_with_the_price_in_words(world: PortalWorld) -> None:
    made = world.made
    page = world.get("/portal/products", year="2025").text
    governance, industry = page.split('id="products-public_governance"')[1].split(
        'id="products-industry_development"'
    )
    assert f'data-product="{made.products["governance"]}"' in governance
    assert "有条件无偿：仅限政府部门用于公共服务" in governance
    assert f'data-product="{made.products["revoked"]}"' in governance and "已撤销" in governance
    assert "政府指导价：verification，1.20 元/次" in industry
    assert "成本加合理利润：2.75 元/次（利润率 10%）" in industry
    assert ORGANISATION in industry and made.products["governance"] not in industry
    for absent in ("refused product", "pending product"):
        assert absent not in page
    english = world.get("/portal/products", year="2025", lang="en").text
    assert "Government-guided price: verification, CNY 1.20 per 次" in english
    assert "Cost plus a reasonable profit: CNY 2.75 per 次 (margin 10%)" in english
    assert "Conditionally free: 仅限政府部门用于公共服务" in english
    # Revoked in June 2025: not a product of 2026.
    later = world.get("/portal/products", year="2026").text
    assert made.products["revoked"] not in later and made.products["guided"] in later


def test_grants_shown_are_those_of_the_year(world: PortalWorld) -> None:
    made = world.made
    ids = {
        year: {g["id"] for g in world.get("/v1/public/grants", year=year).json()["items"]}
        for year in (2024, 2025, 2026)
    }
    assert ids == {
        2024: set(),
        2025: {made.grants["g2025"], made.grants["revoked_grant"]},
        2026: {made.grants["g2025"], made.grants["g2026"]},
    }
    page = world.get("/portal/grants", year="2025").text
    assert "已撤销（2025-06-16）" in page and "试点核验" in page and "企业信用评估" not in page
    assert "<strong>firms</strong>: annual_tax" in page
    usage = world.get("/v1/public/usage", year="2025").json()["items"]
    assert [(u["grantee"], u["jobs"], u["released"], u["products"]) for u in usage] == [
        ("op-2", 0, 0, 0),
        (ORGANISATION, 6, 6, 4),
    ]


def test_json_and_csv_hold_the_same_rows(world: PortalWorld) -> None:
    for table in TABLES:
        as_json = world.get(f"/v1/public/{table}", year="2025")
        assert as_json.status_code == 200 and as_json.headers["cache-control"].startswith("public")
        body = as_json.json()
        assert body["year"] == 2025 and body["items"], table
        as_csv = world.get(f"/v1/public/{table}", year="2025", format="csv")
        assert as_csv.status_code == 200
        assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
        assert as_csv.headers["content-disposition"] == f'attachment; filename="{table}-2025.csv"'
        assert as_csv.content.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8
        header, *lines = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
        assert header == list(body["items"][0])
        assert len(lines) == len(body["items"])
        for line, item in zip(lines, body["items"], strict=True):
            row = dict(zip(header, line, strict=True))
            for key, value in item.items():
                if isinstance(value, str | int) and not isinstance(value, bool):
                    assert row[key] == str(value), (table, key)
                elif value is None:
                    assert row[key] == ""
    product = world.get("/v1/public/products", year="2025").json()["items"][0]
    assert product["registered_at"].endswith("+00:00")  # ISO 8601, UTC
    assert isinstance(product["datasets"], list) and isinstance(product["price_basis"], dict)


def test_a_bad_year_is_a_422_and_no_year_is_this_year(world: PortalWorld) -> None:
    for year in ("1999", "2201", "abc", "2025-Q1"):
        assert world.get("/v1/public/products", year=year).status_code == 422, year
        page = world.get("/portal/grants", year=year)
        assert page.status_code == 422 and "年度无效" in page.text, year
        assert problems(page.text, "zh-CN") == []
    assert world.get("/v1/public/usage", format="xml").status_code == 422
    # The clock stands in February 2026 (CST): that year is shown by default.
    assert world.get("/v1/public/grants").json()["year"] == 2026
    assert 'option value="2026" selected' in world.get("/portal/").text
    assert 'option value="2025"' in world.get("/portal/").text


def test_the_data_routes_are_public_and_documented_the_pages_are_not(world: PortalWorld) -> None:
    client, w = world.w.client, world.w
    for (method, path), allowed in PORTAL.items():
        assert allowed == "public"
        assert client.request(method, path).status_code == 200
        for who in ("op-1", "bank-1", "admin-1", "auditor-1", "provider-1"):
            assert client.request(method, path, headers=w.h(who)).status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {p for p in paths if p.startswith("/v1/public/")} == {p for _, p in PORTAL}
    assert not [p for p in paths if p.startswith("/portal")]
    css = world.get("/portal/static/portal.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
