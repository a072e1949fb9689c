"""Providers' commands: datasets, exposure policies, grants, the emergency stop.

``dsr datasets register FILE --name N --entity-column C`` uploads a CSV or
Parquet file (streamed); ``policies apply DATASET POLICY.yaml`` applies an
exposure policy (a refused policy lists every problem with its line);
``policies show/versions/diff``; ``grants list/show/suspend/resume/revoke``
(providers govern grants on their datasets, administrators every grant;
``suspend`` places the caller's own stop and ``resume`` lifts only that: a
grant is active again when nobody holds one; ``list`` and ``show`` say who
does); ``dsr emergency-stop DATASET`` (administrators) places the
administrators' stop on every live grant on a dataset at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.client.errors import UsageError
from gateway.client.http import q
from gateway.client.options import ClientContext, client_context, client_group, gateway_options
from gateway.client.render import emit_json, fields, handled, session, table

datasets_app = client_group("Datasets you provide: register, list, show.")
policies_app = client_group("Exposure policies of your datasets.")
grants_app = client_group("Grants: list, show, suspend, resume, revoke.")
Reason = Annotated[str, typer.Option(help="why (recorded in the audit log)")]
RectifyDays = Annotated[
    int | None,
    typer.Option(help="rectification deadline in working days (a termination is proposed "
                 "when it passes with the stop still placed; 004 art. 33)"),
]  # fmt: skip


# -- datasets ---------------------------------------------------------------------------


@datasets_app.command("register")
@gateway_options
def datasets_register(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="a CSV or Parquet file", dir_okay=False)],
    name: Annotated[str, typer.Option(help="the dataset's name (lowercase, digits, _)")],
    entity_column: Annotated[str, typer.Option(help="the column naming the data subject")],
    encoding: Annotated[str | None, typer.Option(help="the CSV's encoding")] = None,
    delimiter: Annotated[str | None, typer.Option(help="the CSV's delimiter")] = None,
    source_format: Annotated[
        str | None, typer.Option("--format", help="csv or parquet, if the suffix does not say")
    ] = None,
) -> None:
    """Register a file as a new version of a dataset you provide (the same bytes again
    return the stored version)."""
    gw = client_context(ctx)
    form = {"name": name, "entity_column": entity_column}
    extra = {"encoding": encoding, "delimiter": delimiter, "source_format": source_format}
    form |= {k: v for k, v in extra.items() if v}
    with session(gw) as api:
        try:
            handle = file.open("rb")
        except OSError as e:
            raise UsageError(f"cannot read {file}: {e.strerror}") from e
        with handle:
            done = api.upload("/v1/datasets", handle, file.name, form)
    if gw.as_json:
        emit_json(done)
        return
    v = done["version"]
    how = "registered" if done["created"] else "already registered (same bytes)"
    typer.echo(f"dataset {done['name']} version {v['version']}: {how}, {v['rows']:,} rows")


@datasets_app.command("list")
@gateway_options
def datasets_list(ctx: typer.Context) -> None:
    """Your datasets (administrators and auditors: all)."""
    gw = client_context(ctx)
    with session(gw) as api:
        found = api.get("/v1/datasets")
    if gw.as_json:
        emit_json(found)
        return
    rows = [{**d, "columns": len(d["columns"])} for d in found]
    table(
        rows,
        [("name", "DATASET"), ("provider", "PROVIDER"), ("newest", "NEWEST VERSION"),
         ("rows", "ROWS"), ("columns", "COLUMNS")],
    )  # fmt: skip


@datasets_app.command("show")
@gateway_options
def datasets_show(ctx: typer.Context, name: str) -> None:
    """Every version of a dataset; the newest's columns and types."""
    gw = client_context(ctx)
    with session(gw) as api:
        found = api.get(f"/v1/datasets/{q(name)}")
    if gw.as_json:
        emit_json(found)
        return
    fields([("dataset", found["name"]), ("provider", found["provider"])])
    typer.echo("")
    table(
        found["versions"],
        [("version", "VERSION"), ("rows", "ROWS"), ("entity_column", "ENTITY"),
         ("source_format", "FORMAT"), ("registered_at", "REGISTERED (UTC)")],
    )  # fmt: skip
    typer.echo("")
    table(found["versions"][-1]["columns"], [("name", "COLUMN"), ("type", "TYPE")])


