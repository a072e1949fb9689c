"""The renderer (``gateway.reports.render``): charts are deterministic SVG with their
own ids and every month of a period, drawn without touching matplotlib's global
settings, Chinese included; a missing CJK font is said once in the log and the charts
still draw; ``html_to_pdf`` makes numbered A4 pages with the Chinese text embedded."""

from __future__ import annotations

import logging
import re

import matplotlib
import pypdfium2 as pdfium
import pytest

from gateway.periods import Period
from gateway.reports import render
from gateway.reports.model import Chart, Section
from gateway.reports.trail import months

DATA = {"SQL 产品": {"2025-01": 3, "2025-02": 5}, "Python 作业": {"2025-01": 1, "2025-03": 2}}


def test_a_chart_is_the_same_svg_for_the_same_numbers() -> None:
    before = dict(matplotlib.rcParams)
    one = render.chart("stacked", DATA, title="每月作业", lang="zh-CN")
    assert one == render.chart("stacked", DATA, title="每月作业", lang="zh-CN")
    assert dict(matplotlib.rcParams) == before  # nothing global changed
    assert one.startswith('<svg role="img" lang="zh-CN" ') and "<title>每月作业</title>" in one
    other = render.chart("bar", {"jobs": {"people": 4}}, title="jobs", lang="en")
    ids = re.findall(r'\bid="([^"]+)"', one)
    assert ids and not set(ids) & set(re.findall(r'\bid="([^"]+)"', other))
    referenced = set(re.findall(r'(?:"#|\(#)([^")]+)', one))
    assert referenced <= set(ids)  # every reference renamed with its target


def test_a_missing_cjk_font_is_logged_and_the_chart_still_draws(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(render, "CJK_FONT", render.Path("/nonexistent/wqy-microhei.ttc"))
    render.cjk_font.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="dsr.reports"):
            # Latin only: without the font, matplotlib warns of every CJK glyph it lacks.
            latin = {"sql": {"2025-01": 3}, "python": {"2025-02": 1}}
            svg = render.chart("line", latin, title="jobs", lang="en")
            render.chart("bar", latin, title="jobs", lang="en")
        assert svg.startswith("<svg")
        said = [r.getMessage() for r in caplog.records if r.name == "dsr.reports"]
        assert len(said) == 1 and "fonts-wqy-microhei" in said[0]
        assert render.font_face_css() == ""
    finally:
        render.cjk_font.cache_clear()


def test_html_becomes_numbered_a4_pages_with_chinese_text() -> None:
    rows = "".join(f"<tr><td>第 {i} 行</td></tr>" for i in range(90))
    html = (
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><style>'
        f"{render.stylesheet()}</style></head><body><h1>年度运营报告</h1>"
        f"<figure class=chart>{render.chart('bar', DATA, title='每月作业')}</figure>"
        f"<table><caption>作业</caption>{rows}</table></body></html>"
    )
    pdf = render.html_to_pdf(html)
    assert pdf.startswith(b"%PDF-")
    document = pdfium.PdfDocument(pdf)
    try:
        pages = len(document)
        assert pages >= 2
        for n, page in enumerate(document, start=1):
            assert tuple(round(x) for x in page.get_size()) == (595, 842)
            assert f"{n} / {pages}" in page.get_textpage().get_text_range()
        assert "年度运营报告" in document[0].get_textpage().get_text_range()
    finally:
        document.close()


def test_a_chart_shows_every_month_of_the_period_in_order() -> None:
    year = months(Period.parse("2025"))
    assert year[0] == "2025-01" and year[-1] == "2025-12" and len(year) == 12
    assert months(Period.parse("2024-12-15..2025-02-01")) == ("2024-12", "2025-01", "2025-02")
    rows = (("2025-03", "sql", 2), ("2025-01", "python", 1))
    chart = Chart("stacked", category="month", value="jobs", series="kind", categories=year)
    data = Section("jobs_by_month", ("month", "kind", "jobs"), rows, chart).chart_data()
    assert list(data["sql"]) == list(year) and data["sql"]["2025-03"] == 2
    assert data["sql"]["2025-07"] == 0 and data["python"] == {"2025-01": 1}
