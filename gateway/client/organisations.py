"""Organisations' commands (administrators write; everyone reads their own).

``dsr orgs create ID --name N --kind operator|provider|financial|other``;
``dsr orgs list`` (administrators: every organisation; others: their own);
``dsr orgs show ID``; ``dsr orgs assign ACCOUNT ORG`` moves the account into
the organisation (an account belongs to at most one), ``--none`` takes it out
of ``ORG``. ``dsr accounts create --organisation ORG`` assigns a new account
(``join``).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gateway.client.errors import UsageError
from gateway.client.http import q
from gateway.client.options import ClientContext, client_context, client_group, gateway_options
from gateway.client.render import emit_json, fields, session, table

orgs_app = client_group("Organisations: create, list, show, assign accounts.")
KINDS = "operator, provider, financial or other"


def _row(o: dict[str, Any]) -> dict[str, Any]:
    return {**o, "members": ", ".join(o["members"])}


@orgs_app.command("create")
@gateway_options
def orgs_create(
    ctx: typer.Context,
    organisation_id: Annotated[str, typer.Argument(metavar="ID", help="e.g. acme-ops")],
    name: Annotated[str, typer.Option(help="the organisation's full name")],
    kind: Annotated[str, typer.Option(help=KINDS)],
) -> None:
    """Create an organisation (administrators)."""
    gw = client_context(ctx)
    with session(gw) as api:
        made = api.post("/v1/organisations", {"id": organisation_id, "name": name, "kind": kind})
    if gw.as_json:
        emit_json(made)
        return
    typer.echo(f"organisation {made['id']} ({made['kind']}): {made['name']}")


@orgs_app.command("list")
@gateway_options
def orgs_list(ctx: typer.Context) -> None:
    """Every organisation (administrators); yours (everyone else)."""
    gw = client_context(ctx)
    with session(gw) as api:
        found = api.get("/v1/organisations")
    if gw.as_json:
        emit_json(found)
        return
    table(
        [_row(o) for o in found],
        [("id", "ORGANISATION"), ("kind", "KIND"), ("name", "NAME"), ("members", "MEMBERS")],
    )


@orgs_app.command("show")
@gateway_options
def orgs_show(
    ctx: typer.Context, organisation_id: Annotated[str, typer.Argument(metavar="ID")]
) -> None:
    """One organisation and its members."""
    gw = client_context(ctx)
    with session(gw) as api:
        found = api.get(f"/v1/organisations/{q(organisation_id)}")
    if gw.as_json:
        emit_json(found)
        return
    row = _row(found)
    fields([(k, row[k]) for k in ("id", "name", "kind", "members", "created_by", "created_at")])


@orgs_app.command("assign")
@gateway_options
def orgs_assign(
    ctx: typer.Context,
    account: str,
    organisation_id: Annotated[str, typer.Argument(metavar="ORG")],
    none: Annotated[bool, typer.Option("--none", help="take the account out of ORG")] = False,
) -> None:
    """Make ACCOUNT a member of ORG, moving it from any other (administrators)."""
    gw = client_context(ctx)
    path = f"/v1/organisations/{q(organisation_id)}/members/{q(account)}"
    with session(gw) as api:
        if none:
            api.delete(path)
            done: dict[str, Any] = {"account": account, "organisation": None}
        else:
            done = api.request("PUT", path).json()
    if gw.as_json:
        emit_json(done)
        return
    if none:
        typer.echo(f"{account} is no longer a member of {organisation_id}")
        return
    moved = f" (moved from {done['previous']})" if done.get("previous") else ""
    typer.echo(f"{account} is a member of {organisation_id}{moved}")


def check_exists(organisation_id: str, gw: ClientContext) -> None:
    """Before an account is made for it: the organisation exists (else a UsageError)."""
    with session(gw) as api:
        if organisation_id not in [o["id"] for o in api.get("/v1/organisations")]:
            raise UsageError(f"no organisation {organisation_id!r} (dsr orgs list)")


def join(account: str, organisation_id: str, gw: ClientContext) -> None:
    """``dsr accounts create --organisation``: the new account joins the organisation."""
    with session(gw) as api:
        api.request("PUT", f"/v1/organisations/{q(organisation_id)}/members/{q(account)}")
