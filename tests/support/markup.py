"""Accessible-markup checks of a server-rendered HTML page (the portal's, the reports').

``problems(html, lang)`` parses the page with the standard library's parser and lists
what breaks the rules the portal promises: ``<html lang>`` is the page's language, one
``h1``, a skip link to an element that exists, every table with a ``caption`` and
``th scope="col"`` headers, every visible form control labelled (``<label for>``).
An empty list: the page passes.
"""

from __future__ import annotations

from html.parser import HTMLParser


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.captions_in_tables: list[bool] = []
        self._table_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        self.tags.append((tag, found))
        if tag == "table":
            self._table_depth += 1
            self.captions_in_tables.append(False)
        elif tag == "caption" and self._table_depth:
            self.captions_in_tables[-1] = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table_depth -= 1


def problems(html: str, lang: str) -> list[str]:
    """What the page breaks (see the module docstring)."""
    page = _Page()
    page.feed(html)
    found: list[str] = []
    tags = page.tags
    roots = [a for t, a in tags if t == "html"]
    if [a.get("lang") for a in roots] != [lang]:
        found.append(f"<html lang> is {[a.get('lang') for a in roots]}, not {lang!r}")
    if (h1 := sum(t == "h1" for t, _ in tags)) != 1:
        found.append(f"{h1} h1 elements")
    ids = {a["id"] for _, a in tags if "id" in a}
    skips = [a["href"] for t, a in tags if t == "a" and "skip" in a.get("class", "").split()]
    if not skips or skips[0].lstrip("#") not in ids:
        found.append(f"no skip link to an element of the page: {skips}")
    if not all(page.captions_in_tables):
        found.append("a table without a caption")
    for t, a in tags:
        if t == "th" and a.get("scope") not in ("col", "row"):
            found.append(f"a th without scope: {a}")
    labelled = {a.get("for") for t, a in tags if t == "label"}
    for t, a in tags:
        control = t in ("select", "textarea") or (t == "input" and a.get("type") != "hidden")
        if control and a.get("id") not in labelled:
            found.append(f"an unlabelled {t}: {a}")
    return found
