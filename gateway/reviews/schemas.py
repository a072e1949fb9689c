"""Request and response bodies of the reviewers' routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.reviews.model import CastVote, Vote


class VoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Vote
    reason: str = Field(min_length=5, max_length=4000)

    @field_validator("reason")
    @classmethod
    def _written(cls, value: str) -> str:
        if len(value.strip()) < 5:
            raise ValueError("a vote needs a written reason")
        return value.strip()


class VoteOut(BaseModel):
    reviewer: str
    decision: str
    reason: str
    at: datetime

    @classmethod
    def of(cls, vote: CastVote) -> VoteOut:
        return cls(reviewer=vote.reviewer, decision=vote.decision.value, reason=vote.reason,
                   at=vote.at)  # fmt: skip


class QueueItem(BaseModel):
    job: str
    operator: str
    grant: str
    kind: str
    state: str
    verdict: str | None
    rules: list[str]
    submitted_at: datetime
    finished_at: datetime | None
    approvals: int
    required: int


class ReviewOut(BaseModel):
    job: str
    operator: str
    grant: str
    kind: str
    state: str
    outcome: str
    code: str
    code_sha256: str
    review_state: str
    approvals: int
    required: int
    votes: list[VoteOut]
    findings: list[dict[str, Any]]  # page ``page`` of ``pages``: file, place, full message
    findings_total: int
    page: int
    pages: int
    evidence: dict[str, Any]  # the stored report (output hashes, verdicts), findings apart
    files: list[dict[str, str]]  # file, sha256, encoding, content (the values)
    dataset_versions: dict[str, str]
    policy_versions: dict[str, str]


class VoteResult(BaseModel):
    job: str
    job_state: str
    outcome: str
    review_state: str
    approvals: int
    required: int
