"""``dsr products``: data products, the registration of released jobs.

An operator registers one of their released jobs as a product (``register``:
a name, a description and a category); the gateway gives it a registration
code and a term of validity, pins the code, dataset and policy versions and
the outputs' manifest, and the operator ``renew``-s it before the term ends.
Every signed-in role lists and reads the products.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from gateway.client.http import q
from gateway.client.options import client_context, client_group, gateway_options
from gateway.client.render import emit_json, fields, session, table

products_app = client_group("Data products: register released jobs, list, show, renew.")


class Category(StrEnum):  # the values of gateway.products.service.Category
    PUBLIC_GOVERNANCE = "public_governance"
    INDUSTRY_DEVELOPMENT = "industry_development"


@products_app.command("register")
@gateway_options
def products_register(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="JOB", help="your released job")],
    name: Annotated[str, typer.Option("--name", help="the product's name")],
    description: Annotated[str, typer.Option("--description", help="what it is, for whom")],
    category: Annotated[Category, typer.Option("--category", help="its kind of use")],
) -> None:
    """Register a released job as a data product. Prints the product's id."""
    gw = client_context(ctx)
    body = {
        "job": job_id, "name": name, "description": description, "category": category.value,
    }  # fmt: skip
    with session(gw) as api:
        made = api.post("/v1/products", body)
    if gw.as_json:
        emit_json(made)
        return
    typer.echo(made["id"])
    typer.echo(
        f"registration code {made['registration_code']}, valid until {made['valid_until']}",
        err=True,
    )


@products_app.command("list")
@gateway_options
def products_list(ctx: typer.Context) -> None:
    """Every registered data product."""
    gw = client_context(ctx)
    with session(gw) as api:
        found = api.get("/v1/products")
    if gw.as_json:
        emit_json(found)
        return
    table(
        found,
        [("id", "ID"), ("registration_code", "CODE"), ("name", "NAME"),
         ("category", "CATEGORY"), ("operator", "OPERATOR"), ("job", "JOB"),
         ("valid_until", "VALID UNTIL (UTC)")],
    )  # fmt: skip


@products_app.command("show")
@gateway_options
def products_show(ctx: typer.Context, product_id: str) -> None:
    """One data product: what it pins (code, data and policy versions, outputs)."""
    gw = client_context(ctx)
    with session(gw) as api:
        found = api.get(f"/v1/products/{q(product_id)}")
    if gw.as_json:
        emit_json(found)
        return
    fields(
        [
            ("id", found["id"]),
            ("registration code", found["registration_code"]),
            ("name", found["name"]),
            ("category", found["category"]),
            ("operator", found["operator"]),
            ("job", found["job"]),
            ("grant", found["grant"]),
            ("datasets", [f"{k}@{v}" for k, v in found["dataset_versions"].items()]),
            ("policies", [f"{k}@{v}" for k, v in found["policy_versions"].items()]),
            ("code sha256", found["code_sha256"]),
            ("manifest sha256", found["manifest_sha256"]),
            ("registered", found["registered_at"]),
            ("renewed", found["renewed_at"]),
            ("valid until", found["valid_until"]),
        ]
    )
    typer.echo(f"\n{found['description']}")
    typer.echo("\noutputs:")
    table(found["manifest"], [("file", "FILE"), ("sha256", "SHA256"), ("bytes", "BYTES")])


@products_app.command("renew")
@gateway_options
def products_renew(ctx: typer.Context, product_id: str) -> None:
    """Renew one of your data products for another term."""
    gw = client_context(ctx)
    with session(gw) as api:
        done = api.post(f"/v1/products/{q(product_id)}/renew")
    if gw.as_json:
        emit_json(done)
        return
    typer.echo(f"product {done['id']}: valid until {done['valid_until']}")
