"""Request and response bodies of the operators' job routes (no values, ever)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.jobs.findings import RULE_ID, for_operator
from gateway.jobs.model import Job
from gateway.jobs.outcomes import StoredOutcome

MAX_CODE = 256 * 1024


class JobIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grant: str = Field(min_length=1, max_length=200)
    kind: Literal["sql", "python"]
    code: str = Field(min_length=1, max_length=MAX_CODE)
    dummy: bool = False


class FindingOut(BaseModel):
    """A finding as an operator reads it (``gateway.jobs.findings.for_operator``):
    a fixed sentence per rule and a place by position, never a name the job chose."""

    rule: str
    verdict: str
    message: str
    output: int | None = None  # 1-based, in the order of the job's outputs; None: the job
    row: int | None = None  # 0-based data row of that output
    column: str | None = None  # only a column of the views the job could read


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
    cpu_seconds: float | None = None
    rows_scanned: int | None = None
    bytes_scanned: int | None = None
    output_bytes: int | None = None
    verdict: str | None = None
    findings: list[FindingOut] = []  # the worst SHOWN
    findings_total: int = 0
    findings_by_rule: dict[str, int] = {}
    rejections: list[str] = []
    outputs: int = 0

    @classmethod
    def of(cls, job: Job, outcome: StoredOutcome | None = None) -> JobOut:
        o = outcome or StoredOutcome()
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
            exit_class=o.exit_class,
            exit_code=o.exit_code,
            runtime=o.runtime,
            run_seconds=o.run_seconds,
            sandbox_seconds=o.sandbox_seconds,
            memory_peak_bytes=o.memory_peak_bytes,
            pids_peak=o.pids_peak,
            cpu_seconds=o.cpu_seconds,
            rows_scanned=o.rows_scanned,
            bytes_scanned=o.bytes_scanned,
            output_bytes=o.output_bytes,
            verdict=o.verdict,
            findings=[FindingOut(**f) for f in for_operator(o.findings, o.outputs, o.view_columns)],
            findings_total=o.findings_total,
            findings_by_rule={
                rule if RULE_ID.fullmatch(rule) else "unknown": n
                for rule, n in o.findings_by_rule.items()
            },
            rejections=list(o.rejections),
            outputs=len(o.outputs),
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
