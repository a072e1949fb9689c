"""Security reviewers' commands: the queue of held and blocked jobs, the evidence
with the values, and votes with a written reason (``approve``/``deny --reason``).

A held job needs one approval, a blocked one two reviewers; nobody reviews a
job they submitted. Opening the evidence (``reviews show``) is audited.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gateway.client.http import q
from gateway.client.options import ClientContext, client_context, client_group, gateway_options
from gateway.client.render import emit_json, fields, session, table

reviews_app = client_group("Review held outputs: list, show, approve, deny.")
Reason = Annotated[str, typer.Option(help="why (at least 5 characters; recorded)")]
PREVIEW_LINES = 20


@reviews_app.command("list")
@gateway_options
def reviews_list(ctx: typer.Context) -> None:
    """Jobs waiting for review (not your own)."""
    gw = client_context(ctx)
    with session(gw) as api:
        found = api.get("/v1/reviews")
    if gw.as_json:
        emit_json(found)
        return
    rows = [{**r, "votes": f"{r['approvals']}/{r['required']}"} for r in found]
    table(
        rows,
        [("job", "JOB"), ("operator", "OPERATOR"), ("kind", "KIND"), ("state", "STATE"),
         ("verdict", "VERDICT"), ("rules", "RULES"), ("votes", "APPROVALS"),
         ("finished_at", "FINISHED (UTC)")],
    )  # fmt: skip


@reviews_app.command("show")
@gateway_options
def reviews_show(
    ctx: typer.Context,
    job_id: str,
    full: Annotated[bool, typer.Option("--full", help="print every line of each file")] = False,
    page: Annotated[int, typer.Option("--page", min=1, help="which page of findings")] = 1,
) -> None:
    """The evidence of a held job: findings with their places, the code, the files."""
    gw = client_context(ctx)
    with session(gw) as api:
        found = api.get(f"/v1/reviews/{q(job_id)}", page=page)
    if gw.as_json:
        emit_json(found)
        return
    fields(
        [
            ("job", found["job"]),
            ("operator", found["operator"]),
            ("grant", found["grant"]),
            ("state", f"{found['state']} ({found['outcome']})"),
            ("review", f"{found['review_state']}, {found['approvals']}/{found['required']}"),
            ("policies", [f"{k}@{v}" for k, v in found["policy_versions"].items()]),
            ("code sha256", found["code_sha256"]),
        ]
    )
    listed, total = len(found["findings"]), found.get("findings_total", len(found["findings"]))
    more = f", page {found['page']} of {found['pages']}" if found.get("pages", 1) > 1 else ""
    typer.echo(f"\nfindings (showing {listed:,} of {total:,}{more}):")
    table(
        [_finding(f) for f in found["findings"]],
        [("verdict", "VERDICT"), ("rule", "RULE"), ("where", "WHERE"), ("message", "MESSAGE")],
    )
    if found["votes"]:
        typer.echo("\nvotes:")
        table(found["votes"], [("reviewer", "REVIEWER"), ("decision", "DECISION"),
                               ("reason", "REASON"), ("at", "AT (UTC)")])  # fmt: skip
    typer.echo(f"\ncode ({found['kind']}):")
    typer.echo(found["code"].rstrip("\n"))
    for f in found["files"]:
        typer.echo(f"\nfile {f['file']} (sha256 {f['sha256'][:16]}..., {f.get('encoding')}):")
        lines = str(f.get("content") or "").splitlines()
        shown = lines if full else lines[:PREVIEW_LINES]
        for line in shown:
            typer.echo(f"  {line}")
        if len(shown) < len(lines):
            typer.echo(f"  ... {len(lines) - len(shown)} more lines (--full shows them)")


def _finding(f: dict[str, Any]) -> dict[str, Any]:
    where = "/".join(str(f[k]) for k in ("file", "row", "column") if f.get(k) is not None)
    return {**f, "where": where or None}


def _vote(
    decision: str,
    job_id: str,
    reason: str,
    gw: ClientContext,
) -> None:
    with session(gw) as api:
        done = api.post(f"/v1/reviews/{q(job_id)}/votes", {"decision": decision, "reason": reason})
    if gw.as_json:
        emit_json(done)
        return
    typer.echo(
        f"job {done['job']}: {done['job_state']} (review {done['review_state']}, "
        f"{done['approvals']}/{done['required']} approvals)"
    )


@reviews_app.command("approve")
@gateway_options
def reviews_approve(ctx: typer.Context, job_id: str, reason: Reason) -> None:
    """Approve the release of a held job, with a written reason."""
    _vote("approve", job_id, reason, client_context(ctx))


@reviews_app.command("deny")
@gateway_options
def reviews_deny(ctx: typer.Context, job_id: str, reason: Reason) -> None:
    """Deny the release of a held job, with a written reason."""
    _vote("deny", job_id, reason, client_context(ctx))
