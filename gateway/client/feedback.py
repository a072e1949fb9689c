"""Data-quality feedback's commands (001 art. 29, 002 art. 25).

Operators: ``dsr feedback file DATASET --title T --description D --column C``
(repeat ``--column``; columns are named, values never quoted). Providers:
``dsr feedback answer ID --text T [--mark will_correct|resolved|not_an_issue]``.
Everyone concerned: ``dsr feedback list [--dataset D] [--state S]`` and
``dsr feedback show ID`` (operators their issues, providers those on their
datasets, administrators all).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gateway.client.http import q
from gateway.client.options import client_context, client_group, gateway_options
from gateway.client.render import emit_json, fields, session, table

feedback_app = client_group("Data-quality feedback: file, list, show, answer.")
COLUMNS = [("id", "ISSUE"), ("dataset", "DATASET"), ("operator", "OPERATOR"),
           ("state", "STATE"), ("title", "TITLE"), ("filed_at", "FILED (UTC)")]  # fmt: skip


def _show(issue: dict[str, Any]) -> None:
    fields(
        [(k, issue[k]) for k in ("id", "dataset", "operator", "state", "title", "filed_at")]
        + [("columns", ", ".join(issue["columns"])), ("description", issue["description"])]
    )
    for a in issue["answers"]:
        typer.echo("")
        fields([("answer", a["id"]), ("by", a["provider"]), ("state", a["state"]),
                ("at", a["at"]), ("text", a["text"])])  # fmt: skip


@feedback_app.command("file")
@gateway_options
def feedback_file(
    ctx: typer.Context,
    dataset: str,
    title: Annotated[str, typer.Option(help="one line, at most 120 characters")],
    description: Annotated[str, typer.Option(help="what is wrong, without quoting values")],
    column: Annotated[list[str] | None, typer.Option(help="a column concerned (repeat)")] = None,
) -> None:
    """File a data-quality issue on a dataset you hold or held a grant for."""
    gw = client_context(ctx)
    body = {"dataset": dataset, "title": title, "description": description,
            "columns": column or []}  # fmt: skip
    with session(gw) as api:
        made = api.post("/v1/feedback", body)
    if gw.as_json:
        emit_json(made)
        return
    typer.echo(f"issue {made['id']} filed on {made['dataset']}: {made['state']}")


@feedback_app.command("list")
@gateway_options
def feedback_list(
    ctx: typer.Context,
    dataset: Annotated[str | None, typer.Option(help="only this dataset's")] = None,
    state: Annotated[str | None, typer.Option(help="open, answered, will_correct, ...")] = None,
) -> None:
    """Your issues (operators), those on your datasets (providers), all (administrators)."""
    gw = client_context(ctx)
    with session(gw) as api:
        found = api.get("/v1/feedback", dataset=dataset, state=state)
    if gw.as_json:
        emit_json(found)
        return
    table(found, COLUMNS)


@feedback_app.command("show")
@gateway_options
def feedback_show(ctx: typer.Context, issue_id: str) -> None:
    """One issue with its answers."""
    gw = client_context(ctx)
    with session(gw) as api:
        found = api.get(f"/v1/feedback/{q(issue_id)}")
    if gw.as_json:
        emit_json(found)
        return
    _show(found)


@feedback_app.command("answer")
@gateway_options
def feedback_answer(
    ctx: typer.Context,
    issue_id: str,
    text: Annotated[str, typer.Option(help="the answer, without quoting values")],
    mark: Annotated[str | None, typer.Option(help="will_correct, resolved or not_an_issue")] = None,
) -> None:
    """Answer an issue on a dataset you provide (providers)."""
    gw = client_context(ctx)
    with session(gw) as api:
        done = api.post(f"/v1/feedback/{q(issue_id)}/answers", {"text": text, "mark": mark})
    if gw.as_json:
        emit_json(done)
        return
    typer.echo(f"issue {done['id']}: {done['state']}")
