"""A held output as the reviewer sees it: each file with the places its findings name.

Stage 6 of the data flow, for people. A finding names a place (``file``,
``row``, ``column``; ``row`` 0-based over the data rows, header excluded):
a cell when it has both, a whole row or a whole column when it has one, the
whole file when it has neither, the whole job when it names no file. CSV
files are parsed into rows so those places can be marked cell by cell;
other text is shown as it is, marked as a whole; binary files are never
shown (only their hash).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_ROWS = 1000  # rows of a table shown on the page; findings beyond are still listed
MAX_TEXT = 200_000  # characters of a text file shown


@dataclass(frozen=True)
class Mark:
    """A finding as a page shows it: ``id`` links the list entry to the marked places."""

    id: str
    rule: str
    verdict: str
    message: str
    file: str | None
    row: int | None
    column: str | None


@dataclass
class Cell:
    value: str
    marks: list[Mark] = field(default_factory=list)

    @property
    def verdict(self) -> str | None:
        return _worst(m.verdict for m in self.marks)


@dataclass
class Shown:
    """One output file, ready for the template."""

    file: str
    sha256: str
    kind: str  # "table", "text", "binary" or "empty"
    marks: list[Mark]
    header: list[Cell] = field(default_factory=list)
    rows: list[list[Cell]] = field(default_factory=list)
    text: str = ""
    truncated: bool = False
    whole: list[Mark] = field(default_factory=list)  # findings about the whole file

    @property
    def verdict(self) -> str | None:
        return _worst(m.verdict for m in self.whole)


_RANK = {"PASS": 0, "REVIEW": 1, "FAIL": 2}


def _worst(verdicts: Iterable[str]) -> str | None:
    return max(verdicts, key=lambda v: _RANK.get(v, 0), default=None)


def marks_of(findings: Iterable[Mapping[str, Any]], *, start: int = 1) -> list[Mark]:
    """The findings as marks, numbered from ``start`` (a page's first finding)."""
    marks = []
    for i, f in enumerate(findings, start=start):
        row = f.get("row")
        marks.append(
            Mark(
                id=f"finding-{i}",
                rule=str(f.get("rule", "")),
                verdict=str(f.get("verdict", "")),
                message=str(f.get("message", "")),
                file=f.get("file"),
                row=row if isinstance(row, int) else None,
                column=f.get("column"),
            )
        )
    return marks


def _parse_csv(text: str) -> list[list[str]] | None:
    try:
        return list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error:
        return None


def show(file: Mapping[str, str], marks: list[Mark]) -> Shown:
    """``file`` (from the review service: file, sha256, encoding, content) with its marks."""
    name = file["file"]
    own = [m for m in marks if m.file == name]
    shown = Shown(file=name, sha256=file["sha256"], kind="text", marks=own)
    shown.whole = [m for m in own if m.row is None and m.column is None]
    if file.get("encoding") != "utf-8":
        shown.kind = "binary"
        return shown
    content = file.get("content", "")
    if not content:
        shown.kind = "empty"
        return shown
    parsed = _parse_csv(content) if name.lower().endswith(".csv") else None
    if not parsed:
        shown.text = content[:MAX_TEXT]
        shown.truncated = len(content) > MAX_TEXT
        return shown
    shown.kind = "table"
    names = parsed[0]
    body = parsed[1:]
    shown.truncated = len(body) > MAX_ROWS
    by_column: dict[str, list[Mark]] = {c: [] for c in names}
    by_row: dict[int, list[Mark]] = {}
    by_cell: dict[tuple[int, str], list[Mark]] = {}
    for m in own:  # indexed once: a page of marks over a thousand rows stays quick
        if m.row is None and m.column is not None:
            by_column.setdefault(m.column, []).append(m)
        elif m.row is not None and m.column is None:
            by_row.setdefault(m.row, []).append(m)
        elif m.row is not None and m.column is not None:
            by_cell.setdefault((m.row, m.column), []).append(m)
    shown.header = [Cell(c, by_column[c]) for c in names]
    for r, values in enumerate(body[:MAX_ROWS]):
        row_marks = by_row.get(r, [])
        cells = []
        for c, value in enumerate(values):
            column = names[c] if c < len(names) else None
            cell_marks = by_cell.get((r, column), []) if column is not None else []
            cells.append(Cell(value, [*cell_marks, *row_marks, *by_column.get(column or "", [])]))
        shown.rows.append(cells)
    return shown


def job_level(marks: list[Mark], files: Iterable[str]) -> list[Mark]:
    """The findings that name no file shown (the job as a whole: scope, differencing)."""
    names = set(files)
    return [m for m in marks if m.file not in names]
