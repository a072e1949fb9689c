"""The reports' formats from the gateway: JSON and CSV hold the same numbers, the CSV
parses (UTF-8 with a BOM, a ``section`` column), the HTML is accessible markup in
Chinese and English with inline SVG charts, and the PDF has A4 pages that render (their
PNGs go to ``var/test-artifacts/reports/``). No data value of the jobs' outputs shows."""

from __future__ import annotations

import csv
import io
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium

from gateway.reports.messages import EN, ZH
from tests.support.reports_world import History

OPERATOR = "/v1/reports/operator/operator-1"
ARTIFACTS = Path(__file__).resolve().parents[3] / "var" / "test-artifacts" / "reports"


def pages_to_png(document: pdfium.PdfDocument, name: str) -> list[Path]:
    """Every page as ``ARTIFACTS/name-N.png``; a page without ink fails."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, page in enumerate(document, start=1):
        image = page.render(scale=1.4).to_pil()
        low, high = image.convert("L").getextrema()
        assert low < high, f"page {n} of {name} is blank"
        paths.append(ARTIFACTS / f"{name}-{n}.png")
        image.save(paths[-1])
    return paths


def fetch(h: History, url: str, **params: Any) -> Any:
    answer = h.get("admin-1", url, period=h.period, **params)
    assert answer.status_code == 200, answer.text
    return answer


class Markup(HTMLParser):
    """What the accessibility checks look at: tags, attributes, headings' text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.h1: list[str] = []
        self._in_h1 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_h1 = self._in_h1 or tag == "h1"

    def handle_endtag(self, tag: str) -> None:
        self._in_h1 = self._in_h1 and tag != "h1"

    def handle_data(self, data: str) -> None:
        if self._in_h1:
            self.h1.append(data)

    def count(self, tag: str) -> int:
        return sum(t == tag for t, _ in self.tags)


def test_csv_has_the_json_numbers_under_a_section_column(sqlite_history: History) -> None:
    history = sqlite_history
    body = fetch(history, OPERATOR).json()
    answer = fetch(history, OPERATOR, format="csv")
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.content.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8 then
    lines = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
    summary = {r["item"]: int(r["value"]) for r in lines if r["section"] == "summary"}
    assert summary == body["summary"]
    for name, records in body["sections"].items():
        mine = [r for r in lines if r["section"] == name]
        assert len(mine) == len(records), name
        for line, record in zip(mine, records, strict=True):
            assert {k: line[k] for k in record} == {
                k: "" if v is None else str(v) for k, v in record.items()
            }, name


def test_html_is_accessible_in_both_languages_with_charts(sqlite_history: History) -> None:
    history = sqlite_history
    for lang, title in (("zh-CN", "年度运营报告"), ("en", "Annual operating report")):
        text = fetch(history, OPERATOR, format="html", lang=lang).text
        page = Markup()
        page.feed(text)
        assert page.tags[0] == ("html", {"lang": lang})
        assert page.count("h1") == 1 and title in "".join(page.h1)
        assert page.count("table") == page.count("caption") >= 5
        assert all(a.get("scope") in ("col", "row") for t, a in page.tags if t == "th")
        assert page.count("svg") >= 2  # jobs by month, data used per dataset
        svgs = [a for t, a in page.tags if t == "svg"]
        assert all(a.get("role") == "img" and a.get("lang") == lang for a in svgs)
    english = fetch(history, "/v1/reports/provider/provider-1", format="html", lang="en").text
    assert "Data usage report" in english and "operator-2" in english


def test_pdfs_render_page_by_page(sqlite_history: History) -> None:
    """Two PDFs (WeasyPrint takes about a second each): the operator's in Chinese, the
    provider's in English; every page A4 with its number, rendered to PNG."""
    history = sqlite_history
    for url, lang, name in (
        (OPERATOR, "zh-CN", "operator-zh"),
        ("/v1/reports/provider/provider-1", "en", "provider-en"),
    ):
        answer = fetch(history, url, format="pdf", lang=lang)
        assert answer.headers["content-type"] == "application/pdf"
        assert answer.content.startswith(b"%PDF-")
        document = pdfium.PdfDocument(answer.content)
        try:
            pngs = pages_to_png(document, name)
            pages = len(document)
            assert len(pngs) == pages >= 1
            width, height = document[0].get_size()
            assert (round(width), round(height)) == (595, 842)  # A4 in points
            text = document[0].get_textpage().get_text_range()
            assert f"1 / {pages}" in text
            assert ("年度运营报告" if lang == "zh-CN" else "Data usage report") in text
        finally:
            document.close()


def test_no_output_value_is_in_any_report(sqlite_history: History) -> None:
    """The reports carry metadata only: not one cell of the released outputs."""
    h = sqlite_history
    values = set()
    for job in h.expected["released_jobs"]:
        files = h.get("operator-1", f"/v1/jobs/{job}/outputs").json()["files"]
        for f in files:
            text = h.get("operator-1", f"/v1/jobs/{job}/outputs/{f['file']}").text
            values |= {cell.strip('"') for line in text.splitlines()[1:] for cell in
                       line.split(",")}  # fmt: skip
    distinctive = {v for v in values if len(v) >= 3 and not v.isdigit()}
    counts = {v for v in values if v.isdigit() and int(v) > 31}  # not a day or a small count
    assert distinctive | counts, values
    for url in (OPERATOR, "/v1/reports/provider/provider-1", "/v1/reports/disclosure"):
        for fmt in ("json", "csv", "html"):
            text = fetch(h, url, format=fmt).content.decode("utf-8-sig")
            leaked = {v for v in distinctive if v in text}
            leaked |= {v for v in counts if f">{v}<" in text or f'"{v}"' in text
                       or f",{v}," in text}  # fmt: skip
            assert not leaked, (url, fmt, leaked)


def test_every_word_of_every_report_is_in_both_catalogues(sqlite_history: History) -> None:
    assert set(ZH) == set(EN)
    for url in (OPERATOR, "/v1/reports/provider/provider-1", "/v1/reports/disclosure"):
        body = fetch(sqlite_history, url).json()
        keys = {f"report.{body['kind']}", f"label.source.{body['kind']}"}
        keys |= {f"summary.{k}" for k in body["summary"]}
        keys |= {f"section.{name}" for name in body["sections"]}
        keys |= {f"col.{c}" for records in body["sections"].values() for r in records for c in r}
        assert keys <= set(ZH), keys - set(ZH)
