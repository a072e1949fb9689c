"""``dsr notices``: what the gateway told you without being asked (deadlines, terms, stops)."""

from __future__ import annotations

from typing import Annotated

import typer

from gateway.client.options import client_context, client_group, gateway_options
from gateway.client.render import emit_json, session, table

notices_app = client_group("Notices addressed to you or to your roles.")


@notices_app.command("list")
@gateway_options
def notices_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="newest first")] = 50,
) -> None:
    """The newest notices for you: overdue steps, terms ending, terminations coming."""
    gw = client_context(ctx)
    with session(gw) as api:
        found = api.get("/v1/notices", limit=limit)
    if gw.as_json:
        emit_json(found)
        return
    table(found, [("at", "AT (UTC)"), ("kind", "KIND"), ("subject", "SUBJECT")])
