"""Operators' commands: submit and follow jobs, fetch outputs.

``dsr jobs submit`` sends SQL or Python code under a grant (``--dummy`` runs it on dummy data,
with full logs; ``--wait`` follows it), ``jobs status/wait/list/logs/cancel``
follow it, ``jobs outputs --download DIR`` fetches the released files and
checks each against the SHA-256 manifest.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

import typer

from gateway.client.errors import REFUSED, ClientError, UsageError, WaitTimedOut
from gateway.client.http import Api, q, save
from gateway.client.options import client_context, client_group, gateway_options
from gateway.client.render import emit_json, fields, handled, note, session, table

jobs_app = client_group("Submit code under a grant and follow it.")

# Where the worker leaves a job: ended, or waiting for a security reviewer.
SETTLED = frozenset(
    {"released", "held", "blocked", "failed", "cancelled", "rejected", "completed", "denied",
     "refused"}
)  # fmt: skip
SUCCEEDED = frozenset({"released", "completed"})
ENDED_BADLY = {
    "held": "held for security review",
    "blocked": "blocked by the output checks (two reviewers may override)",
    "failed": "failed",
    "cancelled": "cancelled",
    "rejected": "rejected by the checks",
    "denied": "denied by a security reviewer",
    "refused": "refused at release (the grant's scope or the differencing ledger; see the outcome)",
}


# -- jobs -------------------------------------------------------------------------------

JOB_COLUMNS = [
    ("id", "JOB"),
    ("grant", "GRANT"),
    ("kind", "KIND"),
    ("dummy", "DUMMY"),
    ("state", "STATE"),
    ("outcome", "OUTCOME"),
    ("submitted_at", "SUBMITTED (UTC)"),
]


def _read_code(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {path}: {e}") from e


@jobs_app.command("submit")
@gateway_options
def jobs_submit(
    ctx: typer.Context,
    grant: Annotated[str, typer.Option("--grant", help="the grant to run under")],
    sql: Annotated[
        Path | None, typer.Option("--sql", help="a file with one SELECT", dir_okay=False)
    ] = None,
    python: Annotated[
        Path | None, typer.Option("--python", help="a Python file (main.py)", dir_okay=False)
    ] = None,
    dummy: Annotated[
        bool, typer.Option("--dummy", help="run on dummy data, with full logs")
    ] = False,
    wait: Annotated[bool, typer.Option("--wait", help="follow the job until it ends")] = False,
    timeout: Annotated[float, typer.Option(help="seconds --wait waits at most", min=1)] = 900,
) -> None:
    """Submit SQL (--sql FILE) or Python (--python FILE) under a grant; prints the job id."""
    gw = client_context(ctx)
    with handled():
        if (sql is None) == (python is None):
            raise UsageError("give exactly one of --sql FILE and --python FILE")
        kind, path = ("sql", sql) if sql is not None else ("python", python)
        assert path is not None
        code = _read_code(path)
    with session(gw) as api:
        job = api.post("/v1/jobs", {"grant": grant, "kind": kind, "code": code, "dummy": dummy})
        run = "a dummy run" if dummy else "a run on the real views"
        note(f"submitted {kind} job {job['id']} under grant {grant}, {run}: {job['state']}")
        if not wait:
            emit_json(job) if gw.as_json else typer.echo(job["id"])
            return
        job = _wait(api, job["id"], timeout)
        _finish(api, job, gw.as_json)


@jobs_app.command("status")
@gateway_options
def jobs_status(ctx: typer.Context, job_id: str) -> None:
    """A job's state, outcome, resource use and the checks' findings (never values)."""
    gw = client_context(ctx)
    with session(gw) as api:
        job = api.get(f"/v1/jobs/{q(job_id)}")
    emit_json(job) if gw.as_json else _show_job(job)


@jobs_app.command("wait")
@gateway_options
def jobs_wait(
    ctx: typer.Context,
    job_id: str,
    timeout: Annotated[float, typer.Option(help="seconds to wait at most", min=1)] = 900,
) -> None:
    """Wait for a job to end (progress on stderr); exit 0 only if it was released (or a
    dummy run completed), 1 if it ended otherwise, 5 on timeout."""
    gw = client_context(ctx)
    with session(gw) as api:
        _finish(api, _wait(api, job_id, timeout), gw.as_json)


def _wait(api: Api, job_id: str, timeout: float) -> dict[str, Any]:
    started = time.monotonic()
    interval, last = 0.3, ""
    tty = sys.stderr.isatty()
    while True:
        job: dict[str, Any] = api.get(f"/v1/jobs/{q(job_id)}")
        elapsed = time.monotonic() - started
        state = job["state"]
        if tty:
            sys.stderr.write(f"\rjob {job_id}: {state} ({elapsed:.0f}s)   ")
            sys.stderr.flush()
        elif state != last:
            note(f"job {job_id}: {state} ({elapsed:.0f}s)")
        last = state
        if state in SETTLED:
            if tty:
                sys.stderr.write("\n")
            return job
        if elapsed > timeout:
            if tty:
                sys.stderr.write("\n")
            raise WaitTimedOut(f"job {job_id} is still {state} after {timeout:.0f}s")
        time.sleep(interval)
        interval = min(interval * 1.5, 2.0)


def _finish(api: Api, job: dict[str, Any], as_json: bool) -> None:
    """Show an ended job (and a dummy run's logs); exit 1 unless it succeeded."""
    logs = None
    if job["dummy"] and job["state"] in ("completed", "failed"):
        logs = api.get(f"/v1/jobs/{q(job['id'])}/logs")
    if as_json:
        emit_json({**job, "logs": logs} if logs is not None else job)
    else:
        _show_job(job)
        if logs is not None:
            _show_logs(logs)
    if job["state"] not in SUCCEEDED:
        why = ENDED_BADLY.get(job["state"], job["state"])
        rules = sorted(job.get("findings_by_rule") or {f["rule"] for f in job.get("findings", [])})
        more = f" (rules: {', '.join(rules)})" if rules else ""
        note(f"dsr: job {job['id']} ended {job['state']}: {why}{more}")
        raise typer.Exit(REFUSED)


def _show_job(job: dict[str, Any]) -> None:
    resources = exit_ = None
    if job.get("memory_peak_bytes") is not None:
        peak = job["memory_peak_bytes"] / 2**20
        resources = f"memory peak {peak:.1f} MiB, pids {job.get('pids_peak')}"
    if job.get("cpu_seconds") is not None:
        cpu = f"CPU {job['cpu_seconds']:.2f} s"
        resources = f"{cpu}, {resources}" if resources else cpu
    scanned = None
    if job.get("rows_scanned") is not None:
        scanned = f"{job['rows_scanned']} rows, {job['bytes_scanned']} bytes"
    if job.get("exit_class"):
        exit_ = f"{job['exit_class']} (exit code {job.get('exit_code')})"
    seconds = job.get("run_seconds")
    fields(
        [
            ("job", job["id"]),
            ("state", f"{job['state']} ({job['outcome']})"),
            ("kind", job["kind"] + (" (dummy run)" if job["dummy"] else "")),
            ("grant", job["grant"]),
            ("datasets", job["datasets"]),
            ("submitted", job["submitted_at"]),
            ("finished", job.get("finished_at")),
            ("exit", exit_),
            ("runtime", job.get("runtime")),
            ("run seconds", None if seconds is None else f"{seconds:.2f}"),
            ("resources", resources),
            ("scanned", scanned),
            ("output bytes", job.get("output_bytes")),
            ("verdict", job.get("verdict")),
            ("outputs", job.get("outputs")),
            ("code sha256", job["code_sha256"]),
        ]
    )
    if job.get("findings"):
        shown, total = len(job["findings"]), job.get("findings_total", len(job["findings"]))
        typer.echo(f"\nfindings (showing {shown:,} of {total:,}):")
        table(
            [_operator_finding(f) for f in job["findings"]],
            [("verdict", "VERDICT"), ("rule", "RULE"), ("where", "WHERE"),
             ("message", "MESSAGE")],
        )  # fmt: skip
        if job.get("findings_by_rule") and total > shown:
            counts = ", ".join(f"{r} {n:,}" for r, n in sorted(job["findings_by_rule"].items()))
            typer.echo(f"by rule: {counts}")
    for rejection in job.get("rejections", []):
        typer.echo(f"rejected: {rejection}")


def _operator_finding(f: dict[str, Any]) -> dict[str, Any]:
    """Where a finding is, as the gateway gives it: output by position, row, view column."""
    where = []
    if f.get("output") is not None:
        where.append(f"output {f['output']}")
    if f.get("row") is not None:
        where.append(f"row {f['row'] + 1}")
    if f.get("column") is not None:
        where.append(f"column {f['column']}")
    return {**f, "where": ", ".join(where) or "the job"}


@jobs_app.command("list")
@gateway_options
def jobs_list(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option(help="only jobs in this state")] = None,
) -> None:
    """Your jobs, oldest first."""
    gw = client_context(ctx)
    with session(gw) as api:
        found = [j for j in api.get("/v1/jobs") if state is None or j["state"] == state]
    emit_json(found) if gw.as_json else table(found, JOB_COLUMNS)


