"""The public portal over the seeded year (001 authorized-operation art. 24-25; 004
art. 30; 003): without signing in, the registered products in their two classes with
their price basis, the grantees with content, scope and term (the expired and the
terminated grant with their end), and the yearly usage; JSON and CSV say the same;
the HTML pages answer in Chinese and English; nothing names a data subject."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from gateway.workdays import CST
from tests.support.seeded_year import ORG_NAME, SeededYear, csv_rows

PAGES = ("/portal/", "/portal/products", "/portal/grants", "/portal/usage?year={year}")


def public(y: SeededYear, what: str, fmt: str = "json") -> Any:
    got = y.client.get(f"/v1/public/{what}", params={"year": y.expected.year, "format": fmt})
    assert got.status_code == 200, (what, fmt, got.text)
    return got


def items(y: SeededYear, what: str) -> list[dict[str, Any]]:
    body = public(y, what).json()
    assert body["year"] == y.expected.year
    return list(body["items"])


def test_the_products_in_their_two_classes_with_their_price_basis(year: SeededYear) -> None:
    e = year.expected
    shown = {p["id"]: p for p in items(year, "products")}
    assert sorted(shown) == sorted(p.id for p in e.products.values())
    for p in e.products.values():
        got = shown[p.id]
        assert (got["name"], got["category"]) == (p.name, p.category)
        assert got["operator"] == ORG_NAME[p.operator] and got["datasets"] == [p.dataset]
        assert got["price_class"] == p.price_class, got
        if p.price_class == "conditionally_free":
            assert got["price_basis"]["condition"] == p.price_basis["condition"]
        if p.price_class == "guided":
            assert got["price_basis"]["tariff_item"] == p.price_basis["tariff_item"]
    classes = Counter((p["category"], p["price_class"]) for p in shown.values())
    assert classes == Counter({("public_governance", "free"): 1,
                               ("public_governance", "conditionally_free"): 1,
                               ("industry_development", "guided"): 2,
                               ("industry_development", "cost_plus"): 1})  # fmt: skip
    rows = csv_rows(public(year, "products", "csv").text.lstrip("\ufeff"))
    assert {(r["id"], r["category"], r["price_class"]) for r in rows} == {
        (p["id"], p["category"], p["price_class"]) for p in shown.values()
    }


def test_the_grantees_with_content_scope_and_term(year: SeededYear) -> None:
    e = year.expected
    shown = {g["id"]: g for g in items(year, "grants")}
    assert sorted(shown) == sorted(g.id for g in e.grants.values())
    for g in e.grants.values():
        got = shown[g.id]
        assert got["grantee"] == ORG_NAME[g.operator]
        assert [[d, sorted(c)] for d, c in got["scopes"]] == [[g.dataset, sorted(g.columns)]]
        assert datetime.fromisoformat(got["valid_until"]) == g.valid_until
        if g.ended is None:
            assert got["ended_at"] is None and got["state"] == "active", got
        else:
            assert got["state"] == g.ended, got
            ended = datetime.fromisoformat(got["ended_at"]).astimezone(CST)
            assert (ended.year, ended.month) == (e.year, g.ended_month), got
    rows = csv_rows(public(year, "grants", "csv").text.lstrip("\ufeff"))
    assert {(r["id"], r["grantee"], r["state"]) for r in rows} == {
        (g["id"], g["grantee"], g["state"]) for g in shown.values()
    }


def test_the_yearly_usage_per_grantee_and_dataset(year: SeededYear) -> None:
    e = year.expected
    jobs = Counter((ORG_NAME[j.operator], j.dataset) for j in e.jobs)
    released = Counter((ORG_NAME[j.operator], j.dataset) for j in e.jobs if j.state == "released")
    grants = Counter((ORG_NAME[g.operator], g.dataset) for g in e.grants.values())
    products = Counter((ORG_NAME[p.operator], p.dataset) for p in e.products.values())
    shown = {(u["grantee"], u["dataset"]): u for u in items(year, "usage")}
    assert set(shown) == set(grants)
    for key, line in shown.items():
        assert line["provider"] == ORG_NAME[e.datasets[key[1]]]
        got = (line["grants"], line["jobs"], line["released"], line["products"])
        assert got == (grants[key], jobs[key], released[key], products[key]), (key, line)
    rows = csv_rows(public(year, "usage", "csv").text.lstrip("\ufeff"))
    assert {(r["grantee"], r["dataset"], int(r["jobs"])) for r in rows} == {
        (k[0], k[1], u["jobs"]) for k, u in shown.items()
    }


def test_the_pages_answer_without_signing_in_in_both_languages(year: SeededYear) -> None:
    e = year.expected
    for page in PAGES:
        url = page.format(year=e.year)
        for lang, marker in ((None, 'lang="zh-CN"'), ("en", 'lang="en"')):
            params = {"lang": lang} if lang else {}
            got = year.client.get(url, params=params)
            assert got.status_code == 200, (url, lang, got.text[:300])
            assert marker in got.text and "<h1" in got.text, (url, lang)
            if page != "/portal/":  # the lists are tables with a caption
                assert "<caption" in got.text, (url, lang)
    products = year.client.get("/portal/products").text
    assert all(p.name in products for p in e.products.values())
    grants = year.client.get("/portal/grants").text
    assert all(ORG_NAME[g.operator] in grants for g in e.grants.values())


def test_nothing_in_the_portal_names_a_data_subject(year: SeededYear) -> None:
    e = year.expected
    bodies = [year.client.get(page.format(year=e.year)).text for page in PAGES]
    bodies += [public(year, what, fmt).text for what in ("products", "grants", "usage")
               for fmt in ("json", "csv")]  # fmt: skip
    assert len(e.identifying) > 100
    for value in e.identifying:
        assert not any(value in body for body in bodies), value


def test_the_public_data_routes_are_in_the_openapi_without_security(year: SeededYear) -> None:
    spec = year.client.get("/openapi.json").json()
    for what in ("products", "grants", "usage"):
        route = spec["paths"][f"/v1/public/{what}"]["get"]
        assert not route.get("security"), what
    assert year.client.get("/metrics").status_code == 401  # the operations' metrics are not
