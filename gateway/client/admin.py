"""Signing in, and the commands that work both on the gateway and on the local store.

``dsr login --server URL --token T [--profile P]`` checks the token against
the gateway and saves the profile (mode 0600, see
:mod:`gateway.client.config`); ``dsr whoami`` says who the token is.

``dsr accounts create/list``, ``dsr tokens issue/revoke`` and ``dsr audit
verify/export`` exist twice: on the machine that runs the gateway they open
its store directly (the bootstrap of the first administrator, before any
token exists), and anywhere else they call the gateway's API. The rule is
one sentence: **a command talks to the gateway when one is named (``--server``,
``DSR_SERVER`` or the config file) and opens the local store otherwise;
``--local`` forces the store.** The remote forms need an administrator's
token (accounts, tokens) or an auditor's (audit verify; audit export also
takes a provider's, limited to their datasets' events). ``dsr audit list``
reads events through the gateway only, with filters.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.client.config import Target, configured_server, save_profile
from gateway.client.errors import UsageError
from gateway.client.http import Api, q
from gateway.client.options import ClientContext, client_context, gateway_options
from gateway.client.render import emit_json, handled, session, table

Local = Annotated[
    bool, typer.Option("--local", help="open the local store, even if a gateway is configured")
]


def utc(when: datetime | None) -> datetime | None:
    """A time given without a zone is UTC."""
    return when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when


def remote(local: bool, gw: ClientContext) -> bool:
    """Rule: talk to the gateway when one is named and --local is not given."""
    with handled():
        if local and (gw.server or gw.profile):
            raise UsageError("--local opens the store; it cannot go with --server or --profile")
        return not local and configured_server(gw.server, gw.profile)


# -- signing in -------------------------------------------------------------------------


def login(
    server: Annotated[str, typer.Option("--server", help="the gateway's URL")],
    token: Annotated[str, typer.Option("--token", help="your API token (dsr_...)")],
    profile: Annotated[str, typer.Option("--profile", help="the profile's name")] = "default",
) -> None:
    """Check a token against the gateway and save it as a profile (the new default)."""
    with handled():
        if not server.startswith(("http://", "https://")):
            raise UsageError(f"the server must be an http:// or https:// URL, not {server!r}")
        url = server.rstrip("/")
        with Api(Target(url, token, "the --server flag")) as api:
            me = api.get("/v1/me")
        path = save_profile(profile, url, token)
    typer.echo(f"signed in to {url} as {me['name']} ({', '.join(me['roles'])})")
    typer.echo(f"profile {profile!r} saved in {path} (mode 0600)", err=True)


@gateway_options
def whoami(ctx: typer.Context) -> None:
    """The account the token belongs to, and its roles."""
    gw = client_context(ctx)
    with session(gw) as api:
        me = api.get("/v1/me")
        where = api.target.server
    if gw.as_json:
        emit_json({**me, "server": where})
        return
    typer.echo(f"{me['name']} ({', '.join(me['roles'])}) at {where}")


# -- the remote forms of the local administration commands ----------------------------------


def accounts_create(name: str, roles: list[str], display_name: str, gw: ClientContext) -> None:
    body = {"name": name, "roles": roles, "display_name": display_name}
    with session(gw) as api:
        made = api.post("/v1/accounts", body)
    if gw.as_json:
        emit_json(made)
        return
    typer.echo(f"account {made['name']}: {', '.join(made['roles'])}")


def accounts_list(gw: ClientContext) -> None:
    with session(gw) as api:
        found = api.get("/v1/accounts")
    if gw.as_json:  # the same shape as the local command's
        emit_json([{k: a[k] for k in ("name", "roles", "disabled")} for a in found])
        return
    table(
        found,
        [("name", "ACCOUNT"), ("roles", "ROLES"), ("display_name", "NAME"),
         ("disabled", "DISABLED"), ("created_at", "CREATED (UTC)")],
    )  # fmt: skip


def issued_json(account: str, token: str, label: str) -> dict[str, str]:
    """``tokens issue --json``: the token (shown once), its public id, whose it is."""
    return {"account": account, "id": token.split("_")[1], "label": label, "token": token}


def tokens_issue(account: str, label: str, gw: ClientContext) -> None:
    with session(gw) as api:
        issued = api.post(f"/v1/accounts/{q(account)}/tokens", {"label": label})
    if gw.as_json:
        emit_json(issued_json(issued["account"], issued["token"], label))
        return
    typer.echo(issued["token"])


def tokens_revoke(token_id: str, gw: ClientContext) -> None:
    with session(gw) as api:
        api.delete(f"/v1/tokens/{q(token_id)}")
    if gw.as_json:
        emit_json({"id": token_id, "revoked": True})
        return
    typer.echo(f"token {token_id} revoked")


def audit_verify(
    gw: ClientContext, checkpoint: Path | None = None, public_key: Path | None = None
) -> None:
    """Through the gateway, against its stored checkpoints and any kept in ``checkpoint``
    (see :mod:`gateway.client.checkpoints`); exit 1 if anything fails."""
    from gateway.client import checkpoints

    checkpoints.verify(gw, checkpoint, public_key)


def audit_export(
    datasets: list[str] | None,
    since: datetime | None,
    gw: ClientContext,
    with_checkpoints: bool = False,
) -> None:
    wanted = set(datasets or ())
    with (
        session(gw) as api,
        api.lines(
            "/v1/audit/events", since=_iso(since), checkpoints="true" if with_checkpoints else None
        ) as lines,
    ):
        for line in lines:
            if not line:
                continue
            item = json.loads(line)
            if item.get("kind") == "checkpoint" or not wanted or wanted & set(item["datasets"]):
                typer.echo(line)


# -- reading events ---------------------------------------------------------------------------


@gateway_options
def audit_list(
    ctx: typer.Context,
    event_type: Annotated[
        list[str] | None, typer.Option("--type", help="only events of this type (repeat)")
    ] = None,
    actor: Annotated[str | None, typer.Option(help="only events by this account")] = None,
    dataset: Annotated[str | None, typer.Option(help="only events about this dataset")] = None,
    grant: Annotated[str | None, typer.Option(help="only events under this grant")] = None,
    since: Annotated[
        datetime | None, typer.Option(help="only events at or after this time (UTC)")
    ] = None,
    last: Annotated[int, typer.Option(help="show the last N events (0: all)", min=0)] = 50,
) -> None:
    """Audit events through the gateway, filtered: all of them for auditors, your datasets'
    for providers. Reading them is itself audited."""
    gw = client_context(ctx)
    kinds = set(event_type or ())
    found: list[dict[str, Any]] = []
    with (
        session(gw) as api,
        api.lines("/v1/audit/events", since=_iso(since)) as lines,
    ):
        for line in lines:
            if not line:
                continue
            e = json.loads(line)
            if (
                (kinds and e["type"] not in kinds)
                or (actor and e["actor"] != actor)
                or (dataset and dataset not in e["datasets"])
                or (grant and e.get("grant_id") != grant)
            ):
                continue
            found.append(e)
    if last:
        found = found[-last:]
    if gw.as_json:
        emit_json(found)
        return
    rows = [{**e, "detail": _short(e.get("detail") or {})} for e in found]
    table(
        rows,
        [("id", "ID"), ("at", "AT (UTC)"), ("type", "TYPE"), ("actor", "ACTOR"),
         ("grant_id", "GRANT"), ("datasets", "DATASETS"), ("detail", "DETAIL")],
    )  # fmt: skip


def _iso(when: datetime | None) -> str | None:
    aware = utc(when)
    return aware.isoformat() if aware is not None else None


def _short(detail: dict[str, Any], width: int = 60) -> str:
    text = json.dumps(detail, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 3] + "..."
