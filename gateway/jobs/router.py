"""Operators: submit jobs under a grant, follow them, read dummy-run logs, download
released outputs. Every route reads or acts on the caller's own jobs only."""

from __future__ import annotations

import mimetypes
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import Connection

from gateway.auth import engine_of, read, requires, write
from gateway.identity import Account, Role
from gateway.jobs import service
from gateway.jobs.errors import NotConfigured
from gateway.jobs.schemas import JobIn, JobOut, LogsOut, OutputFileOut, OutputsOut
from gateway.jobs.worker import JobRuntime, app_clock, app_scope
from gateway.scope.policy import ScopePolicy

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
Operator = Annotated[Account, Depends(requires(Role.OPERATOR))]
Read = Annotated[Connection, Depends(read)]
Write = Annotated[Connection, Depends(write)]


def scope_policy(request: Request) -> ScopePolicy:
    """The app's scope policy (one instance, so grant changes made through it are seen)."""
    return app_scope(request.app)


def runtime_of(request: Request) -> JobRuntime:
    runtime: JobRuntime | None = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise NotConfigured("the gateway has no sandbox pipeline")
    return runtime


@router.post("", response_model=JobOut, status_code=201)
def submit(body: JobIn, operator: Operator, request: Request) -> JobOut:
    runtime: JobRuntime | None = getattr(request.app.state, "runtime", None)
    job = service.submit(
        engine_of(request),
        scope=scope_policy(request),
        resolver=getattr(request.app.state, "grant_resolver", None),
        views=runtime.views if runtime is not None else None,
        operator=operator.name,
        grant_id=body.grant,
        kind=body.kind,
        code=body.code,
        dummy=body.dummy,
        max_queued=request.app.state.settings.max_queued_per_operator,
        clock=app_clock(request.app),
    )
    worker = getattr(request.app.state, "worker", None)
    if worker is not None:
        worker.wake()
    with engine_of(request).connect() as conn:
        return JobOut.of(job, service.get_outcome(conn, job.id))


@router.get("", response_model=list[JobOut])
def my_jobs(operator: Operator, conn: Read) -> list[JobOut]:
    return [JobOut.of(j) for j in service.operator_jobs(conn, operator.name)]


@router.get("/{job_id}", response_model=JobOut)
def one_job(job_id: str, operator: Operator, conn: Read) -> JobOut:
    job = service.own_job(conn, job_id, operator.name)
    return JobOut.of(job, service.get_outcome(conn, job.id))


@router.get("/{job_id}/logs", response_model=LogsOut)
def job_logs(job_id: str, operator: Operator, conn: Read) -> LogsOut:
    job = service.own_job(conn, job_id, operator.name)
    return LogsOut(**service.logs(conn, job))


@router.get("/{job_id}/outputs", response_model=OutputsOut)
def job_outputs(job_id: str, operator: Operator, conn: Read) -> OutputsOut:
    job = service.own_job(conn, job_id, operator.name)
    files = service.manifest(conn, job)
    return OutputsOut(
        job=job.id,
        files=[OutputFileOut(**f) for f in files],
        manifest_sha256=service.manifest_sha256(files),
    )


@router.get("/{job_id}/outputs/{name}", response_class=Response)
def download(job_id: str, name: str, operator: Operator, request: Request) -> Response:
    """A released file, while the job's grant is active (a stop stops downloads too).
    Its own transaction: the download event is committed before any byte leaves."""
    content = service.download_while_usable(
        engine_of(request),
        getattr(request.app.state, "grant_resolver", None),
        service.Files(runtime_of(request).work_dir),
        job_id,
        name,
        operator=operator.name,
    )
    media = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Response(
        content,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.post("/{job_id}/cancel", response_model=JobOut)
def cancel(job_id: str, operator: Operator, conn: Write, request: Request) -> JobOut:
    job = service.own_job(conn, job_id, operator.name)
    return JobOut.of(service.cancel(conn, job, actor=operator.name, clock=app_clock(request.app)))
