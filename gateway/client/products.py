"""``dsr products``: data products and their registration (registration measures 001).

- operators: ``apply`` (a first registration of a released job or an approved
  privacy-computing product; ``--type change/correction/cancellation`` of a
  registered product), ``applications``, ``renew`` (in the 60 days before expiry);
- administrators, the registration body: ``accept``, ``review``, ``publicise``,
  ``register``, ``refuse``, ``resolve`` (an objection), ``revoke``;
- every signed-in role but consumers: ``list``, ``show``, ``application``,
  ``object`` (during publicity).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from gateway.client.http import q
from gateway.client.options import client_context, client_group, gateway_options
from gateway.client.pricing import json_object
from gateway.client.render import emit_json, fields, note, session, table

products_app = client_group(
    "Data products: apply for registration, the registration body's steps, list, renew."
)


class Category(StrEnum):  # the values of gateway.products.model.Category
    PUBLIC_GOVERNANCE = "public_governance"
    INDUSTRY_DEVELOPMENT = "industry_development"


class Kind(StrEnum):  # the values of gateway.products.model.Kind
    FIRST = "first"
    CHANGE = "change"
    CORRECTION = "correction"
    CANCELLATION = "cancellation"


class Step(StrEnum):  # the administrators' steps that need no body
    ACCEPT = "accept"
    REVIEW = "review"
    PUBLICISE = "publicise"
    REGISTER = "register"


APPLICATION_COLUMNS = [
    ("id", "ID"), ("type", "TYPE"), ("state", "STATE"), ("name", "NAME"),
    ("applicant", "APPLICANT"), ("applied_at", "APPLIED (UTC)"),
    ("publicity_ends_at", "PUBLICITY ENDS (UTC)"), ("product", "PRODUCT"),
]  # fmt: skip


def _show_application(found: dict[str, Any]) -> None:
    subject = found["job"] or found["he_product"] or found["product"]
    fields(
        [
            ("id", found["id"]), ("type", found["type"]), ("state", found["state"]),
            ("of", subject), ("name", found["name"]), ("category", found["category"]),
            ("applicant", found["applicant"]), ("applied", found["applied_at"]),
            ("publicity ends", found["publicity_ends_at"]), ("product", found["product"]),
            ("refused because", found["refusal_reason"]),
            ("legal basis", found["refusal_basis"]),
        ]
    )  # fmt: skip
    if found["objections"]:
        typer.echo("\nobjections:")
        table(found["objections"], [("id", "ID"), ("objector", "BY"), ("state", "STATE"),
                                    ("reasons", "REASONS")])  # fmt: skip


def _post_application(ctx: typer.Context, path: str, body: dict[str, Any] | None = None) -> None:
    gw = client_context(ctx)
    with session(gw) as api:
        done = api.post(path, body)
    if gw.as_json:
        emit_json(done)
        return
    _show_application(done)


@products_app.command("apply")
@gateway_options
def products_apply(
    ctx: typer.Context,
    kind: Annotated[Kind, typer.Option("--type", help="the registration type")] = Kind.FIRST,
    job: Annotated[str | None, typer.Option("--job", help="your released job")] = None,
    he_product: Annotated[
        str | None, typer.Option("--he-product", help="your approved HE product")
    ] = None,
    product: Annotated[
        str | None, typer.Option("--product", help="your registered product")
    ] = None,
    name: Annotated[str | None, typer.Option("--name")] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    category: Annotated[Category | None, typer.Option("--category")] = None,
    statement: Annotated[str, typer.Option("--statement", help="why (change etc.)")] = "",
    price_class: Annotated[
        str | None,
        typer.Option("--price-class", help="free, conditionally_free, guided, cost_plus"),
    ] = None,
    price_basis: Annotated[
        str | None, typer.Option("--price-basis", help="its basis, JSON (dsr products price)")
    ] = None,
) -> None:
    """Apply for a registration. Prints the application."""
    body: dict[str, Any] = {"type": kind.value, "statement": statement}
    if price_class is not None:  # gateway.pricing: an industry product names its class
        body["price_class"] = price_class
        body["price_basis"] = json_object("--price-basis", price_basis or "{}")
    named = {
        "job": job,
        "he_product": he_product,
        "product": product,
        "name": name,
        "description": description,
        "category": category.value if category else None,
    }
    body |= {k: v for k, v in named.items() if v is not None}  # fmt: skip
    gw = client_context(ctx)
    with session(gw) as api:
        made = api.post("/v1/products/registrations", body)
    if gw.as_json:
        emit_json(made)
        return
    typer.echo(made["id"])  # alone on stdout, for scripts: REG=$(dsr products apply ...)
    subject = made["job"] or made["he_product"] or made["product"]
    note(f"{made['type']} registration of {subject}: {made['state']}; next, the registration "
         "body accepts it (dsr products step accept)")  # fmt: skip


@products_app.command("applications")
@gateway_options
def products_applications(ctx: typer.Context) -> None:
    """The registration applications you may see (yours; all for administrators)."""
    gw = client_context(ctx)
    with session(gw) as api:
        found = api.get("/v1/products/registrations")
    if gw.as_json:
        emit_json(found)
        return
    table(found, APPLICATION_COLUMNS)


@products_app.command("application")
@gateway_options
def products_application(ctx: typer.Context, registration_id: str) -> None:
    """One application, with its objections."""
    gw = client_context(ctx)
    with session(gw) as api:
        found = api.get(f"/v1/products/registrations/{q(registration_id)}")
    if gw.as_json:
        emit_json(found)
        return
    _show_application(found)


@products_app.command("step")
@gateway_options
def products_step(ctx: typer.Context, step: Step, registration_id: str) -> None:
    """Administrators: accept, review (formal review), publicise or register an application."""
    _post_application(ctx, f"/v1/products/registrations/{q(registration_id)}/{step.value}")


@products_app.command("refuse")
@gateway_options
def products_refuse(
    ctx: typer.Context,
    registration_id: str,
    reason: Annotated[str, typer.Option("--reason")],
    basis: Annotated[str, typer.Option("--basis", help="the legal basis")],
) -> None:
    """Administrators: refuse an application, with the reason and its legal basis."""
    body = {"reason": reason, "legal_basis": basis}
    _post_application(ctx, f"/v1/products/registrations/{q(registration_id)}/refuse", body)


@products_app.command("object")
@gateway_options
def products_object(
    ctx: typer.Context, registration_id: str, reasons: Annotated[str, typer.Option("--reasons")]
) -> None:
    """Object to an application in publicity. Prints the objection's id."""
    gw = client_context(ctx)
    with session(gw) as api:
        done = api.post(
            f"/v1/products/registrations/{q(registration_id)}/objections", {"reasons": reasons}
        )
    if gw.as_json:
        emit_json(done)
        return
    typer.echo(done["id"])


