"""Rendering a report: charts as inline SVG (matplotlib) and HTML as PDF (WeasyPrint).

The last stage of a report (after its model is built and laid out as HTML by
``gateway.reports.formats``). H2's operator statements use :func:`html_to_pdf` too.

Invariants:

- No global state: matplotlib runs on the Agg canvas through a ``Figure`` object of
  its own (never ``pyplot``), its settings only inside an ``rc_context``; the CJK font
  is a ``FontProperties`` built from the font file, handed to each text it draws.
- Chinese reads in both: the SVG carries its text as paths (no font needed where it
  is shown); the PDF embeds WenQuanYi Micro Hei (Debian's ``fonts-wqy-microhei``)
  through ``@font-face``. A missing font file is logged once, clearly, and the
  renderers fall back to the default fonts (Latin text still reads).
- Deterministic charts: a fixed SVG id salt and no date in the metadata, so the same
  numbers give the same bytes (a report's digest is reproducible).
- A4 pages, numbered "page / pages" at the foot; the print stylesheet
  (:data:`PRINT_CSS`) follows the console's colours and tables.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import matplotlib

matplotlib.use("Agg")  # no display, ever: set before anything draws

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import MaxNLocator

log = logging.getLogger("dsr.reports")

CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
CJK_FAMILY = "WenQuanYi Micro Hei"
PALETTE = ("#9b1c1c", "#1f4f9c", "#1e6b3a", "#8a5a00", "#5b6575", "#6b2e8f", "#0f7b7b")

ChartKind = Literal["bar", "stacked", "line"]

PRINT_CSS = """
@page {
  size: A4;
  margin: 18mm 16mm 20mm;
  @bottom-center { content: counter(page) " / " counter(pages); font-size: 8pt; color: #5b6575; }
}
html { font-size: 10pt; }
body {
  margin: 0; color: #1d2430; background: #fff; line-height: 1.45;
  font-family: "DSR CJK", "WenQuanYi Micro Hei", "Noto Sans CJK SC", sans-serif;
}
header.report { border-bottom: 3px solid #9b1c1c; margin-bottom: 1em; padding-bottom: 0.4em; }
header.report .brand { color: #9b1c1c; font-weight: 700; }
h1 { font-size: 1.6rem; margin: 0.2em 0 0.3em; }
h2 { font-size: 1.2rem; margin: 1.2em 0 0.4em; break-after: avoid; }
p.meta, p.basis, p.note { color: #5b6575; margin: 0.2em 0; }
section { break-inside: auto; }
@page wide { size: A4 landscape; }
section.wide { page: wide; }  /* tables of many columns get a landscape page */
section.wide table { font-size: 0.8rem; }
table { border-collapse: collapse; width: 100%; margin: 0.3em 0 0.8em; font-size: 0.92rem; }
caption { text-align: left; font-weight: 600; padding: 0.2em 0; color: #1d2430; }
th, td { border-bottom: 1px solid #d8dde5; padding: 0.25em 0.45em; text-align: left;
         vertical-align: top; }
th { background: #f5f7fa; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr { break-inside: avoid; }
figure.chart { margin: 0.4em 0 1em; break-inside: avoid; }
figure.chart svg { width: 100%; height: auto; max-height: 90mm; }
p.empty { color: #5b6575; font-style: italic; }
@media screen {
  body { max-width: 1100px; margin: 1.5rem auto; padding: 0 1.2rem; background: #f5f7fa; }
  main { background: #fff; border: 1px solid #d8dde5; border-radius: 6px; padding: 1rem 1.4rem; }
}
"""


@functools.cache
def cjk_font() -> Path | None:
    """The CJK font file, or None (logged once) when it is not installed."""
    if CJK_FONT.is_file():
        return CJK_FONT
    log.warning(
        "CJK font %s is missing (apt-get install fonts-wqy-microhei): Chinese text in "
        "charts and PDFs falls back to the default fonts and may show as boxes",
        CJK_FONT,
    )
    return None


def font_face_css() -> str:
    """An ``@font-face`` naming the CJK font file for WeasyPrint (empty without it)."""
    font = cjk_font()
    if font is None:
        return ""
    return f'@font-face {{ font-family: "DSR CJK"; src: url("{font.as_uri()}"); }}\n'


def stylesheet() -> str:
    """The whole print stylesheet: the font face, then :data:`PRINT_CSS`."""
    return font_face_css() + PRINT_CSS


def html_to_pdf(html: str) -> bytes:
    """``html`` (a whole document; its own ``<style>`` applies) as an A4 PDF with page
    numbers, Chinese in WenQuanYi Micro Hei. Inline SVG charts are drawn as vectors."""
    # Imported here: loading Pango takes a moment. WeasyPrint has no type hints.
    from weasyprint import CSS, HTML  # type: ignore[import-untyped]

    pages = CSS(string="@page { size: A4; @bottom-center { content: counter(page) "
                " \" / \" counter(pages); font-size: 8pt; } }")  # fmt: skip
    document = HTML(string=html, base_url=None)
    pdf: bytes = document.write_pdf(stylesheets=[pages, CSS(string=font_face_css())])
    return pdf


def chart(
    kind: ChartKind,
    data: Mapping[str, Mapping[str, float]],
    *,
    title: str,
    lang: str = "zh-CN",
) -> str:
    """An SVG document (text as paths) drawing ``data``: series name -> category ->
    value, categories in the order of the first series that names them.

    ``bar``: series side by side; ``stacked``: series stacked per category; ``line``:
    one line per series. ``lang`` is the ``<svg>``'s language (its title is ``title``).
    """
    categories: list[str] = []
    for values in data.values():
        categories += [c for c in values if c not in categories]
    font = cjk_font()
    props = FontProperties(fname=str(font)) if font else FontProperties()
    small = props.copy()
    small.set_size(8)
    fig = Figure(figsize=(7.2, 3.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs = list(range(len(categories)))
    series = list(data.items())
    width = 0.8 / max(1, len(series)) if kind == "bar" else 0.6
    bottoms = [0.0] * len(categories)
    for i, (name, values) in enumerate(series):
        ys = [float(values.get(c, 0)) for c in categories]
        colour = PALETTE[i % len(PALETTE)]
        if kind == "line":
            ax.plot(xs, ys, marker="o", color=colour, label=name)
        elif kind == "stacked":
            ax.bar(xs, ys, width, bottom=bottoms, color=colour, label=name)
            bottoms = [b + y for b, y in zip(bottoms, ys, strict=True)]
        else:
            offset = (i - (len(series) - 1) / 2) * width
            ax.bar([x + offset for x in xs], ys, width, color=colour, label=name)
    ax.set_xticks(xs, categories)
    for label in ax.get_xticklabels() + ax.get_yticklabels():
        label.set_fontproperties(small)
    if len(categories) > 8:
        for label in ax.get_xticklabels():
            label.set_rotation(45)
            label.set_horizontalalignment("right")
    ax.set_title(title, fontproperties=props)
    ax.spines[["top", "right"]].set_visible(False)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if len(series) > 1:
        # Beside the plot, never over a bar.
        ax.legend(prop=small, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    out = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "dsr-report", "svg.fonttype": "path"}):
        fig.savefig(out, format="svg", metadata={"Date": None, "Title": title})
    svg = out.getvalue()
    svg = svg[svg.index("<svg") :]  # no XML prolog or doctype: it goes inside HTML
    return _own_ids(svg).replace("<svg ", f'<svg role="img" lang="{lang}" ', 1)


def _own_ids(svg: str) -> str:
    """The SVG with its element ids (and the references to them) prefixed by a digest of
    the SVG, so two charts in one page never share an id."""
    prefix = "c" + hashlib.sha256(svg.encode()).hexdigest()[:8] + "-"
    ids = "|".join(re.escape(i) for i in sorted(set(re.findall(r'\bid="([^"]+)"', svg)), key=len,
                                                  reverse=True))  # fmt: skip
    if not ids:
        return svg
    return re.sub(rf'(\bid="|"#|\(#)({ids})(?=[")])', rf"\g<1>{prefix}\g<2>", svg)
