"""``dsr he products``: operators define privacy-computing products, reviewers decide.

An operator defines a product under one of their grants (``create verify``:
a band or yes/no over one granted column; ``create score``: a linear model
released by one of their jobs) and names the consumer accounts it is
offered to; it waits for a reviewer (not its definer) to ``approve`` or
``deny`` it, with a reason, and then answers calls (``dsr he verify`` /
``dsr he score``) until the operator ``withdraw``-s it or its grant ends.
Everyone lists and reads the products they have to do with; consumers see
no coefficients and no subjects.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from gateway.client.errors import UsageError
from gateway.client.http import q
from gateway.client.options import ClientContext, client_context, client_group, gateway_options
from gateway.client.render import emit_json, fields, handled, note, session, table

products_app = client_group("Define, review and withdraw privacy-computing products.")
create_app = client_group("Define a product (it waits for a reviewer's approval).")
products_app.add_typer(create_app, name="create")

Name = Annotated[str, typer.Option("--name", help="the product's name")]
Grant = Annotated[str, typer.Option("--grant", help="the grant it serves under (yours)")]
Consumers = Annotated[
    list[str], typer.Option("--consumer", help="a consumer account it is offered to (repeat)")
]
Reason = Annotated[str, typer.Option("--reason", help="why (recorded in the audit log)")]


def _numbers(text: str, what: str) -> list[float]:
    with handled():
        try:
            return [float(x) for x in text.split(",") if x.strip()]
        except ValueError as e:
            raise UsageError(f"{what} are numbers separated by commas: {e}") from e


def _names(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _define(body: dict[str, Any], gw: ClientContext) -> None:
    with session(gw) as api:
        made = api.post("/v1/he/products", body)
    if gw.as_json:
        emit_json(made)
        return
    typer.echo(made["id"])
    note(f"{made['kind']} product {made['id']}: {made['state']} (a reviewer approves it)")


@create_app.command("verify")
@gateway_options
def create_verify(
    ctx: typer.Context,
    name: Name,
    grant: Grant,
    dataset: Annotated[str, typer.Option("--dataset", help="the dataset of the grant")],
    value_column: Annotated[str, typer.Option("--value-column", help="the column answered on")],
    consumer: Consumers,
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="yes/no: is the value at or above it")
    ] = None,
    boundaries: Annotated[
        str | None,
        typer.Option("--boundaries", help="bands: increasing boundaries, e.g. 1000,5000,20000"),
    ] = None,
    subject_column: Annotated[
        str | None,
        typer.Option("--subject-column", help="the key of a subject [default: the entity column]"),
    ] = None,
) -> None:
    """Encrypted verification: does the record put a subject in the claimed band?
    Prints the new product's id."""
    with handled():
        if (threshold is None) == (boundaries is None):
            raise UsageError("give exactly one of --threshold and --boundaries")
    body: dict[str, Any] = {
        "kind": "verify", "name": name, "grant": grant, "consumers": consumer,
        "dataset": dataset, "value_column": value_column, "subject_column": subject_column,
    }  # fmt: skip
    if threshold is not None:
        body["threshold"] = threshold
    else:
        body["boundaries"] = _numbers(boundaries or "", "boundaries")
    _define(body, client_context(ctx))


@create_app.command("score")
@gateway_options
def create_score(
    ctx: typer.Context,
    name: Name,
    grant: Grant,
    job: Annotated[str, typer.Option("--job", help="your released job that published the model")],
    file: Annotated[str, typer.Option("--file", help="the model's file among the job's outputs")],
    features: Annotated[
        str, typer.Option("--features", help="the model's terms, comma-separated, in call order")
    ],
    consumer: Consumers,
    intercept_term: Annotated[
        str | None, typer.Option("--intercept-term", help="the model's intercept term")
    ] = None,
    resolution: Annotated[
        float | None,
        typer.Option("--resolution", min=0, max=1, help="round the score to this step"),
    ] = None,
) -> None:
    """Encrypted scoring with a released linear model. Prints the new product's id."""
    body: dict[str, Any] = {
        "kind": "score", "name": name, "grant": grant, "consumers": consumer, "job": job,
        "file": file, "features": _names(features), "intercept_term": intercept_term,
        "resolution": resolution,
    }  # fmt: skip
    _define(body, client_context(ctx))


@products_app.command("list")
@gateway_options
def products_list(ctx: typer.Context) -> None:
    """The products you have to do with (reviewers, admins and auditors: all of them)."""
    gw = client_context(ctx)
    with session(gw) as api:
        found = api.get("/v1/he/products")
    if gw.as_json:
        emit_json(found)
        return
    table(
        found,
        [("id", "ID"), ("kind", "KIND"), ("name", "NAME"), ("state", "STATE"),
         ("operator", "OPERATOR"), ("grant", "GRANT"), ("consumers", "CONSUMERS"),
         ("created_at", "CREATED (UTC)")],
    )  # fmt: skip


@products_app.command("show")
@gateway_options
def products_show(ctx: typer.Context, product_id: str) -> None:
    """One product: its state, who may call it, and what it computes."""
    gw = client_context(ctx)
    with session(gw) as api:
        found = api.get(f"/v1/he/products/{q(product_id)}")
    if gw.as_json:
        emit_json(found)
        return
    # A consumer's view has no operator, grant or history: show what there is.
    why = found.get("state_reason")
    state = found["state"] + (f" ({why})" if why else "")
    spec = [
        (f"spec {k}", json.dumps(v, ensure_ascii=False) if isinstance(v, dict) else v)
        for k, v in found["spec"].items()
        if v is not None
    ]
    more = [("operator", "operator"), ("grant", "grant"), ("datasets", "datasets"),
            ("consumers", "consumers"), ("created", "created_at"),
            ("state changed", "state_changed_at")]  # fmt: skip
    fields(
        [
            ("id", found["id"]),
            ("kind", found["kind"]),
            ("name", found["name"]),
            ("state", state),
            *[(label, found[key]) for label, key in more if key in found],
            *spec,
        ]
    )


def _decide(
    path: str,
    body: dict[str, str],
    gw: ClientContext,
) -> None:
    with session(gw) as api:
        done = api.post(path, body)
    if gw.as_json:
        emit_json(done)
        return
    typer.echo(f"product {done['id']}: {done['state']}")


@products_app.command("approve")
@gateway_options
def products_approve(ctx: typer.Context, product_id: str, reason: Reason) -> None:
    """Approve a pending product (reviewers; not one you defined)."""
    body = {"decision": "approve", "reason": reason}
    _decide(f"/v1/he/products/{q(product_id)}/decision", body, client_context(ctx))


@products_app.command("deny")
@gateway_options
def products_deny(ctx: typer.Context, product_id: str, reason: Reason) -> None:
    """Deny a pending product (reviewers; not one you defined)."""
    body = {"decision": "deny", "reason": reason}
    _decide(f"/v1/he/products/{q(product_id)}/decision", body, client_context(ctx))


@products_app.command("withdraw")
@gateway_options
def products_withdraw(ctx: typer.Context, product_id: str, reason: Reason) -> None:
    """Withdraw one of your products: it answers no more calls."""
    body = {"reason": reason}
    _decide(f"/v1/he/products/{q(product_id)}/withdraw", body, client_context(ctx))
