"""Data-quality feedback: an operator reports a quality problem of a dataset, the
dataset's provider answers.

The rules: 重庆市公共数据资源授权运营管理实施办法(试行) art. 29 (运营机构……发现数据质量
问题的,可以向市数据主管部门反馈; the data authority has providers improve their
data) and 成都市公共数据资源授权运营管理办法(征求意见稿) art. 25 para. 2 (those who
use public data 应……反馈数据质量). So an operator files, the provider answers and may
correct, and the administrators (the data authority) see every issue.

Invariants:

- An operator files only on a dataset it holds or held a grant for (any state),
  naming columns of the dataset's schema; title and description obey
  ``gateway.feedback.text`` (bounded plain text, no values quoted).
- Only the dataset's provider (the registry's, now) answers; each answer is a
  row of its own and moves the issue through :data:`FEEDBACK_ISSUE`
  (``feedback.state``); a resolved issue, or one that is not an issue, takes no
  more answers.
- Who reads an issue: its operator, the dataset's provider, administrators;
  for anyone else it does not exist (404).
- Filing is audited (``feedback.filed``) and told to the provider and the
  administrators; each answer is told to the operator: notices keyed by the
  issue (and the answer), so each is written once. Audit events and notices
  carry ids, column names and states, never the text.
- Time comes from the service's clock.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.audit import append
from gateway.feedback.errors import (
    FeedbackConflict,
    FeedbackError,
    FeedbackForbidden,
    UnknownIssue,
)
from gateway.feedback.model import FEEDBACK_ISSUE, MARKS, Answer, Issue, State
from gateway.feedback.text import TEXT_MAX, TITLE_MAX, checked
from gateway.grants.service import GrantService, grant_service
from gateway.identity import Account, Role
from gateway.notices.service import ADMINISTRATORS, notify, to_account
from gateway.store.lifecycle import Audit, Clock, MovedMeanwhile, system_clock, transition
from gateway.store.tables import feedback_answers, feedback_issues
from sandbox.errors import RegistryError

MAX_COLUMNS = 50


def _issue(row: Any, answers: Sequence[Answer]) -> Issue:
    m = row._mapping
    return Issue(
        id=m["id"],
        dataset=m["dataset"],
        operator=m["operator"],
        title=m["title"],
        description=m["description"],
        columns=tuple(m["columns_concerned"]),
        state=State(m["state"]),
        filed_at=m["filed_at"],
        state_changed_at=m["state_changed_at"],
        answers=tuple(answers),
    )


@dataclass
class FeedbackService:
    grants: GrantService
    clock: Clock = system_clock

    # -- reading ----------------------------------------------------------------------

    def _load(self, conn: Connection, query: sa.Select[Any]) -> list[Issue]:
        rows = list(conn.execute(query))
        ids = [r.id for r in rows]
        answers: dict[str, list[Answer]] = {i: [] for i in ids}
        if ids:
            found = conn.execute(
                sa.select(feedback_answers)
                .where(feedback_answers.c.issue_id.in_(ids))
                .order_by(feedback_answers.c.id)
            )
            for a in found:
                answers[a.issue_id].append(
                    Answer(a.id, a.provider, a.text, State(a.disposition), a.at)
                )
        return [_issue(r, answers[r.id]) for r in rows]

    def provider_of(self, dataset: str) -> str | None:
        return self.grants.provider_of(dataset)

    def can_read(self, account: Account, issue: Issue) -> bool:
        """Rule: an issue is read by its operator, the dataset's provider and administrators."""
        return (
            account.has(Role.ADMIN)
            or (account.has(Role.OPERATOR) and issue.operator == account.name)
            or (account.has(Role.PROVIDER) and self.provider_of(issue.dataset) == account.name)
        )

    def visible(
        self,
        conn: Connection,
        account: Account,
        *,
        dataset: str | None = None,
        state: State | None = None,
    ) -> list[Issue]:
        """The issues ``account`` may read (:meth:`can_read`), newest first."""
        query = sa.select(feedback_issues).order_by(
            feedback_issues.c.filed_at.desc(), feedback_issues.c.id
        )
        if dataset is not None:
            query = query.where(feedback_issues.c.dataset == dataset)
        if state is not None:
            query = query.where(feedback_issues.c.state == state.value)
        if not account.has(Role.ADMIN):
            mine = feedback_issues.c.operator == account.name
            provided = sorted(self.grants.provider_datasets(account.name))
            theirs = feedback_issues.c.dataset.in_(provided)
            query = query.where(
                sa.or_(
                    mine if account.has(Role.OPERATOR) else sa.false(),
                    theirs if account.has(Role.PROVIDER) and provided else sa.false(),
                )
            )
        return self._load(conn, query)

    def _one(self, conn: Connection, issue_id: str) -> Issue:
        found = self._load(conn, sa.select(feedback_issues).where(feedback_issues.c.id == issue_id))
        if not found:
            raise UnknownIssue(f"no data-quality issue {issue_id!r}")
        return found[0]

    def get(self, conn: Connection, account: Account, issue_id: str) -> Issue:
        """The issue, if ``account`` may read it; else the same 404 as a missing one."""
        issue = self._one(conn, issue_id)
        if not self.can_read(account, issue):
            raise UnknownIssue(f"no data-quality issue {issue_id!r}")
        return issue

    # -- filing -----------------------------------------------------------------------

    def check_may_file(self, conn: Connection, operator: str, dataset: str) -> None:
        """Rule: an operator files only on a dataset it holds or held a grant for."""
        if not self.grants.find(conn, operator=operator, datasets=[dataset]):
            raise FeedbackForbidden(
                f"{operator} never held a grant on {dataset!r}: operators report quality "
                "problems of the data they were granted"
            )

    def file(
        self,
        conn: Connection,
        operator: str,
        *,
        dataset: str,
        title: str,
        description: str,
        columns: Sequence[str],
    ) -> Issue:
        """File an issue; audited (``feedback.filed``) and told to the provider and the
        administrators, in ``conn``'s transaction."""
        self.check_may_file(conn, operator, dataset)
        title = checked("title", title, limit=TITLE_MAX, one_line=True)
        description = checked("description", description, limit=TEXT_MAX)
        try:
            schema = {c.name for c in self.grants.registry.get(dataset).columns}
        except RegistryError as e:
            raise FeedbackError(f"dataset {dataset!r} cannot be read: {e}") from e
        named = sorted(set(columns))
        unknown = [c for c in named if c not in schema]
        if unknown:
            raise FeedbackError(f"{dataset!r} has no column {', '.join(map(repr, unknown))}")
        if len(named) > MAX_COLUMNS:
            raise FeedbackError(f"an issue names at most {MAX_COLUMNS} columns")
        now = self.clock()
        issue_id = "fb-" + secrets.token_hex(8)
        conn.execute(
            feedback_issues.insert().values(
                id=issue_id, dataset=dataset, operator=operator, title=title,
                description=description, columns_concerned=named,
                state=State.OPEN.value, filed_at=now, state_changed_at=now,
            )
        )  # fmt: skip
        detail = {"feedback": issue_id, "columns": named}
        append(conn, "feedback.filed", operator, datasets=[dataset], detail=detail)
        provider = self.provider_of(dataset)
        audiences = [ADMINISTRATORS] + ([to_account(provider)] if provider else [])
        notify(
            conn, key=f"feedback:{issue_id}:filed", kind="feedback.filed",
            subject=f"data-quality issue {issue_id} on {dataset}", audiences=audiences,
            at=now, detail=detail | {"dataset": dataset}, actor=operator, datasets=[dataset],
        )  # fmt: skip
        return self._one(conn, issue_id)

    # -- answering --------------------------------------------------------------------

    def answer(
        self, conn: Connection, provider: Account, issue_id: str, *, text: str, mark: State | None
    ) -> Issue:
        """The dataset's provider answers, marking the issue or not; the answer is told to
        the issue's operator."""
        issue = self.get(conn, provider, issue_id)
        if self.provider_of(issue.dataset) != provider.name:
            raise FeedbackForbidden(f"only the provider of {issue.dataset!r} answers its issues")
        if mark is not None and mark not in MARKS:
            raise FeedbackError(f"an answer marks {', '.join(sorted(MARKS))}, or nothing")
        text = checked("answer", text, limit=TEXT_MAX)
        to = mark or (State.ANSWERED if issue.state == State.OPEN else issue.state)
        if not FEEDBACK_ISSUE.allows(issue.state, to):
            raise FeedbackConflict(
                f"issue {issue_id} is {issue.state.value}: it cannot become {to}"
            )
        now = self.clock()
        answer_id = conn.execute(
            feedback_answers.insert()
            .values(
                issue_id=issue_id, provider=provider.name, text=text, disposition=to.value, at=now
            )
            .returning(feedback_answers.c.id)
        ).scalar_one()
        detail = {"answer": answer_id, "columns": list(issue.columns)}
        try:
            transition(
                conn, FEEDBACK_ISSUE, issue_id, issue.state, to,
                Audit(actor=provider.name, datasets=[issue.dataset], detail=detail),
                values={"state_changed_at": now}, key_name="feedback",
            )  # fmt: skip
        except MovedMeanwhile as e:
            raise FeedbackConflict(str(e)) from e
        notify(
            conn, key=f"feedback:{issue_id}:answer:{answer_id}", kind="feedback.answered",
            subject=f"data-quality issue {issue_id} on {issue.dataset}: {to.value}",
            audiences=[to_account(issue.operator)], at=now,
            detail={"feedback": issue_id, "dataset": issue.dataset, "state": to.value},
            actor=provider.name, datasets=[issue.dataset],
        )  # fmt: skip
        return self.get(conn, provider, issue_id)


def feedback_service(app: Any) -> FeedbackService:
    """The application's feedback service (over its grant service and clock)."""
    return FeedbackService(grant_service(app), app.state.clock)
