"""A report as data: sections of rows, each optionally drawn as a chart.

Every format (``gateway.reports.formats``: JSON, CSV, HTML, PDF) lays out the same
:class:`Report`, so the numbers cannot differ between them. Section and column names
are identifiers; their words in Chinese and English are in ``gateway.reports.messages``.
A cell is metadata only: names, ids, counts, times; never a data value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from gateway.periods import Period

Cell = str | int | float | None
Kind = Literal["operator", "provider", "disclosure"]
KINDS: tuple[Kind, ...] = ("operator", "provider", "disclosure")


@dataclass(frozen=True)
class Chart:
    """Draw a section: ``value`` per ``category``, one series per ``series`` value."""

    kind: Literal["bar", "stacked", "line"]
    category: str
    value: str
    series: str | None = None
    categories: tuple[str, ...] = ()  # shown even without rows (a year's twelve months)


@dataclass(frozen=True)
class Section:
    name: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    chart: Chart | None = None

    def records(self) -> list[dict[str, Cell]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def chart_data(self) -> dict[str, dict[str, float]]:
        """series -> category -> value (one series, named by the value column, without
        a series column)."""
        if self.chart is None:
            return {}
        out: dict[str, dict[str, float]] = {}
        if self.chart.categories and self.rows:  # the first series sets the order
            first = (
                self.rows[0][self.columns.index(self.chart.series)] if self.chart.series else None
            )
            out[self.chart.value if first is None else str(first)] = dict.fromkeys(
                self.chart.categories, 0.0
            )
        for r in self.records():
            name = str(r[self.chart.series]) if self.chart.series else self.chart.value
            cat, value = str(r[self.chart.category]), r[self.chart.value]
            line = out.setdefault(name, {})
            line[cat] = line.get(cat, 0.0) + float(value or 0)
        return out


@dataclass(frozen=True)
class Report:
    kind: Kind
    subject: str | None  # the operator or provider; None for the disclosure
    period: Period
    generated_at: datetime
    basis: tuple[str, ...]  # the articles the report serves
    summary: Mapping[str, int | float]
    sections: tuple[Section, ...] = field(default=())

    def section(self, name: str) -> Section:
        return next(s for s in self.sections if s.name == name)
