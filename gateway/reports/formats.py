"""A report laid out: JSON, CSV, HTML and PDF, all from the one :class:`Report`.

- JSON: ``{"kind", "subject", "period": {"label", "start", "end"}, "generated_at",
  "basis", "summary", "sections": {name: [row objects]}}`` (times ISO 8601 UTC).
- CSV: one file per report, UTF-8 with a BOM (Excel then reads the Chinese right). The
  first column, ``section``, names the section a line belongs to (``summary`` first:
  ``item``/``value`` lines); the other columns are every section's columns in order of
  first use, empty where a section has none. Filter on ``section`` to get one table.
- HTML: ``templates/report.html``: ``<html lang>``, one ``h1``, a ``<caption>`` and
  ``<th scope="col">`` on every table, a chart (inline SVG) above the sections that have
  one; the print stylesheet of ``gateway.reports.render``. In ``zh-CN`` or ``en``.
- PDF: that HTML through WeasyPrint (A4, numbered pages, the CJK font embedded), each
  chart as an ``<img>`` of the same SVG (WeasyPrint draws it as vectors).
"""

from __future__ import annotations

import base64
import csv
import io
import json
from functools import partial
from pathlib import Path
from typing import Any, Literal

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from gateway.reports.messages import translate, value_text
from gateway.reports.model import Report, Section
from gateway.reports.render import chart, html_to_pdf, stylesheet

Format = Literal["json", "csv", "html", "pdf"]
FORMATS: tuple[Format, ...] = ("json", "csv", "html", "pdf")
MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
}

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def as_json(report: Report) -> dict[str, Any]:
    return {
        "kind": report.kind,
        "subject": report.subject,
        "period": {
            "label": report.period.label,
            "start": report.period.start.isoformat(),
            "end": report.period.end.isoformat(),
        },
        "generated_at": report.generated_at.isoformat(),
        "basis": list(report.basis),
        "summary": dict(report.summary),
        "sections": {s.name: s.records() for s in report.sections},
    }


def as_csv(report: Report) -> bytes:
    """See the module docstring: one table, ``section`` first."""
    summary = Section("summary", ("item", "value"), tuple(report.summary.items()))
    sections = (summary, *report.sections)
    columns: list[str] = ["section"]
    for s in sections:
        columns += [c for c in s.columns if c not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    for s in sections:
        for record in s.records():
            writer.writerow({"section": s.name, **record})
    return out.getvalue().encode("utf-8-sig")


def _numeric(s: Section) -> list[bool]:
    """Per column: every cell a number (right-aligned)."""
    return [
        bool(s.rows) and all(isinstance(r[i], int | float) for r in s.rows)
        for i in range(len(s.columns))
    ]


def as_html(report: Report, lang: str, *, inline_svg: bool = True) -> str:
    """The report as a page; charts as inline ``<svg>``, or (``inline_svg`` false, for
    WeasyPrint) as ``<img>`` of the same SVG, which it draws without reading the SVG's
    styles as the page's."""
    t, v = partial(translate, lang), partial(value_text, lang)
    charts = {}
    for s in report.sections:
        if s.chart and s.rows:
            data = {v(k): {v(c): n for c, n in line.items()} for k, line in s.chart_data().items()}
            title = t(f"section.{s.name}")
            svg = chart(s.chart.kind, data, title=title, lang=lang)
            charts[s.name] = svg if inline_svg else _img(svg, title)
    return _templates.get_template("report.html").render(
        report=report,
        lang=lang,
        title=t(f"report.{report.kind}"),
        generated=report.generated_at.strftime("%Y-%m-%d %H:%M UTC"),
        css=stylesheet(),
        charts=charts,
        numeric={s.name: _numeric(s) for s in report.sections},
        t=t,
        v=v,
    )


def _img(svg: str, title: str) -> Markup:
    data = base64.b64encode(svg.encode()).decode()
    return Markup('<img src="data:image/svg+xml;base64,{}" alt="{}">').format(data, title)


def rendered(report: Report, format: Format, lang: str) -> bytes:
    """The report's bytes in ``format`` (JSON as UTF-8 text)."""
    if format == "json":
        return json.dumps(as_json(report), ensure_ascii=False, indent=1).encode()
    if format == "csv":
        return as_csv(report)
    if format == "html":
        return as_html(report, lang).encode()
    return html_to_pdf(as_html(report, lang, inline_svg=False))
