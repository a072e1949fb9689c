"""``dsr sweep``: run the sweep once, for cron, and print what it did.

The rule of the commands that work both ways (``gateway.client.admin``): it
calls the gateway (``POST /v1/admin/sweep``, an administrator's token) when one
is named (``--server``, ``DSR_SERVER`` or the config file), and otherwise opens
the local store from the gateway's settings (``DSR_GATEWAY_*``), as ``dsr audit
verify --local`` does, with the services ``create_app`` would build; ``--local``
forces the store. Exit code 1 when a task failed (cron mails it), 0 otherwise.

The store's modules are imported only when the local store is opened, so the
REST-client commands of ``dsr`` start without them.
"""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING, Any

import typer

from gateway.client.admin import Local, remote
from gateway.client.options import client_context, gateway_options
from gateway.client.render import emit_json, session
from gateway.errors import GatewayError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from gateway.settings import GatewaySettings
    from gateway.sweep.tasks import SweepContext


def local_context(settings: GatewaySettings, engine: Engine) -> SweepContext:
    """The sweep's context over the local store, its services built as ``create_app``
    builds them (the grant service with the same suspension hooks), at the system's time."""
    from gateway.grants.service import build_grant_service
    from gateway.he.model import suspend_grant_products
    from gateway.jobs.service import cancel_queued_for_grant
    from gateway.store.lifecycle import system_clock
    from gateway.sweep.tasks import SweepContext
    from gateway.workdays import CALENDAR_FILE, Calendar
    from sandbox.intake.registry import Registry

    grants = build_grant_service(
        settings,
        engine,
        Registry(settings.data_dir),
        on_suspend=(cancel_queued_for_grant, suspend_grant_products),
    )
    return SweepContext(
        engine=engine,
        settings=settings,
        grants=grants,
        calendar=Calendar.from_file(settings.calendar_file or settings.data_dir / CALENDAR_FILE),
        now=system_clock(),
    )


def _sweep_locally() -> dict[str, Any]:
    from gateway.settings import GatewaySettings
    from gateway.store import make_engine, migrate
    from gateway.sweep.run import run_sweep
    from gateway.sweep.tasks import tasks

    try:
        settings = GatewaySettings()
    except ValueError as e:
        typer.echo(f"dsr: bad gateway settings: {e}", err=True)
        raise typer.Exit(2) from None
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.database_url)
        try:
            migrate(engine)
            ctx = local_context(settings, engine)
            return run_sweep(ctx, tasks(), actor=f"local:{getpass.getuser()}").as_dict()
        finally:
            engine.dispose()
    except GatewayError as e:  # the store cannot be opened: nothing was swept
        typer.echo(f"dsr: {e}", err=True)
        raise typer.Exit(1) from None


@gateway_options
def sweep(ctx: typer.Context, local: Local = False) -> None:
    """Run the sweep once now (for cron): expire grants past their term and destroy
    their copies, send the notices due, and the other tasks; print what it did."""
    gw = client_context(ctx)
    if remote(local, gw):
        with session(gw) as api:
            result = api.post("/v1/admin/sweep")
    else:
        result = _sweep_locally()
    if gw.as_json:
        emit_json(result)
    else:
        for line in result["lines"]:
            typer.echo(line)
        for name, failure in result["failures"].items():
            typer.echo(f"dsr: task {name} failed: {failure}", err=True)
        done = len(result["lines"])
        typer.echo(f"sweep at {result['at']}: {done} thing(s) done", err=True)
    if result["failures"]:
        raise typer.Exit(1)