# -- policies ---------------------------------------------------------------------------


@policies_app.command("apply")
@gateway_options
def policies_apply(
    ctx: typer.Context,
    dataset: str,
    policy: Annotated[Path, typer.Argument(help="the policy YAML file", dir_okay=False)],
) -> None:
    """Apply an exposure policy (YAML) to a dataset; a refused one lists its problems."""
    gw = client_context(ctx)
    with handled():
        try:
            text = policy.read_bytes()
        except OSError as e:
            raise UsageError(f"cannot read {policy}: {e.strerror}") from e
    with session(gw) as api:
        applied = api.put_text(f"/v1/datasets/{q(dataset)}/policy", text, "application/yaml")
    if gw.as_json:
        emit_json(applied)
        return
    typer.echo(f"policy of {applied['dataset']}: version {applied['version']} applied")


@policies_app.command("show")
@gateway_options
def policies_show(ctx: typer.Context, dataset: str) -> None:
    """The dataset's current policy as written (YAML)."""
    gw = client_context(ctx)
    with session(gw) as api:
        found = api.get(f"/v1/datasets/{q(dataset)}/policy")
    if gw.as_json:
        emit_json(found)
        return
    typer.echo(
        f"# policy of {found['dataset']}, version {found['version']}, by {found['author']} "
        f"at {found['applied_at']}",
        err=True,
    )
    typer.echo(found["text"], nl=not found["text"].endswith("\n"))


@policies_app.command("versions")
@gateway_options
def policies_versions(ctx: typer.Context, dataset: str) -> None:
    """Every stored version of the dataset's policy, oldest first."""
    gw = client_context(ctx)
    with session(gw) as api:
        found = api.get(f"/v1/datasets/{q(dataset)}/policy/versions")
    if gw.as_json:
        emit_json(found)
        return
    table(found, [("version", "VERSION"), ("author", "AUTHOR"), ("applied_at", "APPLIED (UTC)")])


@policies_app.command("diff")
@gateway_options
def policies_diff(
    ctx: typer.Context,
    dataset: str,
    old: Annotated[
        str | None, typer.Option("--from", help="the older version (default: the one before --to)")
    ] = None,
    new: Annotated[
        str | None, typer.Option("--to", help="the newer version (default: the latest)")
    ] = None,
) -> None:
    """A unified diff between two versions of the dataset's policy (by default, the
    latest against the one before it)."""
    gw = client_context(ctx)
    with session(gw) as api:
        if old is None or new is None:
            listed = [v["version"] for v in api.get(f"/v1/datasets/{q(dataset)}/policy/versions")]
            new = new or (listed[-1] if listed else None)
            if new is None or new not in listed:
                raise UsageError(f"{dataset} has no policy version {new or ''}".rstrip())
            at = listed.index(new)
            if old is None:
                if at == 0:
                    raise UsageError(
                        f"{new} is the first policy version of {dataset}: nothing before it"
                    )
                old = listed[at - 1]
        found = api.get(f"/v1/datasets/{q(dataset)}/policy/diff", **{"from": old, "to": new})
    if gw.as_json:
        emit_json(found)
        return
    if not found["diff"]:
        typer.echo(f"versions {old} and {new} are the same", err=True)
    typer.echo(found["diff"], nl=False)


# -- grants -----------------------------------------------------------------------------

GRANT_ROWS = [
    ("id", "GRANT"),
    ("operator", "OPERATOR"),
    ("scenario", "SCENARIO"),
    ("datasets", "DATASETS"),
    ("state", "STATE"),
    ("held_by", "STOPPED BY"),
    ("valid_until", "UNTIL (UTC)"),
]


def _held_by(g: dict[str, Any]) -> list[str]:
    return [h["held_by"] for h in g.get("holds", [])]


def _grant_row(g: dict[str, Any]) -> dict[str, Any]:
    return {**g, "datasets": [d["dataset"] for d in g["datasets"]], "held_by": _held_by(g)}


@grants_app.command("list")
@gateway_options
def grants_list(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option(help="only grants in this state")] = None,
) -> None:
    """Grants you may see: yours (operators), on your datasets (providers), all (admins)."""
    gw = client_context(ctx)
    with session(gw) as api:
        found = [g for g in api.get("/v1/grants") if state is None or g["state"] == state]
    emit_json(found) if gw.as_json else table([_grant_row(g) for g in found], GRANT_ROWS)


