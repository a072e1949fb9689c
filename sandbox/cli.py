"""``dsr``: the command line of the data-sandbox runtime.

Runtime commands for whoever runs the machine: check the engine, run a
smoke job through the hardened backend, remove leftover sandboxes.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

from sandbox.errors import SandboxError
from sandbox.run.backends.base import Backend, ExitClass, RunSpec, execute

if TYPE_CHECKING:  # the settings (pydantic) are imported by the commands that need them
    from sandbox.settings import SandboxSettings

app = typer.Typer(help="Data-sandbox runtime: data usable but not visible.", no_args_is_help=True)
engine_app = typer.Typer(help="The container engine the sandboxes run on.", no_args_is_help=True)
app.add_typer(engine_app, name="engine")

SMOKE_JOB = textwrap.dedent(
    """\
    from sandbox.sdk import connect

    con = connect()
    rows = con.sql("SELECT district, count(*) AS n FROM residents GROUP BY district ORDER BY 1")
    with open("/output/counts.csv", "w") as f:
        f.write("district,n\\n")
        for district, n in rows.fetchall():
            f.write(f"{district},{n}\\n")
    print("smoke job wrote counts.csv")
    """
)


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _backend(runtime: str | None) -> tuple[SandboxSettings, Backend]:
    from pydantic import ValidationError

    from sandbox.run.backends import docker_backend
    from sandbox.settings import SandboxSettings

    try:
        settings = SandboxSettings() if runtime is None else SandboxSettings(runtime=runtime)  # type: ignore[arg-type]
        return settings, docker_backend(settings)
    except ValidationError as e:
        _fail(f"bad setting: {e.errors()[0]['msg']}")
    except SandboxError as e:
        _fail(str(e))
    raise AssertionError("unreachable")


@engine_app.command("status")
def engine_status() -> None:
    """Say whether the engine answers, its runtimes and the one sandboxes will use."""
    import docker

    try:
        client = docker.from_env(timeout=10)
        info = client.info()
    except Exception as e:  # any failure means the same to the user
        _fail(f"no Docker Engine answers ({type(e).__name__}); run images/engine-setup.sh")
    runtimes = sorted(info.get("Runtimes", {}))
    chosen = "runsc" if "runsc" in runtimes else "runc"
    typer.echo(
        f"engine {info.get('ServerVersion')} ({info.get('Driver')}, cgroup v"
        f"{info.get('CgroupVersion')}); runtimes: {', '.join(runtimes)}"
    )
    typer.echo(f"sandboxes run on: {chosen}")


@app.command()
def smoke(
    runtime: str = typer.Option(None, help="runsc, runc or auto (default: the setting)"),
) -> None:
    """Run one small job through the hardened backend and report what happened."""
    import duckdb

    logging.basicConfig(level=logging.WARNING)
    settings, backend = _backend(runtime)
    work = Path(tempfile.mkdtemp(prefix="dsr-smoke-"))
    try:
        job_dir, data_dir = work / "job", work / "data"
        job_dir.mkdir()
        data_dir.mkdir()
        (job_dir / "main.py").write_text(SMOKE_JOB)
        rel = duckdb.sql(
            "SELECT 'district-' || (i % 5) AS district, i AS resident FROM range(1000) t(i)"
        )
        assert rel is not None
        rel.write_parquet(str(data_dir / "residents.parquet"))
        for d in (work, job_dir, data_dir):
            d.chmod(0o755)
        for f in (*job_dir.iterdir(), *data_dir.iterdir()):
            f.chmod(0o644)
        spec = RunSpec(
            job_id=f"smoke-{int(time.time())}",
            job_dir=job_dir,
            data_dir=data_dir,
            limits=settings.limits(),
        )
        result = execute(backend, spec, work / "out")
    except SandboxError as e:
        shutil.rmtree(work, ignore_errors=True)
        _fail(str(e))
    ex = result.execution
    typer.echo(
        f"smoke job on {result.runtime}: {ex.exit_class} (exit {ex.exit_code}) "
        f"in {result.wall_seconds:.2f}s, create to removed"
    )
    for out in result.collection.files:
        typer.echo(f"  output {out.name}: {out.size} bytes, sha256 {out.sha256[:16]}...")
    shutil.rmtree(work, ignore_errors=True)
    if ex.exit_class != ExitClass.SUCCEEDED or not result.collection.files:
        _fail("the smoke job did not succeed: " + (ex.detail or ex.stderr.data.decode()[-500:]))


DEMO_JOB = textwrap.dedent(
    """\
    from sandbox.sdk import catalog, connect

    con = connect()
    print("views:", [v["name"] for v in catalog()["views"]])
    rows = con.sql(
        "SELECT r.district_code, count(DISTINCT r.person_id) AS people, sum(s.amount) AS paid "
        "FROM residents r JOIN social_insurance s USING (person_id) "
        "GROUP BY 1 HAVING count(DISTINCT r.person_id) >= 10 ORDER BY 1"
    ).fetchall()
    with open("/output/contributions_by_district.csv", "w") as f:
        f.write("district_code,people,paid\\n")
        for district, people, paid in rows:
            f.write(f"{district},{people},{paid:.2f}\\n")
    print(f"{len(rows)} districts written")
    """
)
ENTITY_COLUMNS = {
    "residents": "person_id",
    "enterprises": "credit_code",
    "social_insurance": "person_id",
    "tax_payments": "credit_code",
}


@app.command()
def demo(
    residents: int = typer.Option(20_000, min=100, help="residents in the synthetic city"),
    runtime: str = typer.Option(None, help="runsc, runc or auto (default: the setting)"),
) -> None:
    """A provider's side end to end: synthetic city, policies, views, dummy views, a job."""
    import os
    import secrets

    from sandbox.intake.policy import PolicyStore
    from sandbox.intake.registry import Registry
    from sandbox.synthetic.demo import generate_city
    from sandbox.views.build import DatasetScope, Grant, ViewBuilder
    from sandbox.views.dummy import DummyBuilder

    settings, backend = _backend(runtime)
    root = settings.data_dir.resolve() / "demo"
    city = root / "city"
    try:
        if not (city / "residents.parquet").exists():
            typer.echo(f"generating a synthetic city of {residents:,} residents in {city}")
            generate_city(city, residents=residents, enterprises=max(residents // 10, 100))
        registry, policies = Registry(root / "store"), PolicyStore(root / "store")
        exposure = Path(__file__).resolve().parent.parent / "policies" / "exposure"
        for name, entity in ENTITY_COLUMNS.items():
            dv = registry.register(
                city / f"{name}.parquet", name=name, entity_column=entity, provider="demo-bureau"
            )
            pv = policies.apply(
                (exposure / f"{name}.yaml").read_text(encoding="utf-8"),
                {c.name: c.type for c in dv.columns},
                dataset=name,
                author="demo-provider",
            )
            typer.echo(
                f"dataset {name}: {dv.row_count:,} rows, version {dv.version}, policy {pv.version}"
            )
        grant = Grant(
            grant_id=f"demo-{os.getpid()}",
            operator="demo-operator",
            scenario="employment",
            scopes=(
                DatasetScope("residents", ("gender", "birth_date", "district_code")),
                DatasetScope("social_insurance", ("month", "amount")),
            ),
            key=secrets.token_bytes(32),
            key_id="demo-key",
        )
        views = ViewBuilder(registry, policies, root / "cache")
        real = views.build(grant)
        dummy = DummyBuilder(views, root / "cache").build(grant, rows=2000)
        for v in real.views:
            typer.echo(
                f"view {v.name}: {v.rows:,} rows, columns {', '.join(c.name for c in v.columns)}"
            )
        work = Path(tempfile.mkdtemp(prefix="dsr-demo-"))
        (work / "job").mkdir()
        (work / "job" / "main.py").write_text(DEMO_JOB)
        for p in (work, work / "job", work / "job" / "main.py"):
            p.chmod(0o755 if p.is_dir() else 0o644)
        for label, vs in (("dummy", dummy), ("real", real)):
            spec = RunSpec(
                job_id=f"demo-{label}-{os.getpid()}",
                job_dir=work / "job",
                data_dir=vs.directory,
                limits=settings.limits(),
            )
            result = execute(backend, spec, work / f"out-{label}")
            ex = result.execution
            typer.echo(
                f"job on {label} views ({result.runtime}): {ex.exit_class} "
                f"in {result.wall_seconds:.2f}s; outputs "
                f"{[f.name for f in result.collection.files]}"
            )
            if label == "dummy":  # dummy runs return their full logs
                for stream in (ex.stdout, ex.stderr):
                    typer.echo(textwrap.indent(stream.data.decode(errors="replace"), "  | "))
            else:
                typer.echo("  (logs of a real-data run are withheld)")
            if ex.exit_class != ExitClass.SUCCEEDED:
                _fail(f"the demo job failed on {label} views: {ex.detail}")
        destroyed = views.destroy_grant(grant.grant_id)
        typer.echo(
            f"grant revoked: {len(destroyed)} view set(s) destroyed, record "
            f"sha256 {destroyed[0].sha256[:16]}..."
        )
        shutil.rmtree(work, ignore_errors=True)
    except SandboxError as e:
        _fail(str(e))


@app.command()
def reconcile(
    json_output: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Remove every sandbox container left behind (e.g. after a crash)."""
    _, backend = _backend(None)
    removed = backend.reconcile()
    if json_output:
        typer.echo(json.dumps({"removed": removed}))
    else:
        typer.echo(f"removed {len(removed)} leftover sandbox(es)")


if __name__ == "__main__":
    app()
