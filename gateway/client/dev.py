"""``dsr dev``: the operator's development loop, on dummy data, on this machine.

``dsr dev fetch --grant G DIR`` downloads the dummy views of a grant and
writes ``DIR/catalog.json`` beside them (the container contract's layout).
``dsr dev run main.py [--grant G | --catalog DIR]`` runs a Python job
(``--sql`` or a ``.sql`` file: one query) in the same runner image and the
same hardened container as the gateway (``sandbox.run.backends.docker``: no
network, read-only root, non-root user, limits), with the dummy views at
``/data``. Its full logs are printed and its outputs written to ``--out``.

Nothing real is involved: dummy views are schema-faithful synthetic data, and
the outputs never leave this machine through the gateway. Python code is
screened first as the gateway would at submission; SQL is not checked
against the exposure policy here (the gateway does that on submission).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.client.errors import REFUSED, ClientError, Unreachable, UsageError
from gateway.client.http import Api, q
from gateway.client.options import client_context, client_group, gateway_options
from gateway.client.render import handled, note, session

dev_app = client_group("Run jobs locally on dummy data first.")
DEFAULT_OUT = Path("dsr-dev-output")


def fetch_views(api: Api, grant: str, directory: Path) -> list[dict[str, Any]]:
    """Download every dummy view of ``grant`` into ``directory`` with its catalog.json."""
    import pyarrow.parquet as pq

    views = api.get("/v1/catalog", grant=grant)
    if not views:
        raise ClientError(f"grant {grant} has no views you may read")
    directory.mkdir(parents=True, exist_ok=True)
    described = []
    for v in views:
        content = api.download(f"/v1/catalog/{q(v['name'])}/dummy", grant=grant, format="parquet")
        path = directory / f"{v['name']}.parquet"
        path.write_bytes(content)
        described.append(
            {
                "name": v["name"],
                "dataset": v["dataset"],
                "dataset_version": "dummy",
                "policy_version": v["policy_version"],
                "entity_column": v["entity_column"],
                "k": v["k"],
                "rows": pq.read_metadata(path).num_rows,
                "sha256": hashlib.sha256(content).hexdigest(),
                "columns": [
                    {
                        "name": c["name"],
                        "type": c["type"],
                        "class": c["column_class"],
                        "level": c["level"],
                        "visibility": c["visibility"],
                        "generalised": c["generalised"],
                    }
                    for c in v["columns"]
                ],
            }
        )
    catalog = {"views": described, "dummy": True, "grant": grant}
    (directory / "catalog.json").write_text(
        json.dumps(catalog, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    return described


@dev_app.command("fetch")
@gateway_options(json=False)
def dev_fetch(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="where to put the views", file_okay=False)],
    grant: Annotated[str, typer.Option("--grant", help="the grant whose views to fetch")],
) -> None:
    """Download a grant's dummy views and their catalog.json (for dsr dev run --catalog)."""
    with session(client_context(ctx)) as api:
        views = fetch_views(api, grant, directory)
    for v in views:
        typer.echo(f"{directory / (v['name'] + '.parquet')}: {v['rows']:,} dummy rows")
    typer.echo(f"{directory / 'catalog.json'}: {len(views)} view(s)")


def _stage_data(source: Path, target: Path) -> None:
    """Copy the views (and only them) where the sandbox user can read them."""
    views = sorted(source.glob("*.parquet"))
    if not views:
        raise UsageError(f"{source} holds no <view>.parquet files (see dsr dev fetch)")
    target.mkdir()
    for path in views:
        shutil.copyfile(path, target / path.name)
    if (source / "catalog.json").is_file():
        shutil.copyfile(source / "catalog.json", target / "catalog.json")


def _job_files(code_path: Path, is_sql_kind: bool, job_dir: Path) -> None:
    try:
        code = code_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {code_path}: {e}") from e
    job_dir.mkdir()
    if is_sql_kind:
        description: dict[str, Any] = {
            "kind": "sql",
            "query": code.strip().rstrip(";"),
            "memory_limit": "512MB",
            "threads": 1,
        }
    else:
        from sandbox.errors import ScreenRejected
        from sandbox.precheck.screen import check_python

        try:
            check_python(code)
        except ScreenRejected as e:
            raise ClientError(
                "the gateway would refuse this code at submission",
                problems=[str(f) for f in e.findings],
            ) from e
        description = {"kind": "python", "entry": "main.py"}
        (job_dir / "main.py").write_text(code, encoding="utf-8")
    (job_dir / "job.json").write_text(json.dumps(description), encoding="utf-8")


