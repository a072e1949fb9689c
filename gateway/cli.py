"""``dsr``: the runtime's commands plus the gateway's local administration.

The runtime commands (``dsr engine``, ``smoke``, ``demo``, ``reconcile``)
come from ``sandbox.cli``. Added here, working on the gateway's store
directly (the bootstrap before any account exists, and the machine owner's
tools): ``dsr accounts create/list``, ``dsr tokens issue/revoke``,
``dsr audit verify/export``, ``dsr gateway serve``, and ``dsr gateway demo``
(``make run``: the demo seeded by ``gateway.demo``, then served). Each change
is audited with the actor ``local:<user>``.
"""

from __future__ import annotations

import getpass
import json
import sys
import time
from collections import Counter
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from sqlalchemy import Engine

from gateway.audit import append, export_jsonl, verify
from gateway.errors import GatewayError
from gateway.identity import create_account, issue_token, list_accounts, revoke_token
from gateway.settings import GatewaySettings
from gateway.store import make_engine, migrate, read_transaction
from sandbox.cli import app

if TYPE_CHECKING:
    from gateway.demo import DemoSeed

accounts_app = typer.Typer(help="Accounts and their roles.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens (shown once).", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
gateway_app = typer.Typer(help="The HTTP gateway.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")
app.add_typer(tokens_app, name="tokens")
app.add_typer(audit_app, name="audit")
app.add_typer(gateway_app, name="gateway")

__all__ = ["app"]

HOST, PORT = "127.0.0.1", 8700  # loopback: exposing the gateway is a deliberate choice


def _actor() -> str:
    return f"local:{getpass.getuser()}"


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"dsr: {message}", err=True)
    raise typer.Exit(code)


def _settings() -> GatewaySettings:
    try:
        return GatewaySettings()
    except ValueError as e:
        _fail(f"bad gateway settings: {e}", 2)


def _engine() -> Engine:
    settings = _settings()
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
    host: Annotated[str, typer.Option(help="loopback by default")] = HOST,
    port: int = PORT,
) -> None:
    """Serve the gateway (uvicorn), with a job worker on the local engine."""
    _serve(_settings(), host, port)


@gateway_app.command("demo")
def gateway_demo(
    host: Annotated[str, typer.Option(help="loopback by default")] = HOST,
    port: int = PORT,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="serve after seeding")] = True,
    residents: Annotated[
        int | None, typer.Option(min=1000, help="residents in the city [default: 20,000]")
    ] = None,
) -> None:
    """Seed the demo (an account per role, the synthetic city, a grant), print its
    tokens and a walkthrough, then serve. Development only; running it again reuses
    what exists."""
    from gateway.demo import RESIDENTS, base_url, seed

    settings = _settings()
    started = time.monotonic()
    try:
        demo = seed(
            settings, url=base_url(host, port), residents=residents or RESIDENTS, actor=_actor()
        )
    except GatewayError as e:
        _fail(str(e))
    took = time.monotonic() - started
    plural = {"policy": "policies"}
    made = ", ".join(
        f"{n} {kind if n == 1 else plural.get(kind, kind + 's')}"
        for kind, n in Counter(m.kind for m in demo.created).items()
    )
    typer.echo(
        f"demo seeded in {settings.data_dir} in {took:.1f}s: "
        + (f"created {made}" if made else "everything there already, reused")
    )
    city = ", ".join(f"{d.name} {d.row_count:,}" for d in demo.datasets)
    typer.echo(f"the synthetic city, rows per dataset: {city}")
    _echo_walkthrough(demo)
    if serve:
        typer.echo(f"\nserving {demo.url} (API docs at {demo.url}/docs); Ctrl-C stops it")
        _serve(settings, host, port)


def _echo_walkthrough(demo: DemoSeed) -> None:
    from gateway.demo import OPERATOR, RESULT_FILE, job_command, submit_command

    typer.echo(f"\nDEMO TOKENS (development only; also in {demo.env_file}, mode 0600):")
    for a in demo.accounts:
        typer.echo(f"  {a.role.value:<9} {a.name:<16} {a.token}")
    columns = "; ".join(f"{d}: {', '.join(c)}" for d, c in demo.grant_scopes.items())
    typer.echo(f"\ngrant {demo.grant_id} ({demo.grant_state}) for {OPERATOR}: {columns}")
    if demo.grant_state != "active":
        typer.echo(f"  the grant is {demo.grant_state}: jobs under it are refused until resumed")
    token = demo.operator_token
    typer.echo("\nsubmit an SQL product as the operator (residents counted by district):")
    typer.echo("  " + submit_command(demo.url, token, demo.grant_id))
    typer.echo('then, with the job\'s "id" for JOB_ID, its status (queued ... released):')
    typer.echo("  " + job_command(demo.url, token))
    typer.echo("and, once released, its output:")
    typer.echo("  " + job_command(demo.url, token, path=f"/outputs/{RESULT_FILE}"))
    typer.echo(f"or: source {demo.env_file} (see the README's quick start)")


def _serve(settings: GatewaySettings, host: str, port: int) -> None:
    import uvicorn

    from gateway.app import create_app
    from gateway.runtime import build_runtime

    uvicorn.run(create_app(settings, build_runtime(settings)), host=host, port=port)
