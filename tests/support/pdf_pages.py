"""A PDF's pages as PNG files, for tests that look at generated documents.

``pdf_to_pngs(data, name)`` renders every page with pypdfium2 into
``var/test-artifacts/<area>/<name>-<page>.png`` (the directory CI keeps as the
browser tests' artefacts) and returns the paths; a document without pages, or
bytes that are not a PDF, fail the calling test.
"""

from __future__ import annotations

from pathlib import Path

import pypdfium2 as pdfium

ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts"


def pdf_to_pngs(data: bytes, name: str, area: str = "year", scale: float = 1.0) -> list[Path]:
    """Render each page of ``data`` to ``ARTIFACTS/area/name-N.png`` (N from 1)."""
    assert data.startswith(b"%PDF"), data[:40]
    out = ARTIFACTS / area
    out.mkdir(parents=True, exist_ok=True)
    document = pdfium.PdfDocument(data)
    try:
        assert len(document) >= 1, "a PDF without pages"
        paths = []
        for n, page in enumerate(document, start=1):
            image = page.render(scale=scale).to_pil()
            path = out / f"{name}-{n}.png"
            image.save(path)
            paths.append(path)
            # A blank page renders one colour: a rendered page has ink on it.
            darkest, lightest = image.convert("L").getextrema()
            assert darkest < lightest, f"page {n} of {name} is blank"
        return paths
    finally:
        document.close()
