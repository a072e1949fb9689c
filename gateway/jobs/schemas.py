"""Request and response bodies of the operators' job routes (no values, ever)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.jobs.model import Job

MAX_CODE = 256 * 1024


class JobIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grant: str = Field(min_length=1, max_length=200)
    kind: Literal["sql", "python"]
    code: str = Field(min_length=1, max_length=MAX_CODE)
    dummy: bool = False


class FindingOut(BaseModel):
    rule: str
    verdict: str
    file: str | None = None
    column: str | None = None
    message: str


class JobOut(BaseModel):
    id: str
    grant: str
    kind: str
    dummy: bool
    state: str
    outcome: str
    code_sha256: str
    attempts: int
    datasets: list[str]
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    queued_seconds: float | None = None
    exit_class: str | None = None
    exit_code: int | None = None
    runtime: str | None = None
    run_seconds: float | None = None
    sandbox_seconds: float | None = None
    memory_peak_bytes: int | None = None
    pids_peak: int | None = None
    verdict: str | None = None
    findings: list[FindingOut] = []
    rejections: list[str] = []
    outputs: int = 0

    @classmethod
    def of(cls, job: Job, outcome: dict[str, Any] | None = None) -> JobOut:
        o = outcome or {}
        queued = None
        if job.started_at is not None:
            queued = round((job.started_at - job.submitted_at).total_seconds(), 3)
        return cls(
            id=job.id,
            grant=job.grant_id,
            kind=job.kind,
            dummy=job.dummy,
            state=job.state.value,
            outcome=job.outcome,
            code_sha256=job.code_sha256,
            attempts=job.attempts,
            datasets=list(job.datasets),
            submitted_at=job.submitted_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            queued_seconds=queued,
            exit_class=o.get("exit_class"),
            exit_code=o.get("exit_code"),
            runtime=o.get("runtime"),
            run_seconds=o.get("run_seconds"),
            sandbox_seconds=o.get("sandbox_seconds"),
            memory_peak_bytes=o.get("memory_peak_bytes"),
            pids_peak=o.get("pids_peak"),
            verdict=o.get("verdict"),
            findings=[
                FindingOut(
                    rule=f["rule"],
                    verdict=f["verdict"],
                    file=f.get("file"),
                    column=f.get("column"),
                    message=f["message"],
                )
                for f in o.get("findings", [])
            ],
            rejections=list(o.get("rejections", [])),
            outputs=len(o.get("outputs", [])),
        )


class LogsOut(BaseModel):
    job: str
    stdout: str | None
    stderr: str | None


class OutputFileOut(BaseModel):
    file: str
    sha256: str
    bytes: int


class OutputsOut(BaseModel):
    job: str
    files: list[OutputFileOut]
    manifest_sha256: str
