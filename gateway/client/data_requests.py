"""``dsr requests``: data requests from the operator's ask to the grant that supplies it.

Operators ``create`` one (content, use, scenario, purpose, and exactly the
columns needed per dataset) and follow theirs with ``list``/``show``.
``review`` decides the current step: the administrator's formal review, or
the provider's review of what touches their datasets; a rejection needs a
reason and its legal basis. During provider review a provider may ``extend``
it (1 to 10 working days, with a reason) and an administrator
``decide-extension``; ``provide`` marks the data on the city platform;
``supply`` issues the grant for a term. Deadlines count statutory working days
and show "provisional" where a year's holidays are not known yet (art. 20).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer

from gateway.client.errors import UsageError
from gateway.client.http import q
from gateway.client.options import client_context, client_group, gateway_options
from gateway.client.render import cell, emit_json, fields, handled, session, table

requests_app = client_group("Data requests: ask, review (formal and provider), supply.")
ROWS = [
    ("id", "REQUEST"),
    ("operator", "OPERATOR"),
    ("scenario", "SCENARIO"),
    ("state", "STATE"),
    ("step", "NEXT STEP"),
    ("due", "DUE (UTC)"),
    ("left", "WORKING DAYS LEFT"),
    ("overdue", "OVERDUE"),
    ("grant_id", "GRANT"),
]


def due(found: dict[str, Any]) -> str | None:
    """The deadline as shown: its time, marked when it is provisional."""
    deadline = found.get("deadline")
    if not deadline:
        return None
    return cell(deadline["due"]) + (" (provisional)" if deadline["provisional"] else "")


def _shown(found: dict[str, Any]) -> dict[str, Any]:
    deadline = found.get("deadline") or {}
    return {**found, "due": due(found), "left": deadline.get("working_days_left")}


def _scopes(specs: list[str]) -> list[dict[str, Any]]:
    scopes = []
    for spec in specs:
        name, sep, columns = spec.partition("=")
        wanted = [c.strip() for c in columns.split(",") if c.strip()]
        if not sep or not name.strip() or not wanted:
            raise UsageError(f"--dataset takes NAME=COLUMN,COLUMN...; got {spec!r}")
        scopes.append({"dataset": name.strip(), "columns": wanted})
    return scopes


@requests_app.command("create")
@gateway_options
def requests_create(
    ctx: typer.Context,
    scenario: Annotated[str, typer.Option(help="the application scenario")],
    purpose: Annotated[str, typer.Option(help="why the data is needed")],
    content: Annotated[str, typer.Option(help="what data is asked for")],
    use: Annotated[str, typer.Option(help="how it will be used")],
    dataset: Annotated[
        list[str], typer.Option("--dataset", help="NAME=COLUMN,COLUMN,... (repeat per dataset)")
    ],
) -> None:
    """Ask for data under a scenario: exactly the columns needed (minimum necessary)."""
    gw = client_context(ctx)
    with handled():
        scopes = _scopes(dataset)
    body = {"scenario": scenario, "purpose": purpose, "content": content, "use": use}
    with session(gw) as api:
        made = api.post("/v1/requests", {**body, "datasets": scopes})
    if gw.as_json:
        emit_json(made)
        return
    typer.echo(made["id"])
    typer.echo(f"{made['state']}; next: {made['step']}, due {due(made)}", err=True)


@requests_app.command("list")
@gateway_options
def requests_list(
    ctx: typer.Context,
    pending: Annotated[
        bool, typer.Option("--pending", help="only those waiting for you to act")
    ] = False,
) -> None:
    """Requests you may see: yours (operators), your datasets' (providers), all (admins)."""
    gw = client_context(ctx)
    with session(gw) as api:
        found = api.get("/v1/requests", pending="true" if pending else None)
    emit_json(found) if gw.as_json else table([_shown(r) for r in found], ROWS)


@requests_app.command("show")
@gateway_options
def requests_show(ctx: typer.Context, request_id: str) -> None:
    """One request: what is asked and why, its step and deadline, the decision."""
    gw = client_context(ctx)
    with session(gw) as api:
        found = api.get(f"/v1/requests/{q(request_id)}")
        asked = api.get(f"/v1/requests/{q(request_id)}/extensions")
    if gw.as_json:
        emit_json({**found, "extensions": asked})
        return
    fields(
        [
            ("request", found["id"]),
            ("operator", found["operator"]),
            ("scenario", found["scenario"]),
            ("purpose", found["purpose"]),
            ("content", found["content"]),
            ("use", found["use"]),
            ("state", found["state"]),
            ("next step", found["step"]),
            ("due", due(found)),
            ("working days left", _shown(found)["left"]),
            ("overdue", found["overdue"]),
            ("extension days", found["extension_days"]),
            ("approvals", found["approvals"]),
            ("reason", found["reason"]),
            ("legal basis", found["legal_basis"]),
            ("grant", found["grant_id"]),
        ]
    )
    typer.echo("")
    table(
        [{"dataset": s["dataset"], "columns": s["columns"]} for s in found["datasets"]],
        [("dataset", "DATASET"), ("columns", "COLUMNS")],
    )
    if asked:
        typer.echo("")
        table(asked, EXTENSION_ROWS)


EXTENSION_ROWS = [
    ("id", "EXTENSION"),
    ("provider", "PROVIDER"),
    ("days", "DAYS"),
    ("reason", "REASON"),
    ("decision", "DECISION"),
    ("decided_by", "BY"),
    ("decision_reason", "WHY"),
]


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class Step(StrEnum):
    FORMAL = "formal"
    PROVIDER = "provider"


