"""Terminations' commands (Chengdu implementation rules 004 art. 24, 33).

``dsr terminations propose GRANT --reason R --legal-basis B`` (a provider of the
grant's datasets, or an administrator); ``request GRANT --dataset D ... --reason R``
(the grant's operator, listing every dataset of the grant); ``approve/refuse ID
--reason R`` (administrators); ``withdraw ID --reason R`` (the proposer);
``list`` and ``show ID`` (each with its notice period's end and the working days
left).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gateway.client.http import q
from gateway.client.options import client_context, client_group, gateway_options
from gateway.client.render import emit_json, fields, session, table

terminations_app = client_group(
    "Terminations of grants: propose, request, approve, refuse, withdraw, list, show."
)
Reason = Annotated[str, typer.Option(help="why (recorded in the audit log)")]

ROWS = [
    ("id", "TERMINATION"),
    ("grant_id", "GRANT"),
    ("kind", "KIND"),
    ("state", "STATE"),
    ("proposed_by", "BY"),
    ("effective_after", "NOT BEFORE (UTC)"),
    ("working_days_left", "WORKING DAYS LEFT"),
]


def _show(t: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(t)
        return
    fields(
        [
            ("termination", t["id"]),
            ("grant", t["grant_id"]),
            ("kind", t["kind"]),
            ("datasets", ", ".join(t["datasets"])),
            ("state", t["state"]),
            ("reason", t["reason"]),
            ("legal basis", t["legal_basis"]),
            ("proposed", f"{t['proposed_at']} by {t['proposed_by']}"),
            ("not before", t["effective_after"] + (" (provisional)" if t["provisional"] else "")),
            ("working days left", t["working_days_left"]),
            ("decided by", t["decided_by"] or "-"),
            ("decision", t["decision_reason"] or "-"),
        ]
    )


@terminations_app.command("propose")
@gateway_options
def propose(
    ctx: typer.Context,
    grant_id: str,
    reason: Reason,
    legal_basis: Annotated[str, typer.Option(help="the article or agreement it rests on")],
) -> None:
    """Propose ending a grant, with its basis (providers of its datasets, administrators)."""
    gw = client_context(ctx)
    with session(gw) as api:
        t = api.post(
            f"/v1/grants/{q(grant_id)}/terminations",
            {"reason": reason, "legal_basis": legal_basis},
        )
    _show(t, gw.as_json)


@terminations_app.command("request")
@gateway_options
def request(
    ctx: typer.Context,
    grant_id: str,
    reason: Reason,
    dataset: Annotated[list[str], typer.Option(help="a dataset it ends (every one of the grant)")],
) -> None:
    """Ask to end supply under your grant, listing its data (operators)."""
    gw = client_context(ctx)
    with session(gw) as api:
        t = api.post(
            f"/v1/grants/{q(grant_id)}/termination-requests",
            {"datasets": dataset, "reason": reason},
        )
    _show(t, gw.as_json)


def _decide(ctx: typer.Context, verb: str, termination_id: str, reason: str) -> None:
    gw = client_context(ctx)
    with session(gw) as api:
        t = api.post(f"/v1/terminations/{q(termination_id)}/{verb}", {"reason": reason})
    _show(t, gw.as_json)


@terminations_app.command("approve")
@gateway_options
def approve(ctx: typer.Context, termination_id: str, reason: Reason) -> None:
    """Approve (administrators): everyone concerned is told; it ends the grant once the
    notice period is over."""
    _decide(ctx, "approve", termination_id, reason)


@terminations_app.command("refuse")
@gateway_options
def refuse(ctx: typer.Context, termination_id: str, reason: Reason) -> None:
    """Refuse (administrators), with a reason; the proposer is told."""
    _decide(ctx, "refuse", termination_id, reason)


@terminations_app.command("withdraw")
@gateway_options
def withdraw(ctx: typer.Context, termination_id: str, reason: Reason) -> None:
    """Withdraw your own before it takes effect."""
    _decide(ctx, "withdraw", termination_id, reason)


@terminations_app.command("list")
@gateway_options
def list_(ctx: typer.Context) -> None:
    """Terminations you may see, with their notice periods."""
    gw = client_context(ctx)
    with session(gw) as api:
        found = api.get("/v1/terminations")
    emit_json(found) if gw.as_json else table(found, ROWS)


@terminations_app.command("show")
@gateway_options
def show(ctx: typer.Context, termination_id: str) -> None:
    gw = client_context(ctx)
    with session(gw) as api:
        t = api.get(f"/v1/terminations/{q(termination_id)}")
    _show(t, gw.as_json)
