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
from gateway.client.operators import q
from gateway.client.render import (
    Json,
    Profile,
    Server,
    Token,
    emit_json,
    fields,
    handled,
    note,
    session,
    table,
)

products_app = typer.Typer(
    help="Define, review and withdraw privacy-computing products.", no_args_is_help=True
)
create_app = typer.Typer(
    help="Define a product (it waits for a reviewer's approval).", no_args_is_help=True
)
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


def _define(
    body: dict[str, Any], server: str | None, token: str | None, profile: str | None, as_json: bool
) -> None:
    with session(server, token, profile) as api:
        made = api.post("/v1/he/products", body)
    if as_json:
        emit_json(made)
        return
    typer.echo(made["id"])
    note(f"{made['kind']} product {made['id']}: {made['state']} (a reviewer approves it)")


@create_app.command("verify")
def create_verify(
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
    server: Server = None,
    token: Token = None,
    profile: Profile = None,
    as_json: Json = False,
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
    _define(body, server, token, profile, as_json)


@create_app.command("score")
def create_score(
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
    server: Server = None,
    token: Token = None,
    profile: Profile = None,
    as_json: Json = False,
) -> None:
    """Encrypted scoring with a released linear model. Prints the new product's id."""
    body: dict[str, Any] = {
        "kind": "score", "name": name, "grant": grant, "consumers": consumer, "job": job,
        "file": file, "features": _names(features), "intercept_term": intercept_term,
        "resolution": resolution,
    }  # fmt: skip
    _define(body, server, token, profile, as_json)


@products_app.command("list")
def products_list(
    server: Server = None, token: Token = None, profile: Profile = None, as_json: Json = False
) -> None:
    """The products you have to do with (reviewers, admins and auditors: all of them)."""
    with session(server, token, profile) as api:
        found = api.get("/v1/he/products")
    if as_json:
        emit_json(found)
        return
    table(
        found,
        [("id", "ID"), ("kind", "KIND"), ("name", "NAME"), ("state", "STATE"),
         ("operator", "OPERATOR"), ("grant", "GRANT"), ("consumers", "CONSUMERS"),
         ("created_at", "CREATED (UTC)")],
    )  # fmt: skip


@products_app.command("show")
def products_show(
    product_id: str,
    server: Server = None,
    token: Token = None,
    profile: Profile = None,
    as_json: Json = False,
) -> None:
    """One product: its state, who may call it, and what it computes."""
    with session(server, token, profile) as api:
        found = api.get(f"/v1/he/products/{q(product_id)}")
    if as_json:
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
    server: str | None,
    token: str | None,
    profile: str | None,
    as_json: bool,
) -> None:
    with session(server, token, profile) as api:
        done = api.post(path, body)
    if as_json:
        emit_json(done)
        return
    typer.echo(f"product {done['id']}: {done['state']}")


@products_app.command("approve")
def products_approve(
    product_id: str,
    reason: Reason,
    server: Server = None,
    token: Token = None,
    profile: Profile = None,
    as_json: Json = False,
) -> None:
    """Approve a pending product (reviewers; not one you defined)."""
    body = {"decision": "approve", "reason": reason}
    _decide(f"/v1/he/products/{q(product_id)}/decision", body, server, token, profile, as_json)


@products_app.command("deny")
def products_deny(
    product_id: str,
    reason: Reason,
    server: Server = None,
    token: Token = None,
    profile: Profile = None,
    as_json: Json = False,
) -> None:
    """Deny a pending product (reviewers; not one you defined)."""
    body = {"decision": "deny", "reason": reason}
    _decide(f"/v1/he/products/{q(product_id)}/decision", body, server, token, profile, as_json)


@products_app.command("withdraw")
def products_withdraw(
    product_id: str,
    reason: Reason,
    server: Server = None,
    token: Token = None,
    profile: Profile = None,
    as_json: Json = False,
) -> None:
    """Withdraw one of your products: it answers no more calls."""
    body = {"reason": reason}
    _decide(f"/v1/he/products/{q(product_id)}/withdraw", body, server, token, profile, as_json)