STEPS = {"formal review": Step.FORMAL, "provider review": Step.PROVIDER}


@requests_app.command("review")
@gateway_options
def requests_review(
    ctx: typer.Context,
    request_id: str,
    decision: Annotated[Decision, typer.Option(help="approve (pass) or reject")],
    reason: Annotated[str | None, typer.Option(help="why (required to reject)")] = None,
    legal_basis: Annotated[
        str | None, typer.Option(help="the legal basis (required to reject)")
    ] = None,
    step: Annotated[
        Step | None, typer.Option(help="formal or provider (default: the request's next step)")
    ] = None,
) -> None:
    """Decide a request's review step: formal (administrators) or provider (providers)."""
    gw = client_context(ctx)
    with handled():
        if decision == Decision.REJECT and not (reason and legal_basis):
            raise UsageError("a rejection needs --reason and --legal-basis")
    with session(gw) as api:
        if step is None:
            current = api.get(f"/v1/requests/{q(request_id)}")
            if current["step"] not in STEPS:
                where = f"its next step is {current['step']}" if current["step"] else "it is done"
                raise UsageError(f"request {request_id} is {current['state']}: {where}")
            step = STEPS[current["step"]]
        body: dict[str, Any] = {"reason": reason, "legal_basis": legal_basis}
        if step == Step.FORMAL:
            body["decision"] = "pass" if decision == Decision.APPROVE else "reject"
            done = api.post(f"/v1/requests/{q(request_id)}/formal-review", body)
        else:
            body["decision"] = decision.value
            done = api.post(f"/v1/requests/{q(request_id)}/provider-review", body)
    if gw.as_json:
        emit_json(done)
        return
    nxt = f"; next: {done['step']}, due {due(done)}" if done["step"] else ""
    typer.echo(f"request {done['id']}: {done['state']}{nxt}")


def _when(text: str, what: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as e:
        raise UsageError(f"{what} must be a date or an ISO time, not {text!r}") from e
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


@requests_app.command("supply")
@gateway_options
def requests_supply(
    ctx: typer.Context,
    request_id: str,
    days: Annotated[int, typer.Option(help="the grant's term in days (at most three years)")] = 365,
    until: Annotated[
        str | None, typer.Option(help="the term's end (a date, or ISO time); overrides --days")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="the term's start (default: now)")
    ] = None,
) -> None:
    """Supply an approved request: issue its grant for a term. The gateway bounds the
    term (it starts now, and runs at most three years) and says why it refuses one."""
    gw = client_context(ctx)
    with handled():
        begins = _when(start, "--from") if start else None
        ends = _when(until, "--until") if until else None
    body: dict[str, Any] = {"valid_until": ends.isoformat()} if ends else {"days": days}
    if begins is not None:
        body["valid_from"] = begins.isoformat()
    with session(gw) as api:
        done = api.post(f"/v1/requests/{q(request_id)}/supply", body)
    if gw.as_json:
        emit_json(done)
        return
    typer.echo(done["grant_id"])
    typer.echo(f"request {done['id']} supplied: grant {done['grant_id']}", err=True)


@requests_app.command("provide")
@gateway_options
def requests_provide(ctx: typer.Context, request_id: str) -> None:
    """Mark an approved request's data as provided to the city platform (providers); the
    city office's delivery (10 working days) starts."""
    gw = client_context(ctx)
    with session(gw) as api:
        done = api.post(f"/v1/requests/{q(request_id)}/provide", {})
    if gw.as_json:
        emit_json(done)
        return
    typer.echo(f"request {done['id']}: {done['state']}; next: {done['step']}, due {due(done)}")


@requests_app.command("extend")
@gateway_options
def requests_extend(
    ctx: typer.Context,
    request_id: str,
    days: Annotated[int, typer.Option(help="more working days of provider review (1-10)")],
    reason: Annotated[str, typer.Option(help="why the review needs longer")],
) -> None:
    """Ask the city office to extend a request's provider review (providers; once)."""
    gw = client_context(ctx)
    with session(gw) as api:
        made = api.post(
            f"/v1/requests/{q(request_id)}/extensions", {"days": days, "reason": reason}
        )
    if gw.as_json:
        emit_json(made)
        return
    typer.echo(made["id"])
    typer.echo(f"extension of {made['days']} working day(s) awaits the decision", err=True)


class ExtensionDecision(StrEnum):
    APPROVE = "approve"
    REFUSE = "refuse"


@requests_app.command("decide-extension")
@gateway_options
def requests_decide_extension(
    ctx: typer.Context,
    request_id: str,
    extension_id: str,
    decision: Annotated[ExtensionDecision, typer.Option(help="approve or refuse")],
    reason: Annotated[str, typer.Option(help="why (required)")],
) -> None:
    """Approve or refuse a provider's extension (administrators, for the city office)."""
    gw = client_context(ctx)
    with session(gw) as api:
        done = api.post(
            f"/v1/requests/{q(request_id)}/extensions/{q(extension_id)}/decision",
            {"decision": decision.value, "reason": reason},
        )
        current = api.get(f"/v1/requests/{q(request_id)}")
    if gw.as_json:
        emit_json(done)
        return
    typer.echo(f"extension {done['id']}: {done['decision']}; provider review due {due(current)}")