def _open_to_sandbox(root: Path) -> None:
    for path in (root, *root.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)


@dev_app.command("run")
@gateway_options(json=False)
def dev_run(
    ctx: typer.Context,
    code: Annotated[Path, typer.Argument(help="main.py (or a .sql file)", dir_okay=False)],
    grant: Annotated[
        str | None, typer.Option("--grant", help="fetch this grant's dummy views from the gateway")
    ] = None,
    catalog: Annotated[
        Path | None,
        typer.Option("--catalog", help="a directory of views (dsr dev fetch)", file_okay=False),
    ] = None,
    sql: Annotated[bool, typer.Option("--sql", help="the file is one SQL query")] = False,
    out: Annotated[
        Path, typer.Option("--out", help="where the outputs go", file_okay=False)
    ] = DEFAULT_OUT,
    runtime: Annotated[
        str | None, typer.Option(help="runsc, runc or auto (default: the DSR_RUNTIME setting)")
    ] = None,
) -> None:
    """Run a job locally in the hardened runner container on dummy data: full logs here,
    outputs in --out. Exit 0 when the job succeeded, 1 when it failed."""
    from sandbox.errors import SandboxError
    from sandbox.run.backends.base import ExitClass, RunSpec, execute

    work = Path(tempfile.mkdtemp(prefix="dsr-dev-"))
    try:
        with handled():
            if (grant is None) == (catalog is None):
                raise UsageError("give exactly one of --grant G and --catalog DIR")
            sql_kind = sql or code.suffix.lower() == ".sql"
            _job_files(code, sql_kind, work / "job")
            if grant is not None:
                with session(client_context(ctx)) as api:
                    fetch_views(api, grant, work / "fetched")
                catalog = work / "fetched"
            assert catalog is not None
            _stage_data(catalog, work / "data")
            _open_to_sandbox(work)
            try:
                settings, backend = _backend(runtime)
                spec = RunSpec(
                    job_id=f"dev-{os.getpid()}-{secrets.token_hex(3)}",
                    job_dir=work / "job",
                    data_dir=work / "data",
                    limits=settings.limits(),
                )
                result = execute(backend, spec, work / "collected")
            except SandboxError as e:
                raise Unreachable(f"cannot run the sandbox: {e}") from e
            ex = result.execution
            _print_logs(ex.stdout.data, ex.stdout.truncated, ex.stderr.data, ex.stderr.truncated)
            written = _keep_outputs(result.collection.files, out)
        note(
            f"dev run on dummy data ({result.runtime}): {ex.exit_class} (exit {ex.exit_code}) "
            f"in {result.wall_seconds:.1f}s"
        )
        for path in written:
            note(f"  output {path}")
        if result.collection.refused_total:
            note(f"  {result.collection.refused_total} entr(ies) of /output were not collected")
        if ex.exit_class != ExitClass.SUCCEEDED:
            note(f"dsr: the job did not succeed{': ' + ex.detail if ex.detail else ''}")
            raise typer.Exit(REFUSED)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _backend(runtime: str | None) -> Any:
    from pydantic import ValidationError

    from sandbox.run.backends import docker_backend
    from sandbox.settings import SandboxSettings

    try:
        settings = SandboxSettings() if runtime is None else SandboxSettings(runtime=runtime)  # type: ignore[arg-type]
    except ValidationError as e:
        raise UsageError(f"bad sandbox setting: {e.errors()[0]['msg']}") from e
    return settings, docker_backend(settings)


def _print_logs(stdout: bytes, out_cut: bool, stderr: bytes, err_cut: bool) -> None:
    if stdout:
        typer.echo(stdout.decode(errors="replace"), nl=not stdout.endswith(b"\n"))
    if out_cut:
        note("(stdout was cut at the log limit)")
    if stderr:
        typer.echo(stderr.decode(errors="replace"), nl=not stderr.endswith(b"\n"), err=True)
    if err_cut:
        note("(stderr was cut at the log limit)")


def _keep_outputs(files: Any, out: Path) -> list[Path]:
    written = []
    for f in files:
        target = out.joinpath(*Path(f.name).parts)
        if not target.resolve().is_relative_to(out.resolve()):
            continue  # collect sanitises names already; never write outside --out
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f.path, target)
        except OSError as e:
            raise UsageError(f"cannot write {target}: {e.strerror}") from e
        written.append(target)
    return written
