"""``dsr metering``: what jobs and encrypted calls used in a period (``GET /v1/metering``).

``dsr metering --period 2025 --by operator [--operator NAME] [--grant ID]
[--product ID] [--json]`` prints one line per key (a job, grant, product or
operator) and the totals. Operators see their own usage only; administrators
and auditors everyone's. How each figure is measured: ``gateway.metering.usage``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gateway.client.options import client_context, gateway_options
from gateway.client.render import emit_json, session, table

COLUMNS = [
    ("key", "KEY"),
    ("jobs", "JOBS"),
    ("cpu_seconds", "CPU S"),
    ("memory_peak", "MEM PEAK MIB"),
    ("rows_scanned", "ROWS SCANNED"),
    ("bytes_scanned", "BYTES SCANNED"),
    ("output_bytes", "OUTPUT BYTES"),
    ("sandbox_seconds", "SANDBOX S"),
    ("review_minutes", "REVIEW MIN"),
    ("he_calls", "HE CALLS"),
    ("he_eval_ms", "HE EVAL MS"),
]


def _line(row: dict[str, Any]) -> dict[str, Any]:
    """A row for reading: seconds, minutes and milliseconds to two places, memory in MiB."""
    peak = row.get("memory_peak_bytes")
    shown = {k: f"{v:.2f}" if isinstance(v, float) else v for k, v in row.items()}
    return {**shown, "memory_peak": None if peak is None else f"{peak / 2**20:.1f}"}


@gateway_options
def metering(
    ctx: typer.Context,
    period: Annotated[str, typer.Option(help="2025, 2025-Q2, 2025-03 or 2025-01-01..2025-06-30")],
    by: Annotated[str, typer.Option(help="job, grant, product or operator")] = "operator",
    operator: Annotated[str | None, typer.Option(help="only this operator's usage")] = None,
    grant: Annotated[str | None, typer.Option(help="only usage under this grant")] = None,
    product: Annotated[str | None, typer.Option(help="only this product's usage")] = None,
) -> None:
    """Usage totals for a period: CPU seconds, memory peak, rows and bytes scanned, output
    bytes, sandbox seconds, review minutes and encrypted calls, per job, grant, product or
    operator (operators: their own)."""
    gw = client_context(ctx)
    with session(gw) as api:
        found = api.get(
            "/v1/metering", period=period, by=by, operator=operator, grant=grant, product=product
        )
    if gw.as_json:
        emit_json(found)
        return
    typer.echo(f"usage in {found['period']}, by {found['by']}:")
    rows = [_line(r) for r in found["rows"]]
    table([*rows, _line({"key": "(total)", **found["totals"]})] if rows else [], COLUMNS)
