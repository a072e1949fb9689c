"""Incidents' commands (003 (六)4, 000 annex 4 item 四).

``dsr incidents create --kind K --severity S --summary T [--dataset D ...] [--grant G
...] [--occurred-at T] [--detected-at T]`` (administrators; providers on their own
datasets); ``update ID --action A`` (record an action taken); ``resolve ID
--resolution R``; ``list``; ``export --since T --until T [--format csv] [--out FILE]``
(administrators and auditors: the report for the implementing agency).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.client.http import q, save
from gateway.client.options import client_context, client_group, gateway_options
from gateway.client.render import emit_json, fields, session, table

incidents_app = client_group("Security incidents: create, update, resolve, list, export.")

ROWS = [
    ("id", "INCIDENT"),
    ("kind", "KIND"),
    ("severity", "SEVERITY"),
    ("state", "STATE"),
    ("detected_at", "DETECTED (UTC)"),
    ("datasets", "DATASETS"),
    ("summary", "SUMMARY"),
]


def _show(i: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(i)
        return
    fields([(key.replace("_", " "), i[key]) for key in (
        "id", "kind", "severity", "state", "summary", "datasets", "grants", "occurred_at",
        "detected_at", "reported_by", "resolved_at", "resolution",
    )])  # fmt: skip
    if i["actions"]:
        typer.echo("")
        table(i["actions"], [("at", "AT (UTC)"), ("by", "BY"), ("action", "ACTION")])


@incidents_app.command("create")
@gateway_options
def create(
    ctx: typer.Context,
    kind: Annotated[str, typer.Option(help="data_loss, data_leak, tampering, damage, "
                                      "unauthorized_access, major_risk or other")],
    severity: Annotated[str, typer.Option(help="low, medium, high or critical")],
    summary: Annotated[str, typer.Option(help="what happened")],
    dataset: Annotated[list[str] | None, typer.Option(help="a dataset touched")] = None,
    grant: Annotated[list[str] | None, typer.Option(help="a grant touched")] = None,
    occurred_at: Annotated[datetime | None, typer.Option(help="when (default: detected)")] = None,
    detected_at: Annotated[datetime | None, typer.Option(help="when found (default: now)")] = None,
) -> None:  # fmt: skip
    """Record an incident (administrators; providers on their own datasets)."""
    gw = client_context(ctx)
    body: dict[str, Any] = {"kind": kind, "severity": severity, "summary": summary,
                            "datasets": dataset or [], "grants": grant or []}  # fmt: skip
    for key, value in (("occurred_at", occurred_at), ("detected_at", detected_at)):
        if value is not None:
            body[key] = value.isoformat()
    with session(gw) as api:
        _show(api.post("/v1/incidents", body), gw.as_json)


@incidents_app.command("update")
@gateway_options
def update(
    ctx: typer.Context,
    incident_id: str,
    action: Annotated[str, typer.Option(help="the action taken")],
) -> None:
    """Record an action taken on an open incident."""
    gw = client_context(ctx)
    with session(gw) as api:
        _show(api.post(f"/v1/incidents/{q(incident_id)}/actions", {"action": action}), gw.as_json)


@incidents_app.command("resolve")
@gateway_options
def resolve(
    ctx: typer.Context,
    incident_id: str,
    resolution: Annotated[str, typer.Option(help="how it was resolved")],
) -> None:
    """Resolve an incident (its reporter, or an administrator)."""
    gw = client_context(ctx)
    with session(gw) as api:
        i = api.post(f"/v1/incidents/{q(incident_id)}/resolve", {"resolution": resolution})
    _show(i, gw.as_json)


@incidents_app.command("list")
@gateway_options
def list_(ctx: typer.Context) -> None:
    """Incidents you may see."""
    gw = client_context(ctx)
    with session(gw) as api:
        found = api.get("/v1/incidents")
    emit_json(found) if gw.as_json else table(found, ROWS)


@incidents_app.command("export")
@gateway_options(json=False)
def export(
    ctx: typer.Context,
    since: Annotated[datetime, typer.Option(help="start of the period (detected at or after)")],
    until: Annotated[datetime, typer.Option(help="end of the period (detected before)")],
    format: Annotated[str, typer.Option("--format", help="json or csv")] = "json",
    out: Annotated[Path | None, typer.Option(help="write it here (default: stdout)")] = None,
) -> None:  # fmt: skip
    """The incidents of a period as a report for the implementing agency (JSON or CSV)."""
    gw = client_context(ctx)
    with session(gw) as api:
        content = api.download(
            "/v1/incidents/export", since=since.isoformat(), until=until.isoformat(),
            format=format,
        )  # fmt: skip
    if out is not None:
        save(out, content)
        return
    text = content.decode("utf-8")
    typer.echo(json.dumps(json.loads(text), indent=2, ensure_ascii=False) if format == "json"
               else text, nl=False)  # fmt: skip
