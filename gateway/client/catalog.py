"""Operators' view of the catalogue: the views of the grants they hold.

``dsr catalog list/show`` read the views' schemas (names, types, column
classes, visibility) and ``dsr catalog dummy`` downloads a view's dummy data:
schema-faithful synthetic rows, never a real value.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from gateway.client.http import q, save
from gateway.client.options import client_context, client_group, gateway_options
from gateway.client.render import emit_json, fields, session, table

catalog_app = client_group("The views of your grants: schemas and dummy data.")

GrantOpt = Annotated[
    str | None, typer.Option("--grant", help="the grant, when several hold the view")
]
VIEW_COLUMNS = [("grant", "GRANT"), ("name", "VIEW"), ("dataset", "DATASET"), ("k", "K")]


@catalog_app.command("list")
@gateway_options
def catalog_list(
    ctx: typer.Context,
    grant: Annotated[str | None, typer.Option("--grant", help="only this grant's views")] = None,
) -> None:
    """The views of every active grant you hold."""
    gw = client_context(ctx)
    with session(gw) as api:
        views = api.get("/v1/catalog", grant=grant)
    if gw.as_json:
        emit_json(views)
        return
    rows = [{**v, "columns": len(v["columns"])} for v in views]
    table(rows, [*VIEW_COLUMNS, ("columns", "COLUMNS"), ("policy_version", "POLICY")])


@catalog_app.command("show")
@gateway_options
def catalog_show(ctx: typer.Context, view: str, grant: GrantOpt = None) -> None:
    """A view's columns: names, types, column classes, visibility."""
    gw = client_context(ctx)
    with session(gw) as api:
        found = api.get(f"/v1/catalog/{q(view)}", grant=grant)
    if gw.as_json:
        emit_json(found)
        return
    fields(
        [
            ("view", found["name"]),
            ("grant", found["grant"]),
            ("dataset", f"{found['dataset']} (version {found['dataset_version']})"),
            ("policy", found["policy_version"]),
            ("entity", f"{found['entity_column']} (pseudonymised)"),
            ("k", found["k"]),
        ]
    )
    typer.echo("")
    table(
        found["columns"],
        [
            ("name", "COLUMN"),
            ("type", "TYPE"),
            ("column_class", "CLASS"),
            ("level", "LEVEL"),
            ("visibility", "VISIBILITY"),
            ("generalised", "GENERALISED"),
        ],
    )


class Format(StrEnum):
    PARQUET = "parquet"
    CSV = "csv"


@catalog_app.command("dummy")
@gateway_options(json=False)
def catalog_dummy(
    ctx: typer.Context,
    view: str,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="where to write (default: VIEW.FORMAT)")
    ] = None,
    fmt: Annotated[
        Format | None,
        typer.Option("--format", help="parquet or csv (default: -o's suffix, else parquet)"),
    ] = None,
    grant: GrantOpt = None,
) -> None:
    """Download dummy data for a view: schema-faithful synthetic rows, never real ones."""
    chosen = fmt or (Format.CSV if output and output.suffix.lower() == ".csv" else Format.PARQUET)
    target = output or Path(f"{view}.{chosen.value}")
    with session(client_context(ctx)) as api:
        content = api.download(f"/v1/catalog/{q(view)}/dummy", grant=grant, format=chosen.value)
        save(target, content)
    typer.echo(f"wrote {target} ({len(content):,} bytes of dummy data, {chosen.value})")