@jobs_app.command("logs")
@gateway_options
def jobs_logs(ctx: typer.Context, job_id: str) -> None:
    """The full logs of a dummy run (the job's stdout here, its stderr on stderr).
    Logs of runs on real data are withheld."""
    gw = client_context(ctx)
    with session(gw) as api:
        logs = api.get(f"/v1/jobs/{q(job_id)}/logs")
    emit_json(logs) if gw.as_json else _show_logs(logs)


def _show_logs(logs: dict[str, Any]) -> None:
    if logs.get("stdout"):
        typer.echo(logs["stdout"], nl=not logs["stdout"].endswith("\n"))
    if logs.get("stderr"):
        typer.echo(logs["stderr"], nl=not logs["stderr"].endswith("\n"), err=True)


@jobs_app.command("outputs")
@gateway_options
def jobs_outputs(
    ctx: typer.Context,
    job_id: str,
    download: Annotated[
        Path | None, typer.Option("--download", help="fetch every file into this directory")
    ] = None,
) -> None:
    """A released job's files with their SHA-256 manifest; --download DIR fetches them,
    each checked against the manifest."""
    gw = client_context(ctx)
    with session(gw) as api:
        listing = api.get(f"/v1/jobs/{q(job_id)}/outputs")
        written = [_fetch(api, job_id, f, download) for f in listing["files"]] if download else []
    if gw.as_json:
        emit_json({**listing, "downloaded": [str(p) for p in written]})
        return
    table(listing["files"], [("file", "FILE"), ("bytes", "BYTES"), ("sha256", "SHA-256")])
    typer.echo(f"manifest sha256 {listing['manifest_sha256']}")
    for path in written:
        typer.echo(f"wrote {path} (sha256 checked)")


def _fetch(api: Api, job_id: str, entry: dict[str, Any], directory: Path) -> Path:
    name = PurePosixPath(entry["file"])
    if name.is_absolute() or ".." in name.parts or not name.parts:
        raise ClientError(f"refusing an output name that leaves the directory: {entry['file']!r}")
    content = api.download(f"/v1/jobs/{q(job_id)}/outputs/{q(entry['file'])}")
    if hashlib.sha256(content).hexdigest() != entry["sha256"]:
        raise ClientError(f"{entry['file']} does not match its manifest SHA-256; not written")
    target = directory.joinpath(*name.parts)
    save(target, content)
    return target


@jobs_app.command("cancel")
@gateway_options
def jobs_cancel(ctx: typer.Context, job_id: str) -> None:
    """Cancel a queued job."""
    gw = client_context(ctx)
    with session(gw) as api:
        job = api.post(f"/v1/jobs/{q(job_id)}/cancel")
    emit_json(job) if gw.as_json else typer.echo(f"job {job['id']}: {job['state']}")


__all__ = ["handled", "jobs_app"]