@grants_app.command("show")
@gateway_options
def grants_show(ctx: typer.Context, grant_id: str) -> None:
    """One grant: its scope (datasets and columns), term and state."""
    gw = client_context(ctx)
    with session(gw) as api:
        g = api.get(f"/v1/grants/{q(grant_id)}")
    if gw.as_json:
        emit_json(g)
        return
    _show_grant(g)


def _show_grant(g: dict[str, Any]) -> None:
    fields(
        [
            ("grant", g["id"]),
            ("operator", g["operator"]),
            ("scenario", g["scenario"]),
            ("purpose", g["purpose"]),
            ("state", g["state"]),
            ("reason", g["state_reason"]),
            ("valid", f"{g['valid_from'][:10]} to {g['valid_until'][:10]}"),
            ("in term", g["in_term"]),
            ("request", g["request_id"]),
            ("stopped by", _held_by(g) or "nobody"),
        ]
    )
    typer.echo("")
    table(g["datasets"], [("dataset", "DATASET"), ("columns", "COLUMNS")])
    if g.get("holds"):  # each party lifts only its own stop
        typer.echo("")
        table(
            g["holds"],
            [("held_by", "STOPPED BY"), ("placed_by", "PLACED BY"),
             ("placed_at", "SINCE (UTC)"), ("rectify_by", "RECTIFY BY (UTC)"),
             ("reason", "REASON")],
        )  # fmt: skip


def _change(
    action: str,
    grant_id: str,
    reason: str,
    gw: ClientContext,
    rectify_days: int | None = None,
) -> None:
    body: dict[str, Any] = {"reason": reason}
    if rectify_days is not None:
        body["rectify_days"] = rectify_days
    with session(gw) as api:
        g = api.post(f"/v1/grants/{q(grant_id)}/{action}", body)
    if gw.as_json:
        emit_json(g)
        return
    held = _held_by(g)
    typer.echo(
        f"grant {g['id']}: {g['state']}" + (f" (stopped by {', '.join(held)})" if held else "")
    )


@grants_app.command("suspend")
@gateway_options
def grants_suspend(
    ctx: typer.Context, grant_id: str, reason: Reason, rectify_days: RectifyDays = None
) -> None:
    """Place your stop on a grant: it stops at once (its queued jobs are cancelled)."""
    _change("suspend", grant_id, reason, client_context(ctx), rectify_days)


@grants_app.command("resume")
@gateway_options
def grants_resume(ctx: typer.Context, grant_id: str, reason: Reason) -> None:
    """Lift your own stop; the grant is active again when nobody else holds one."""
    _change("resume", grant_id, reason, client_context(ctx))


@grants_app.command("revoke")
@gateway_options
def grants_revoke(ctx: typer.Context, grant_id: str, reason: Reason) -> None:
    """End a grant for good: its scope is removed and its views destroyed (recorded)."""
    _change("revoke", grant_id, reason, client_context(ctx))


@gateway_options
def emergency_stop(
    ctx: typer.Context,
    dataset: str,
    reason: Reason,
    rectify_days: RectifyDays = None,
    incident: Annotated[
        str | None, typer.Option(help="the open incident it belongs to (default: a new one)")
    ] = None,
) -> None:
    """Place the administrators' stop on every live grant on a dataset (administrators);
    only an administrator lifts it, grant by grant (``dsr grants resume``). The stop is
    recorded on an incident, and those concerned are told."""
    gw = client_context(ctx)
    body: dict[str, Any] = {"reason": reason}
    body |= {k: v for k, v in (("rectify_days", rectify_days), ("incident", incident)) if v}
    with session(gw) as api:
        done = api.post(f"/v1/datasets/{q(dataset)}/emergency-stop", body)
    if gw.as_json:
        emit_json(done)
        return
    stopped, already = done["suspended"], done.get("already_held", [])
    typer.echo(f"dataset {done['dataset']}: {len(stopped)} grant(s) suspended")
    if done.get("incident"):
        typer.echo(f"recorded on incident {done['incident']}")
    for grant_id in stopped:
        typer.echo(f"  {grant_id}")
    if already:
        typer.echo(f"{len(already)} grant(s) held by the administrators already:")
        for grant_id in already:
            typer.echo(f"  {grant_id}")
