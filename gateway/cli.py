"""``dsr``: the runtime's commands plus the gateway's local administration.

The runtime commands (``dsr engine``, ``smoke``, ``demo``, ``reconcile``)
come from ``sandbox.cli``. Added here, working on the gateway's store
directly (the bootstrap before any account exists, and the machine owner's
tools): ``dsr accounts create/list``, ``dsr tokens issue/revoke``,
``dsr audit verify/export/checkpoint/checkpoints/public-key``, ``dsr gateway
serve``, and ``dsr gateway demo``
(``make run``: the demo seeded by ``gateway.demo``, then served). Each change
is audited with the actor ``local:<user>``. Where a gateway is named
(``--server``, ``DSR_SERVER`` or ``dsr login``'s config file) the accounts,
tokens and audit commands call its API instead; ``--local`` forces the store.
The REST clients for every role come from ``gateway.client``.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from gateway.client import admin as remote
from gateway.client import register as register_client
from gateway.client.options import client_context, client_group, gateway_options
from gateway.client.render import emit_json, handled
from gateway.errors import GatewayError
from gateway.he.cli import he_app
from sandbox.cli import app

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from gateway.demo import DemoSeed
    from gateway.settings import GatewaySettings

# The store's modules (SQLAlchemy, Alembic) are imported by the commands that open
# it: the REST-client commands of ``dsr`` start without them.

# The groups that also speak to a gateway take its options before their commands too.
accounts_app = client_group("Accounts and their roles.")
tokens_app = client_group("API tokens (shown once).")
audit_app = client_group("The hash-chained audit log.")
gateway_app = typer.Typer(help="The HTTP gateway.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")
app.add_typer(tokens_app, name="tokens")
app.add_typer(audit_app, name="audit")
app.add_typer(gateway_app, name="gateway")
register_client(app, audit_app)  # the gateway's REST clients (gateway.client)
app.add_typer(he_app, name="he")  # privacy-computing products (gateway.he.cli)

__all__ = ["app"]

HOST, PORT = "127.0.0.1", 8700  # loopback: exposing the gateway is a deliberate choice


def _actor() -> str:
    return f"local:{getpass.getuser()}"


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"dsr: {message}", err=True)
    raise typer.Exit(code)


def _settings() -> GatewaySettings:
    from gateway.settings import GatewaySettings

    try:
        return GatewaySettings()
    except ValueError as e:
        _fail(f"bad gateway settings: {e}", 2)


def _engine() -> Engine:
    from gateway.store import make_engine, migrate

    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    migrate(engine)
    return engine


@accounts_app.command("create")
@gateway_options
def accounts_create(
    ctx: typer.Context,
    name: str,
    role: Annotated[
        list[str],
        typer.Option("--role", help="operator, provider, reviewer, admin, auditor or consumer"),
    ],
    display_name: Annotated[str, typer.Option(help="a human-readable name")] = "",
    organisation: Annotated[str | None, typer.Option(help="the organisation it joins")] = None,
    local: remote.Local = False,
) -> None:
    """Create an account with one or more roles (and its organisation)."""
    gw = client_context(ctx)
    if remote.remote(local, gw):
        from gateway.client import organisations

        if organisation is not None:
            organisations.check_exists(organisation, gw)
        remote.accounts_create(name, role, display_name, gw)
        if organisation is not None:
            organisations.join(name, organisation, gw)
        return
    from gateway.identity import create_account

    try:
        with _engine().begin() as conn:
            account = create_account(
                conn, name, set(role), display_name=display_name, actor=_actor()
            )
            if organisation is not None:
                from gateway.organisations.service import assign

                assign(conn, name, organisation, actor=_actor(), now=account.created_at)
    except GatewayError as e:
        _fail(str(e))
    if gw.as_json:  # the shape of the gateway's answer (AccountOut)
        emit_json(
            {
                "name": account.name,
                "display_name": account.display_name,
                "roles": sorted(account.roles),
                "created_at": account.created_at.isoformat(),
                "disabled": account.disabled,
            }
        )
        return
    typer.echo(f"account {account.name}: {', '.join(sorted(account.roles))}")


@accounts_app.command("list")
@gateway_options
def accounts_list(ctx: typer.Context, local: remote.Local = False) -> None:
    """List accounts and their roles."""
    gw = client_context(ctx)
    if remote.remote(local, gw):
        return remote.accounts_list(gw)
    from gateway.identity import list_accounts
    from gateway.store import read_transaction

    with read_transaction(_engine()) as conn:
        found = list_accounts(conn)
    if gw.as_json:
        rows = [{"name": a.name, "roles": sorted(a.roles), "disabled": a.disabled} for a in found]
        typer.echo(json.dumps(rows))
        return
    for a in found:
        state = "\t(disabled)" if a.disabled else ""
        typer.echo(f"{a.name}\t{','.join(sorted(a.roles))}{state}")


@tokens_app.command("issue")
@gateway_options
def tokens_issue(
    ctx: typer.Context,
    account: str,
    label: Annotated[str, typer.Option(help="what the token is for")] = "",
    local: remote.Local = False,
) -> None:
    """Issue an API token for an account; it is printed once and never stored."""
    gw = client_context(ctx)
    if remote.remote(local, gw):
        return remote.tokens_issue(account, label, gw)
    from gateway.identity import issue_token

    try:
        with _engine().begin() as conn:
            issued = issue_token(conn, account, actor=_actor(), label=label)
    except GatewayError as e:
        _fail(str(e))
    if gw.as_json:
        emit_json(remote.issued_json(account, issued, label))
        return
    typer.echo(issued)


@tokens_app.command("revoke")
@gateway_options
def tokens_revoke(ctx: typer.Context, token_id: str, local: remote.Local = False) -> None:
    """Revoke a token by its public id (the 12 hex characters after ``dsr_``)."""
    gw = client_context(ctx)
    if remote.remote(local, gw):
        return remote.tokens_revoke(token_id, gw)
    from gateway.identity import revoke_token

    try:
        with _engine().begin() as conn:
            revoke_token(conn, token_id, actor=_actor())
    except GatewayError as e:
        _fail(str(e))
    if gw.as_json:
        emit_json({"id": token_id, "revoked": True})
        return
    typer.echo(f"token {token_id} revoked")


CheckpointFile = Annotated[
    Path | None,
    typer.Option(
        "--checkpoint",
        help="also verify against the checkpoint(s) in this file (JSON, or JSON Lines)",
    ),
]
PublicKeyFile = Annotated[
    Path | None,
    typer.Option("--public-key", help="the public key (PEM) the --checkpoint must be signed by"),
]
SaveFile = Annotated[Path | None, typer.Option("--save", help="write it to this file")]


@audit_app.command("verify")
@gateway_options
def audit_verify(
    ctx: typer.Context,
    checkpoint: CheckpointFile = None,
    public_key: PublicKeyFile = None,
    local: remote.Local = False,
) -> None:
    """Recompute the audit chain against every signed checkpoint (stored, and the ones
    in --checkpoint); exit 1 and name the first broken link if it fails."""
    gw = client_context(ctx)
    if remote.remote(local, gw):
        return remote.audit_verify(gw, checkpoint, public_key)
    from gateway.audit import local as anchors
    from gateway.client import checkpoints as shown

    try:
        with handled():
            supplied = [] if checkpoint is None else shown.read_checkpoint_file(checkpoint)
            key = shown.read_public_key_file(public_key)
        result = anchors.verify(_engine(), _settings(), _actor(), supplied, key)
    except GatewayError as e:
        _fail(str(e))
    shown.report_verification(result, gw.as_json)


@audit_app.command("export")
@gateway_options(json=False)
def audit_export(
    ctx: typer.Context,
    dataset: Annotated[list[str] | None, typer.Option(help="only events about it")] = None,
    since: Annotated[datetime | None, typer.Option(help="only events from then on")] = None,
    checkpoints: Annotated[
        bool,
        typer.Option("--checkpoints", help='then the signed checkpoints ("kind": "checkpoint")'),
    ] = False,
    local: remote.Local = False,
) -> None:
    """Write events as JSON Lines to standard output (with --checkpoints, then the
    signed checkpoints of the chain's head, one line each)."""
    gw = client_context(ctx)
    if remote.remote(local, gw):
        return remote.audit_export(dataset, since, gw, checkpoints)
    from gateway.audit import append, export_jsonl
    from gateway.audit.checkpoints import export_jsonl as export_checkpoints
    from gateway.store import read_transaction

    engine = _engine()
    when = remote.utc(since)
    with read_transaction(engine) as conn:
        written = export_jsonl(conn, sys.stdout, datasets=dataset or None, since=when)
        anchors = export_checkpoints(conn, sys.stdout, since=when) if checkpoints else None
    detail = {"events": written} | ({} if anchors is None else {"checkpoints": anchors})
    with engine.begin() as conn:
        append(conn, "audit.exported", _actor(), datasets=dataset or (), detail=detail)


@audit_app.command("checkpoint")
@gateway_options
def audit_checkpoint(ctx: typer.Context, local: remote.Local = False) -> None:
    """Sign the audit chain's head now, if it moved since the last checkpoint
    (administrators and auditors)."""
    from gateway.client import checkpoints as shown

    gw = client_context(ctx)
    if remote.remote(local, gw):
        return shown.checkpoint(gw)
    from gateway.audit import local as anchors

    try:
        made = anchors.checkpoint(_engine(), _settings())
    except GatewayError as e:
        _fail(str(e))
    shown.report_made(made, gw.as_json)


@audit_app.command("checkpoints")
@gateway_options
def audit_checkpoints(
    ctx: typer.Context,
    last: Annotated[int, typer.Option(help="the newest N", min=1, max=10_000)] = 20,
    save: SaveFile = None,
    local: remote.Local = False,
) -> None:
    """The signed checkpoints of the chain's head; --save FILE keeps the newest, for
    `dsr audit verify --checkpoint FILE` later."""
    from gateway.client import checkpoints as shown

    gw = client_context(ctx)
    if remote.remote(local, gw):
        return shown.checkpoints(gw, last, save)
    from gateway.audit import local as anchors

    try:
        found = anchors.checkpoints(_engine(), last)
    except GatewayError as e:
        _fail(str(e))
    shown.report_checkpoints(found, save, gw.as_json)


@audit_app.command("public-key")
@gateway_options(json=False)
def audit_public_key(
    ctx: typer.Context, save: SaveFile = None, local: remote.Local = False
) -> None:
    """The Ed25519 public key (PEM) that verifies the checkpoints: keep a copy."""
    from gateway.client import checkpoints as shown

    gw = client_context(ctx)
    if remote.remote(local, gw):
        return shown.public_key(gw, save)
    from gateway.audit import local as anchors

    try:
        answer = anchors.public_key(_settings())
    except GatewayError as e:
        _fail(str(e))
    shown.report_public_key(answer, save)


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
    if "DSR_GATEWAY_PRODUCT_PUBLICITY_WORKING_DAYS" not in os.environ:
        # The walkthrough registers a product in one sitting: no publicity period here
        # (a deployment keeps its working days; production refuses none).
        settings = settings.model_copy(update={"product_publicity_working_days": 0})
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
