"""``dsr``: the runtime's commands plus the gateway's local administration.

The runtime commands (``dsr engine``, ``smoke``, ``demo``, ``reconcile``)
come from ``sandbox.cli``. Added here, working on the gateway's store
directly (the bootstrap before any account exists, and the machine owner's
tools): ``dsr accounts create/list``, ``dsr tokens issue/revoke``,
``dsr audit verify/export``, ``dsr gateway serve``. Each change is audited
with the actor ``local:<user>``.
"""

from __future__ import annotations

import getpass
import json
import sys
from typing import Annotated, NoReturn

import typer
from sqlalchemy import Engine

from gateway.audit import append, export_jsonl, verify
from gateway.errors import GatewayError
from gateway.identity import create_account, issue_token, list_accounts, revoke_token
from gateway.settings import GatewaySettings
from gateway.store import make_engine, migrate, read_transaction
from sandbox.cli import app

accounts_app = typer.Typer(help="Accounts and their roles.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens (shown once).", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
gateway_app = typer.Typer(help="The HTTP gateway.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")
app.add_typer(tokens_app, name="tokens")
app.add_typer(audit_app, name="audit")
app.add_typer(gateway_app, name="gateway")

__all__ = ["app"]


def _actor() -> str:
    return f"local:{getpass.getuser()}"


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"dsr: {message}", err=True)
    raise typer.Exit(code)


def _engine() -> Engine:
    try:
        settings = GatewaySettings()
    except ValueError as e:
        _fail(f"bad gateway settings: {e}", 2)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    migrate(engine)
    return engine


@accounts_app.command("create")
def accounts_create(
    name: str,
    role: Annotated[
        list[str], typer.Option("--role", help="operator, provider, reviewer, admin or auditor")
    ],
    display_name: Annotated[str, typer.Option(help="a human-readable name")] = "",
) -> None:
    """Create an account with one or more roles."""
    try:
        with _engine().begin() as conn:
            account = create_account(
                conn, name, set(role), display_name=display_name, actor=_actor()
            )
    except GatewayError as e:
        _fail(str(e))
    typer.echo(f"account {account.name}: {', '.join(sorted(account.roles))}")


@accounts_app.command("list")
def accounts_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List accounts and their roles."""
    with read_transaction(_engine()) as conn:
        found = list_accounts(conn)
    if as_json:
        rows = [{"name": a.name, "roles": sorted(a.roles), "disabled": a.disabled} for a in found]
        typer.echo(json.dumps(rows))
        return
    for a in found:
        state = "\t(disabled)" if a.disabled else ""
        typer.echo(f"{a.name}\t{','.join(sorted(a.roles))}{state}")


@tokens_app.command("issue")
def tokens_issue(
    account: str, label: Annotated[str, typer.Option(help="what the token is for")] = ""
) -> None:
    """Issue an API token for an account; it is printed once and never stored."""
    try:
        with _engine().begin() as conn:
            token = issue_token(conn, account, actor=_actor(), label=label)
    except GatewayError as e:
        _fail(str(e))
    typer.echo(token)


@tokens_app.command("revoke")
def tokens_revoke(token_id: str) -> None:
    """Revoke a token by its public id (the 12 hex characters after ``dsr_``)."""
    try:
        with _engine().begin() as conn:
            revoke_token(conn, token_id, actor=_actor())
    except GatewayError as e:
        _fail(str(e))
    typer.echo(f"token {token_id} revoked")


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit chain; exit 1 and name the first broken link if it fails."""
    engine = _engine()
    with read_transaction(engine) as conn:
        result = verify(conn)
    detail = {
        "ok": result.ok,
        "checked": result.checked,
        "first_broken": result.first_broken,
        "reason": result.reason,
        "head_id": result.head_id,
        "head_hash": result.head_hash,
    }
    with engine.begin() as conn:
        append(conn, "audit.verified", _actor(), detail=detail)
    if not result.ok:
        _fail(f"audit chain broken at event {result.first_broken}: {result.reason}")
    typer.echo(f"audit chain ok: {result.checked} events, head {result.head_id} {result.head_hash}")


@audit_app.command("export")
def audit_export(
    dataset: Annotated[list[str] | None, typer.Option(help="only events about it")] = None,
) -> None:
    """Write events as JSON Lines to standard output."""
    engine = _engine()
    with read_transaction(engine) as conn:
        written = export_jsonl(conn, sys.stdout, datasets=dataset or None)
    with engine.begin() as conn:
        append(conn, "audit.exported", _actor(), datasets=dataset or (), detail={"events": written})


@gateway_app.command("serve")
def gateway_serve(
    host: Annotated[str, typer.Option(help="loopback by default")] = "127.0.0.1",
    port: int = 8700,
) -> None:
    """Serve the gateway (uvicorn), with a job worker on the local engine."""
    import uvicorn

    from gateway.app import create_app
    from gateway.runtime import build_runtime

    settings = GatewaySettings()
    uvicorn.run(create_app(settings, build_runtime(settings)), host=host, port=port)
