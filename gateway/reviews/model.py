"""The review lifecycle: one table of moves (:data:`REVIEW`), votes as rows of their own.

A held or blocked job has one review, opened (``open``) when a reviewer first
votes on it. Votes are rows of ``review_votes``, never changed or removed;
the review moves when the votes counted say so, and ends

::

    open -> approved   (enough approvals, and the release went through)
         -> denied     (one deny)
         -> refused    (approved, but the scope check or the ledger refused the release)

Invariants:
- Every move goes through ``gateway.store.lifecycle.transition`` (audited as
  ``review.state``), in the transaction that moves the job the same way
  (``gateway.reviews.service.end_review``).
- Time comes from the clock the caller is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy import Connection

from gateway.jobs.model import Job, State
from gateway.store.lifecycle import Clock, Lifecycle, system_clock
from gateway.store.tables import review_votes, reviews


class ReviewState(StrEnum):
    """Values are stored: never change them."""

    OPEN = "open"
    APPROVED = "approved"
    DENIED = "denied"
    REFUSED = "refused"  # approved, but the scope check or the ledger refused the release


class Vote(StrEnum):
    APPROVE = "approve"
    DENY = "deny"


REVIEW: Lifecycle[ReviewState] = Lifecycle(
    name="review",
    states=ReviewState,
    moves={
        ReviewState.OPEN: frozenset(
            {ReviewState.APPROVED, ReviewState.DENIED, ReviewState.REFUSED}
        ),
        ReviewState.APPROVED: frozenset(),
        ReviewState.DENIED: frozenset(),
        ReviewState.REFUSED: frozenset(),
    },
    table=reviews,
    key="job_id",
    state="state",
    event="review.state",
    description="The security review of a held or blocked job; it moves the job the same "
    "way in the same transaction (`gateway/reviews/model.py`).",
    notes={(ReviewState.OPEN, ReviewState.REFUSED): "scope or ledger at release"},
)


@dataclass(frozen=True)
class CastVote:
    """One reviewer's vote, as stored."""

    reviewer: str
    decision: Vote
    reason: str
    at: datetime


@dataclass(frozen=True)
class Review:
    job_id: str
    state: ReviewState
    required: int
    votes: tuple[CastVote, ...]

    @property
    def approvals(self) -> int:
        return sum(v.decision == Vote.APPROVE for v in self.votes)

    def voted(self, reviewer: str) -> bool:
        return any(v.reviewer == reviewer for v in self.votes)


def required_approvals(job: Job) -> int:
    """One approval for a held job; two different reviewers to override a blocked one."""
    return 2 if job.state == State.BLOCKED else 1


def get_review(conn: Connection, job: Job) -> Review:
    """The job's review (an open one, not yet stored, if nobody has voted)."""
    row = conn.execute(sa.select(reviews).where(reviews.c.job_id == job.id)).first()
    votes = tuple(
        CastVote(r.reviewer, Vote(r.decision), r.reason, r.at)
        for r in conn.execute(
            sa.select(review_votes.c.reviewer, review_votes.c.decision, review_votes.c.reason,
                      review_votes.c.at)
            .where(review_votes.c.job_id == job.id)
            .order_by(review_votes.c.id)
        )
    )  # fmt: skip
    if row is None:
        return Review(job.id, ReviewState.OPEN, required_approvals(job), votes)
    return Review(job.id, ReviewState(row.state), int(row.required), votes)


def open_review(conn: Connection, job: Job, clock: Clock = system_clock) -> Review:
    """The job's review, stored ``open`` if it was not yet."""
    review = get_review(conn, job)
    exists = conn.execute(sa.select(reviews.c.job_id).where(reviews.c.job_id == job.id)).first()
    if exists is None:
        conn.execute(
            sa.insert(reviews).values(
                job_id=job.id,
                state=ReviewState.OPEN.value,
                required=review.required,
                opened_at=clock(),
            )
        )
    return review


def add_vote(
    conn: Connection, job: Job, reviewer: str, decision: Vote, reason: str, clock: Clock
) -> Review:
    """Store one vote (never changed or removed); the review with it counted."""
    conn.execute(
        sa.insert(review_votes).values(
            job_id=job.id, reviewer=reviewer, decision=decision.value, reason=reason, at=clock()
        )
    )
    return get_review(conn, job)
