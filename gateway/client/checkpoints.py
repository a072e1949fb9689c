"""``dsr audit`` and the chain's signed checkpoints, through the gateway.

``dsr audit verify --checkpoint FILE [--public-key FILE]`` checks the chain
against a checkpoint the auditor kept (and the gateway's own); ``dsr audit
checkpoints [--save FILE]`` lists them and saves the newest; ``dsr audit
checkpoint`` signs the head now (administrators, auditors); ``dsr audit
public-key [--save FILE]`` is the key that verifies them: keep both files
where whoever can write the gateway's store cannot. The local forms (the
store, on the gateway's machine) are in :mod:`gateway.cli` and print the
same way (:func:`report_verification`, :func:`report_checkpoints`).

A checkpoint file is one JSON object (what ``--save`` writes), a JSON array,
or JSON Lines (the gateway's checkpoint log, an export made with
``--checkpoints``): the lines whose ``kind`` is ``checkpoint`` are taken.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from gateway.client.errors import REFUSED, UsageError
from gateway.client.render import emit_json, handled, note, session, table

if TYPE_CHECKING:
    from gateway.client.options import ClientContext

MAX_SENT = 1000  # checkpoints in one POST /v1/audit/verify: the newest are sent


def read_checkpoint_file(path: Path) -> list[dict[str, Any]]:
    """The checkpoints in ``path`` (see the module docstring), as JSON objects."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read the checkpoint file {path}: {e}") from e
    found: list[Any]
    try:
        whole = json.loads(text)
        found = whole if isinstance(whole, list) else [whole]
    except ValueError:
        found = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                found.append(json.loads(line))
            except ValueError as e:
                raise UsageError(f"{path} line {number} is not JSON") from e
    objects = [
        o for o in found if isinstance(o, dict) and o.get("kind", "checkpoint") == "checkpoint"
    ]
    picked = [o for o in objects if "signature" in o]
    if not picked:
        raise UsageError(f"{path} holds no checkpoint")
    return picked


def read_public_key_file(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read the public key file {path}: {e}") from e


def report_verification(result: dict[str, Any], as_json: bool) -> None:
    """Print a verification (the gateway's or the local one); exit 1 unless ok."""
    if as_json:  # the same keys from the gateway and the local store
        emit_json(result)
        if not result["ok"]:
            raise typer.Exit(REFUSED)
        return
    if not result["ok"]:
        where = result.get("first_broken")
        what = f"audit chain broken at event {where}" if where else "audit verification failed"
        typer.echo(f"dsr: {what}: {result['reason']}", err=True)
        raise typer.Exit(REFUSED)
    head = f"head {result['head_id']} {result['head_hash']}"
    typer.echo(f"audit chain ok: {result['checked']} events, {head}")
    anchors = result.get("checkpoints") or {}
    latest = anchors.get("latest")
    if latest:
        where = {"store": "in the store", "log": "in the log outside it", "supplied": "given"}
        counts = ", ".join(f"{n} {where.get(k, k)}" for k, n in anchors.get("accepted", {}).items())
        note(f"signed checkpoints verify ({counts}); the newest at event {latest['event_id']}")
    else:
        note("no signed checkpoint yet: a cut-off or rewritten tail would not show")


def report_checkpoints(found: list[dict[str, Any]], save: Path | None, as_json: bool) -> None:
    """List checkpoints; with ``save``, write the newest to that file."""
    if save is not None:
        if not found:
            typer.echo("dsr: no checkpoint yet: nothing to save", err=True)
            raise typer.Exit(REFUSED)
        newest = max(found, key=lambda c: int(c["event_id"]))
        save.write_text(json.dumps(newest, indent=2) + "\n", encoding="utf-8")
        note(f"checkpoint at event {newest['event_id']} saved to {save}")
    if as_json:
        emit_json(found)
        return
    if save is None:
        rows = [{**c, "hash": c["hash"][:16], "key_id": c["key_id"][:16]} for c in found]
        table(
            rows, [("event_id", "EVENT"), ("hash", "HASH"), ("at", "AT (UTC)"), ("key_id", "KEY")]
        )


def report_made(made: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(made)
        return
    checkpoint = made.get("checkpoint")
    if checkpoint is None:
        typer.echo("the audit log is empty: nothing to sign")
    elif made["created"]:
        typer.echo(f"checkpoint at event {checkpoint['event_id']} {checkpoint['hash']}")
    else:
        typer.echo(
            f"the head has not moved: the newest checkpoint is at event {checkpoint['event_id']}"
        )


def report_public_key(answer: dict[str, str], save: Path | None) -> None:
    if save is not None:
        save.write_text(answer["public_key"], encoding="ascii")
        note(f"public key {answer['key_id'][:16]}... saved to {save}")
        return
    typer.echo(answer["public_key"], nl=False)


# -- the remote forms -----------------------------------------------------------------------


def verify(gw: ClientContext, checkpoint: Path | None, public_key: Path | None) -> None:
    """``dsr audit verify`` through the gateway (``gw``: the command's gateway options)."""
    with handled():
        supplied = None if checkpoint is None else read_checkpoint_file(checkpoint)
        key = read_public_key_file(public_key)
        if key is not None and supplied is None:
            raise UsageError("--public-key verifies a --checkpoint: give both")
    with session(gw) as api:
        if supplied is None:
            result = api.get("/v1/audit/verify")
        else:
            newest = sorted(supplied, key=lambda c: int(c.get("event_id") or 0))[-MAX_SENT:]
            result = api.post("/v1/audit/verify", {"checkpoints": newest, "public_key": key})
    report_verification(result, gw.as_json)


def checkpoints(gw: ClientContext, last: int, save: Path | None) -> None:
    with session(gw) as api:
        found = api.get("/v1/audit/checkpoints", last=last)
    report_checkpoints(found, save, gw.as_json)


def checkpoint(gw: ClientContext) -> None:
    with session(gw) as api:
        made = api.post("/v1/audit/checkpoints")
    report_made(made, gw.as_json)


def public_key(gw: ClientContext, save: Path | None) -> None:
    with session(gw) as api:
        answer = api.get("/v1/audit/public-key")
    report_public_key(answer, save)