@products_app.command("resolve")
@gateway_options
def products_resolve(
    ctx: typer.Context,
    objection_id: str,
    uphold: Annotated[bool, typer.Option("--uphold/--dismiss", help="uphold refuses")],
    reason: Annotated[str, typer.Option("--reason")],
    basis: Annotated[str, typer.Option("--basis", help="legal basis (when upheld)")] = "",
) -> None:
    """Administrators: resolve an objection once."""
    gw = client_context(ctx)
    body = {"decision": "uphold" if uphold else "dismiss", "reason": reason, "legal_basis": basis}
    with session(gw) as api:
        done = api.post(f"/v1/products/objections/{q(objection_id)}/resolve", body)
    if gw.as_json:
        emit_json(done)
        return
    typer.echo(f"objection {done['id']}: {done['state']}")


@products_app.command("list")
@gateway_options
def products_list(
    ctx: typer.Context,
    status: Annotated[str, typer.Option("--status", help="registered (default), ..., all")] = (
        "registered"
    ),
) -> None:
    """The registered products, with their codes and validity."""
    gw = client_context(ctx)
    with session(gw) as api:
        found = api.get("/v1/products", status=status)
    if gw.as_json:
        emit_json(found)
        return
    table(
        found,
        [("id", "ID"), ("registration_code", "CODE"), ("status", "STATUS"), ("name", "NAME"),
         ("category", "CATEGORY"), ("operator", "OPERATOR"),
         ("valid_until", "VALID UNTIL (UTC)")],
    )  # fmt: skip


@products_app.command("show")
@gateway_options
def products_show(ctx: typer.Context, product_id: str) -> None:
    """One product: its registration and what it pins (code, data and policy versions)."""
    gw = client_context(ctx)
    with session(gw) as api:
        found = api.get(f"/v1/products/{q(product_id)}")
    if gw.as_json:
        emit_json(found)
        return
    fields(
        [
            ("id", found["id"]), ("registration code", found["registration_code"]),
            ("status", found["status"]), ("name", found["name"]),
            ("category", found["category"]), ("operator", found["operator"]),
            ("job", found["job"]), ("HE product", found["he_product"]),
            ("grant", found["grant"]),
            ("datasets", [f"{k}@{v}" for k, v in found["dataset_versions"].items()]),
            ("policies", [f"{k}@{v}" for k, v in found["policy_versions"].items()]),
            ("code sha256", found["code_sha256"]),
            ("manifest sha256", found["manifest_sha256"]),
            ("registered", found["registered_at"]), ("renewed", found["renewed_at"]),
            ("valid until", found["valid_until"]), ("status reason", found["status_reason"]),
        ]
    )  # fmt: skip
    typer.echo(f"\n{found['description']}")
    if found["manifest"]:
        typer.echo("\noutputs:")
        table(found["manifest"], [("file", "FILE"), ("sha256", "SHA256"), ("bytes", "BYTES")])


@products_app.command("renew")
@gateway_options
def products_renew(ctx: typer.Context, product_id: str) -> None:
    """Renew your product's registration, in the 60 days before it expires."""
    gw = client_context(ctx)
    with session(gw) as api:
        done = api.post(f"/v1/products/{q(product_id)}/renew")
    if gw.as_json:
        emit_json(done)
        return
    typer.echo(f"product {done['id']}: valid until {done['valid_until']}")


@products_app.command("revoke")
@gateway_options
def products_revoke(
    ctx: typer.Context,
    product_id: str,
    reason: Annotated[str, typer.Option("--reason")],
    basis: Annotated[str, typer.Option("--basis", help="the legal basis")],
) -> None:
    """Administrators: revoke a registration obtained by fraud (art. 21)."""
    gw = client_context(ctx)
    with session(gw) as api:
        done = api.post(
            f"/v1/products/{q(product_id)}/revoke", {"reason": reason, "legal_basis": basis}
        )
    if gw.as_json:
        emit_json(done)
        return
    typer.echo(f"product {done['id']}: {done['status']}")
