"""Jobs refused at release get a final state of their own: ``refused``.

Revision ID: 0011
Revises: 0010

A job whose release the scope check or the differencing ledger refused was
kept ``blocked`` (outcome ``ledger_refused`` or ``scope_denied_at_release``),
or, when the worker's scope check refused it, ``failed`` (outcome
``scope_denied_at_release``). Such a job can never be released; it becomes
``refused``, so ``blocked`` means only that a reviewer may act. A downgrade
moves them back: a job refused by the worker (no review row) to ``failed``,
the others to ``blocked``. The audit log keeps the moves as they were
recorded; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEDGER = "ledger_refused"
SCOPE = "scope_denied_at_release"

jobs = sa.table("jobs", sa.column("id", sa.String), sa.column("state", sa.String),
                sa.column("outcome", sa.String))  # fmt: skip
reviews = sa.table("reviews", sa.column("job_id", sa.String))


def upgrade() -> None:
    op.execute(
        jobs.update()
        .where(jobs.c.state == "blocked", jobs.c.outcome.in_([LEDGER, SCOPE]))
        .values(state="refused")
    )
    op.execute(
        jobs.update()
        .where(jobs.c.state == "failed", jobs.c.outcome == SCOPE)
        .values(state="refused")
    )


def downgrade() -> None:
    reviewed = sa.select(reviews.c.job_id)
    op.execute(
        jobs.update()
        .where(jobs.c.state == "refused", jobs.c.outcome == SCOPE, jobs.c.id.not_in(reviewed))
        .values(state="failed")
    )
    op.execute(jobs.update().where(jobs.c.state == "refused").values(state="blocked"))
