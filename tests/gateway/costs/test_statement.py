"""An operator's statement (001 authorized-operation art. 34; 004 art. 28) over REST.

The JSON, CSV and PDF say the ledger's numbers: the CSV parses, its product and grant
rows sum to its total row, which is the JSON's and ``GET /v1/costs``'s; the PDF is an A4
document whose pages render (PNGs in ``var/test-artifacts/statements/``); every
generation is audited ``report.generated`` with the digest of the bytes served; an
operator reads its own statement only.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pypdfium2 as pdfium
import pytest

from tests.support.he_world import World
from tests.support.pricing_world import (
    GOVERNANCE,
    INDUSTRY,
    charge,
    get,
    metered_job,
    open_world,
    registered,
)
from tests.support.product_registration import MovableClock

START = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # a Monday, 10:00 CST
GB = 10**9
ARTIFACTS = Path(__file__).resolve().parents[3] / "var" / "test-artifacts" / "statements"


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(START)


@pytest.fixture
def world(store_url: str, tmp_path: Path, clock: MovableClock) -> Iterator[World]:
    yield from open_world(store_url, tmp_path, clock)


@pytest.fixture
def sqlite_world(tmp_path: Path, clock: MovableClock) -> Iterator[World]:
    """The PDFs depend on no store: rendered once, on SQLite (WeasyPrint takes a second)."""
    yield from open_world(f"sqlite:///{tmp_path / 'gateway.sqlite'}", tmp_path, clock)


def quarter(w: World, clock: MovableClock) -> None:
    """2026 Q1 of op-1: a guided product sold, a free one, a job that made no product."""
    sold = registered(w, job=metered_job(w, clock, cpu_seconds=4000, bytes_scanned=8 * GB,
                                         output_bytes=GB), **INDUSTRY,
                      price_class="guided", price_basis={"tariff_item": "district-report"},
                      name="企业纳税分档统计")  # fmt: skip
    registered(w, job=metered_job(w, clock, cpu_seconds=600), **GOVERNANCE,
               name="各区企业数量")  # fmt: skip
    metered_job(w, clock, cpu_seconds=90)
    assert charge(w, "op-1", sold["id"], quantity=3, reference="Q1-1").status_code == 201
    clock.now = datetime(2026, 4, 2, 2, 0, tzinfo=UTC)


def test_the_statement_says_the_ledgers_numbers_to_whom_may_read_it(
    world: World, clock: MovableClock
) -> None:
    w = world
    quarter(w, clock)
    path = "/v1/statements/op-1"
    ledger = get(w, "op-1", "/v1/costs", period="2026-Q1").json()["totals"]

    as_json = get(w, "op-1", path, period="2026-Q1")
    assert as_json.status_code == 200, as_json.text
    body = as_json.json()
    assert body["operator"] == "op-1" and body["period"] == "2026-Q1"
    assert len(body["products"]) == 2 and len(body["unattributed"]) == 1
    assert body["totals"]["cost_fen"] == ledger["cost_fen"]
    assert body["totals"]["revenue_fen"] == ledger["revenue_fen"] == 240_000
    for p in body["products"]:
        assert p["result_fen"] == p["revenue_fen"] - p["cost_fen"]

    as_csv = get(w, "auditor-1", path, period="2026-Q1", format="csv")
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert [r["section"] for r in rows] == ["product", "product", "unattributed", "total"]
    *parts, total = rows
    for column in ("cpu_fen", "scan_fen", "storage_fen", "cost_fen", "revenue_fen"):
        assert sum(int(r[column]) for r in parts) == int(total[column]), column
    assert int(total["cost_fen"]) == body["totals"]["cost_fen"]
    assert int(total["result_fen"]) == body["totals"]["result_fen"]
    assert "企业纳税分档统计" in {r["name"] for r in rows}

    assert get(w, "op-2", path, period="2026-Q1").status_code == 403
    assert get(w, "bank-1", path, period="2026-Q1").status_code == 403
    assert get(w, "admin-1", "/v1/statements/nobody", period="2026-Q1").status_code == 404
    assert get(w, "op-1", path, period="Q1").status_code == 422
    assert get(w, "op-1", path, period="2026", format="xml").status_code == 422
    own = get(w, "op-2", "/v1/statements/op-2", period="2026-Q1").json()
    assert own["products"] == [] and own["totals"]["cost_fen"] == 0

    events = w.events("report.generated")  # refusals generate nothing
    assert [(e["actor"], e["format"], e["operator"]) for e in events] == [
        ("op-1", "json", "op-1"), ("auditor-1", "csv", "op-1"), ("op-2", "json", "op-2"),
    ]  # fmt: skip
    served = [as_json.content, as_csv.content]
    digests = [hashlib.sha256(content).hexdigest() for content in served]
    assert [e["sha256"] for e in events[:2]] == digests
    assert {(e["kind"], e["period"]) for e in events} == {("statement", "2026-Q1")}


def test_the_statement_as_pdf_in_chinese_and_english(
    sqlite_world: World, clock: MovableClock
) -> None:
    w = sqlite_world
    quarter(w, clock)
    path = "/v1/statements/op-1"
    as_pdf = get(w, "admin-1", path, period="2026-Q1", format="pdf")
    assert as_pdf.status_code == 200 and as_pdf.headers["content-type"] == "application/pdf"
    assert as_pdf.content.startswith(b"%PDF")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    document = pdfium.PdfDocument(as_pdf.content)
    try:
        assert len(document) >= 1
        for n, page in enumerate(document, start=1):
            image = page.render(scale=1.4).to_pil()
            image.save(ARTIFACTS / f"op-1-2026-Q1-zh-{n}.png")
            low, high = image.convert("L").getextrema()
            assert high - low > 100, f"page {n} is blank"  # ink on white
        width, height = document[0].get_size()
        assert (round(width), round(height)) == (595, 842)  # A4 in points
        text = document[0].get_textpage().get_text_range()
        assert "运营机构成本收益报表" in text and "2,400.00" in text  # revenue, in yuan
        assert f"1 / {len(document)}" in text
    finally:
        document.close()

    english = get(w, "op-1", path, period="2026-Q1", format="pdf", lang="en")
    document = pdfium.PdfDocument(english.content)
    try:
        document[0].render(scale=1.4).to_pil().save(ARTIFACTS / "op-1-2026-Q1-en-1.png")
        assert "Operator statement" in document[0].get_textpage().get_text_range()
    finally:
        document.close()

    events = w.events("report.generated")
    assert [(e["actor"], e["format"]) for e in events] == [("admin-1", "pdf"), ("op-1", "pdf")]
    digests = [hashlib.sha256(r.content).hexdigest() for r in (as_pdf, english)]
    assert [e["sha256"] for e in events] == digests
