"""A period's incidents as a report for the implementing agency (JSON and CSV).

Serves Tiemenguan plan (003) (六)4 and Chongqing call (000) annex 4 item 四: incidents
are reported to the implementing agency. The report counts what it lists: its totals
are computed from the same records it writes, so the two never differ. It carries
identifiers, times and the texts people wrote, never data values.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.incidents.model import IncidentRecord, Kind, Severity, Status

COLUMNS = (
    "id", "kind", "severity", "state", "summary", "datasets", "grants", "occurred_at",
    "detected_at", "reported_by", "reported_at", "resolved_at", "resolution", "actions",
)  # fmt: skip


@dataclass(frozen=True)
class Report:
    since: datetime
    until: datetime
    generated_at: datetime
    incidents: tuple[IncidentRecord, ...]

    def totals(self) -> dict[str, Any]:
        found = self.incidents
        return {
            "incidents": len(found),
            "by_kind": {k.value: n for k in Kind if (n := sum(i.kind == k for i in found))},
            "by_severity": {
                s.value: n for s in Severity if (n := sum(i.severity == s for i in found))
            },
            "by_state": dict(Counter(i.state.value for i in found)),
            "open": sum(i.state == Status.OPEN for i in found),
        }


def _row(i: IncidentRecord) -> dict[str, Any]:
    return {
        "id": i.id,
        "kind": i.kind.value,
        "severity": i.severity.value,
        "state": i.state.value,
        "summary": i.summary,
        "datasets": list(i.datasets),
        "grants": list(i.grants),
        "occurred_at": i.occurred_at.isoformat(),
        "detected_at": i.detected_at.isoformat(),
        "reported_by": i.reported_by,
        "reported_at": i.reported_at.isoformat(),
        "resolved_at": i.resolved_at.isoformat() if i.resolved_at else None,
        "resolution": i.resolution,
        "actions": [{"at": a.at.isoformat(), "by": a.actor, "action": a.action} for a in i.actions],
    }


def as_json(report: Report) -> dict[str, Any]:
    return {
        "period": {"since": report.since.isoformat(), "until": report.until.isoformat()},
        "generated_at": report.generated_at.isoformat(),
        "totals": report.totals(),
        "incidents": [_row(i) for i in report.incidents],
    }


def as_csv(report: Report) -> str:
    """One line per incident; lists joined by ``;``, actions by `` | `` (time, who, what)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for i in report.incidents:
        row = _row(i)
        row["datasets"] = ";".join(i.datasets)
        row["grants"] = ";".join(i.grants)
        row["resolved_at"] = row["resolved_at"] or ""
        row["resolution"] = row["resolution"] or ""
        row["actions"] = " | ".join(f"{a.at.isoformat()} {a.actor}: {a.action}" for a in i.actions)
        writer.writerow(row)
    return out.getvalue()
