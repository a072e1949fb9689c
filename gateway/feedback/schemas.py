"""Request and response bodies of ``/v1/feedback``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.feedback.model import Issue
from gateway.feedback.text import TEXT_MAX, TITLE_MAX

Mark = Literal["will_correct", "resolved", "not_an_issue"]


class IssueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1, max_length=TITLE_MAX)
    description: str = Field(min_length=1, max_length=TEXT_MAX)
    columns: list[str] = Field(default_factory=list, max_length=50)


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=TEXT_MAX)
    mark: Mark | None = Field(default=None, description="or nothing: answered")


class AnswerOut(BaseModel):
    id: int
    provider: str
    text: str
    state: str
    at: datetime


class IssueOut(BaseModel):
    id: str
    dataset: str
    operator: str
    title: str
    description: str
    columns: list[str]
    state: str
    filed_at: datetime
    state_changed_at: datetime
    answers: list[AnswerOut]

    @classmethod
    def of(cls, issue: Issue) -> IssueOut:
        return cls(
            id=issue.id,
            dataset=issue.dataset,
            operator=issue.operator,
            title=issue.title,
            description=issue.description,
            columns=list(issue.columns),
            state=issue.state.value,
            filed_at=issue.filed_at,
            state_changed_at=issue.state_changed_at,
            answers=[
                AnswerOut(
                    id=a.id, provider=a.provider, text=a.text, state=a.disposition.value, at=a.at
                )
                for a in issue.answers
            ],
        )
